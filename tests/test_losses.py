"""The training losses (model.loss): each written out against its source's formula, each accepted by bundles,
and each trains a forecaster on real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tsattn.inference.bundle import TRAINING_OPTIONS
from tsattn.metrics import mse
from tsattn.training.losses import TRAINING_LOSSES, arctan_mae, arctan_weights, fredf, huber


def test_a_bundle_accepts_every_loss_a_run_can_train_with():
    assert TRAINING_OPTIONS["loss"] == tuple(TRAINING_LOSSES)


def test_huber_is_half_the_square_below_one_and_linear_above():
    y = torch.zeros(1, 3, 1)
    y_hat = torch.tensor([0.5, -2.0, 3.0]).reshape(1, 3, 1)
    assert huber(y_hat, y).item() == pytest.approx((0.5 * 0.25 + (2.0 - 0.5) + (3.0 - 0.5)) / 3)


def test_arctan_mae_is_xpatchs_weighted_l1():
    horizon = 96
    weights = arctan_weights(horizon).squeeze(-1).numpy()
    # xPatch: ratio = [-atan(i + 1) + pi / 4 + 1 for i in range(pred_len)]
    assert weights == pytest.approx([-math.atan(i + 1) + math.pi / 4 + 1 for i in range(horizon)], abs=1e-6)
    assert weights[0] == pytest.approx(1.0) and np.all(np.diff(weights) < 0) and weights[-1] > 1 - math.pi / 4
    generator = torch.Generator().manual_seed(0)
    y_hat, y = torch.randn(4, horizon, 3, generator=generator), torch.randn(4, horizon, 3, generator=generator)
    ratio = torch.tensor(weights).reshape(1, horizon, 1)
    assert arctan_mae(y_hat, y).item() == pytest.approx(torch.nn.L1Loss()(y_hat * ratio, y * ratio).item(), rel=1e-5)


def test_fredf_is_a_fifth_mse_and_four_fifths_the_spectrum_error():
    horizon = 24
    y = torch.randn(2, horizon, 3, generator=torch.Generator().manual_seed(1))
    assert fredf(y, y).item() == 0.0
    # A constant offset c: MSE c^2, and the spectra differ only at frequency 0, by H c, among H / 2 + 1.
    c = 0.5
    expected = 0.2 * c**2 + 0.8 * horizon * c / (horizon // 2 + 1)
    assert fredf(y + c, y).item() == pytest.approx(expected, rel=1e-5)
    y_hat = y + torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    spectrum = np.abs(np.fft.rfft(y_hat.numpy(), axis=1) - np.fft.rfft(y.numpy(), axis=1)).mean()
    assert fredf(y_hat, y).item() == pytest.approx(0.2 * mse(y_hat, y).item() + 0.8 * spectrum, rel=1e-5)
    # A forecast in bfloat16, as mixed precision gives it: the FFT, which refuses bfloat16, runs in float32.
    half = fredf(y_hat.bfloat16(), y)
    assert half.dtype == torch.float32 and half.item() == pytest.approx(fredf(y_hat, y).item(), rel=2e-2)


def test_an_unknown_loss_names_the_choices():
    from tsattn.models.lstm_seq2seq import LSTMSeq2Seq
    from tsattn.training.module import ForecastModule

    choices = "mse, mae, huber, arctan_mae, fredf, smape, mase, smape_mase"
    with pytest.raises(ValueError, match=f"model.loss='l3'; choose one of {choices}"):
        ForecastModule(LSTMSeq2Seq(n_features=1, n_targets=1, n_known=0, horizon=4), loss="l3")


@pytest.fixture(scope="module")
def weather_batch(weather_temperature):
    train = weather_temperature.datasets["train"]
    return train[list(range(0, len(train), 100))], weather_temperature.dims


@pytest.mark.parametrize("loss", list(TRAINING_LOSSES))
def test_each_loss_trains_a_forecaster_on_real_data(weather_batch, loss):
    from tsattn.models.lstm_seq2seq import LSTMSeq2Seq
    from tsattn.training.module import ForecastModule

    batch, dims = weather_batch
    torch.manual_seed(0)
    module = ForecastModule(LSTMSeq2Seq(**dims, hidden_size=16), loss=loss, normalization="revin")
    optimizer = torch.optim.Adam(module.parameters(), lr=0.01)

    def errors() -> tuple[float, float]:
        y_hat = module(batch)["y_hat"]
        return module.loss(y_hat, batch["y"], batch), mse(y_hat, batch["y"]).item()

    # The module trains with the loss it was given, not MSE under another name.
    a, b = batch["y"] + 0.3, batch["y"]
    assert module.loss(a, b, batch).item() == pytest.approx(TRAINING_LOSSES[loss](a, b, batch).item())
    assert loss == "mse" or module.loss(a, b, batch).item() != pytest.approx(mse(a, b).item())
    before_loss, before_mse = errors()
    for _ in range(25):
        optimizer.zero_grad()
        loss_value, _ = errors()
        loss_value.backward()
        optimizer.step()
    after_loss, after_mse = errors()
    assert after_loss.item() < 0.7 * before_loss.item()
    assert after_mse < before_mse  # what the loss trains is what the forecast is scored on


def test_smape_and_mase_score_the_forecast_in_the_datas_units_as_the_competition_did(weather_temperature):
    """Each batch carries its series' scaler statistics and MASE denominator (training rows only); the two losses
    map the forecast back with them and equal the competition's scores computed here in numpy from the raw rows."""
    from tsattn.metrics import smape_terms
    from tsattn.training.losses import mase, smape, smape_mase

    datamodule = weather_temperature
    val = datamodule.datasets["val"]
    batch = val[list(range(0, len(val), 7))]
    y = batch["y"]  # [B, H, 1], scaled
    y_hat = y + 0.4 * torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
    forecast, actual, scales = [], [], []
    for b, series in enumerate(batch["series"].tolist()):
        s = datamodule.collection.series[series]
        mean, std = datamodule.scaler.pairs[s.id]
        forecast.append(y_hat[b].double().numpy() * std[0] + mean[0])
        actual.append(y[b].double().numpy() * std[0] + mean[0])
        train = s.values[: datamodule.borders[s.id].train_end, 0]
        scales.append(np.abs(train[24:] - train[:-24]).mean())  # hourly: the season is a day
        np.testing.assert_allclose(batch["target_mean"][b, 0], mean[0], rtol=1e-6)
        np.testing.assert_allclose(batch["target_std"][b, 0], std[0], rtol=1e-6)
    forecast, actual = np.stack(forecast), np.stack(actual)  # [B, H, 1], the data's units
    expected_smape = smape_terms(forecast, actual).mean()
    expected_mase = (np.abs(forecast - actual) / np.array(scales)[:, None, None]).mean()

    def expected_first_mase(b: int) -> float:
        return float((np.abs(forecast[b] - actual[b]) / scales[b]).mean())
    assert smape(y_hat, y, batch).item() == pytest.approx(expected_smape, rel=1e-4)
    assert mase(y_hat, y, batch).item() == pytest.approx(expected_mase, rel=1e-4)
    # The mix divides sMAPE by the in-sample seasonal naive sMAPE averaged over every series (a constant of the
    # data, not of the batch: a loss of one window is the same in any batch).
    everyone = []
    for s in datamodule.collection.series:
        train = s.values[: datamodule.borders[s.id].train_end, 0]
        everyone.append(smape_terms(train[:-24], train[24:]).mean())
    mixed = 0.5 * (expected_smape / np.mean(everyone) + expected_mase)
    assert smape_mase(y_hat, y, batch).item() == pytest.approx(mixed, rel=1e-4)
    one = {key: value[:1] for key, value in batch.items()}
    alone = 0.5 * (smape_terms(forecast[:1], actual[:1]).mean() / np.mean(everyone) + expected_first_mase(0))
    assert smape_mase(y_hat[:1], y[:1], one).item() == pytest.approx(alone, rel=1e-4)
    assert smape(y, y, batch).item() == 0.0 and mase(y, y, batch).item() == 0.0
    # A batch without the statistics (one not made by a ForecastDataModule) is refused, not scored in scaled units.
    with pytest.raises(ValueError, match="lacks"):
        smape(y_hat, y, {"y": y})


def test_losses_in_the_datas_units_stay_finite_on_zeros_and_exactly_seasonal_series(tmp_path):
    """A series that repeats itself exactly each day has no in-sample seasonal error: its MASE weight is capped,
    not 1e9; zeros in the forecast and the truth give sMAPE 0 and finite gradients."""
    import pandas as pd

    from tsattn.data.datamodule import ForecastDataModule
    from tsattn.data.units import MAX_MASE_WEIGHT
    from tsattn.training.losses import TRAINING_LOSSES

    hours = pd.date_range("2024-01-01", periods=400, freq="h")
    daily = np.sin(2 * np.pi * np.arange(400) / 24) + 2.0  # positive, the same every day
    noisy = daily + np.random.default_rng(0).normal(0, 0.3, 400)
    pairs = (("exact", daily), ("noisy", noisy))
    frame = pd.concat([pd.DataFrame({"id": name, "time": hours, "y": values}) for name, values in pairs])
    frame.to_csv(tmp_path / "two.csv", index=False)
    datamodule = ForecastDataModule(str(tmp_path / "two.csv"), id_col="id", lookback=48, horizon=24, calendar="none")
    datamodule.setup()
    units = datamodule.datasets["train"].units
    exact = [s.id for s in datamodule.collection.series].index("exact")
    weight = units["target_std"][exact, 0] / units["seasonal_scale"][exact, 0]
    assert weight == pytest.approx(MAX_MASE_WEIGHT, rel=1e-3)  # capped, where std / 1e-16 would rule the loss
    batch = datamodule.datasets["train"][[0, 1, 2]]
    # Forecast and truth both exactly 0 in the data's units at every step: scored 0, with finite gradients.
    zero = (-batch["target_mean"] / batch["target_std"]).unsqueeze(1).expand_as(batch["y"]).contiguous()
    for name in ("smape", "mase", "smape_mase"):
        y_hat = zero.clone().requires_grad_(True)
        loss = TRAINING_LOSSES[name](y_hat, zero, batch)
        loss.backward()
        assert loss.item() == 0.0 and torch.isfinite(y_hat.grad).all(), name
