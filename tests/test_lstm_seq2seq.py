"""The LSTM seq2seq: shapes, causality of its decoder, and that it learns on real data."""

from __future__ import annotations

import pytest
import torch

from tsattn.data.datamodule import ForecastDataModule
from tsattn.data.split import RatioSplit
from tsattn.models.lstm_seq2seq import LSTMSeq2Seq


@pytest.fixture(scope="module")
def weather_batch(weather_path):
    datamodule = ForecastDataModule(
        str(weather_path),
        targets=["temperature"],
        id_col="city",
        missing="interpolate",
        lookback=48,
        horizon=12,
        split=RatioSplit(0.7, 0.1),
    )
    datamodule.setup()
    train = datamodule.datasets["train"]
    # 64 windows spread over the training year: a small, real slice.
    return train[torch.linspace(0, len(train) - 1, 64).long()], datamodule.dims


def _net(dims, seed=0, **kwargs):
    torch.manual_seed(seed)
    return LSTMSeq2Seq(**dims, hidden_size=32, **kwargs)


def test_output_shape(weather_batch):
    batch, dims = weather_batch
    net = _net(dims, num_layers=2, dropout=0.1)
    assert net(batch)["y_hat"].shape == batch["y"].shape == (64, 12, 1)
    assert net(batch, teacher_forcing_ratio=0.5)["y_hat"].shape == (64, 12, 1)


def test_free_running_path_never_reads_the_targets(weather_batch):
    batch, dims = weather_batch
    net = _net(dims).eval()
    perturbed = dict(batch, y=batch["y"] + 100.0 * torch.randn_like(batch["y"]))
    with torch.no_grad():
        torch.testing.assert_close(net(batch)["y_hat"], net(perturbed)["y_hat"], rtol=0, atol=0)


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_teacher_forced_step_h_sees_only_truth_before_h(weather_batch, ratio):
    batch, dims = weather_batch
    net = _net(dims).eval()
    k = 5
    perturbed_y = batch["y"].clone()
    perturbed_y[:, k:] += 10.0
    with torch.no_grad():
        torch.manual_seed(1)
        clean = net(batch, teacher_forcing_ratio=ratio)["y_hat"]
        torch.manual_seed(1)
        dirty = net(dict(batch, y=perturbed_y), teacher_forcing_ratio=ratio)["y_hat"]
    # Step h is fed y[h-1]: outputs up to and including step k cannot move...
    torch.testing.assert_close(clean[:, : k + 1], dirty[:, : k + 1], rtol=0, atol=0)
    # ...and the later ones do, so teacher forcing really reads y (the check above could fail).
    assert not torch.allclose(clean[:, k + 1 :], dirty[:, k + 1 :])


def test_full_teacher_forcing_matches_the_step_by_step_decoder(weather_batch):
    batch, dims = weather_batch
    net = _net(dims).eval()
    with torch.no_grad():
        fused = net(batch, teacher_forcing_ratio=1.0)["y_hat"]
        # ratio just below 1 with a generator that always says "truth" takes the step loop.
        stepped = net.decode(
            net.encode(batch["x"])[1],
            batch["x"][:, -1, :1],
            batch["future_calendar"],
            batch["y"],
            teacher_forcing_ratio=1.0 - 1e-12,
        )
    torch.testing.assert_close(fused, stepped, rtol=1e-5, atol=1e-5)


def test_overfits_a_small_real_slice(weather_batch):
    batch, dims = weather_batch
    net = _net(dims)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.mean((net(batch, teacher_forcing_ratio=1.0)["y_hat"] - batch["y"]) ** 2)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
    # The free-running forecast of the same windows improved too: it is the path forecasts use.
    with torch.no_grad():
        free = torch.mean((net.eval()(batch)["y_hat"] - batch["y"]) ** 2).item()
    assert free < losses[0] / 10
