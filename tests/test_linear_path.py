"""The linear path beside every forecaster: a network that outputs zero leaves exactly the linear map of the
lookback, which starts as a seasonal-naive rule and is RLinear's map once trained."""

from __future__ import annotations

import pytest
import torch

from tsattn.data.calendar import season_offsets
from tsattn.models.attention_seq2seq import AttentionSeq2Seq
from tsattn.models.baselines import RLinear
from tsattn.models.folding import network_sizes
from tsattn.models.forecaster import Forecaster
from tsattn.models.layers import LinearPath
from tsattn.models.lstm_seq2seq import LSTMSeq2Seq
from tsattn.models.transformer import TransformerForecaster

L, H, C, K, S = 48, 24, 3, 2, 12
NETWORKS = {
    "lstm_seq2seq": (LSTMSeq2Seq, {"hidden_size": 8}),
    "attention_seq2seq": (AttentionSeq2Seq, {"hidden_size": 8}),
    "transformer": (TransformerForecaster, {"d_model": 8, "nhead": 2, "dim_feedforward": 16, "label_len": 2}),
    "transformer_autoregressive": (
        TransformerForecaster,
        {"d_model": 8, "nhead": 2, "dim_feedforward": 16, "decoder_mode": "autoregressive"},
    ),
}


def batch(n: int = 5) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, L, C + K, generator=generator) * 3 + 7  # [B, L, C + K]: far from standardised
    return {"x": x, "known_future": torch.randn(n, H, K, generator=generator)}


def forecaster(name: str, normalization: str = "revin", quantiles=None, season: int = 1) -> Forecaster:
    cls, options = NETWORKS[name]
    dims = {"n_features": C + K, "n_targets": C, "n_known": K}
    sizes = network_sizes(dims, L, H, channel_independent=True, segment_len=S)
    net = cls(
        **sizes, **options, quantiles=quantiles, linear_path=True, lookback=L, horizon=H, linear_path_season=season
    )
    return Forecaster(net, normalization=normalization, channel_independent=True, segment_len=S, n_targets=C).eval()


def silence(model: Forecaster) -> None:
    """Make the network itself output zero: its head's weights and bias."""
    with torch.no_grad():
        model.net.head.linear.weight.zero_()
        model.net.head.linear.bias.zero_()


@pytest.mark.parametrize("name", NETWORKS)
def test_a_silent_network_leaves_its_linear_path_which_is_rlinear(name):
    model = forecaster(name)
    silence(model)
    with torch.no_grad():  # a trained map, not the initial one
        model.net.linear_path.weight.copy_(torch.randn(H, L) / L)
        model.net.linear_path.bias.copy_(torch.randn(H, 1))
    rlinear = Forecaster(RLinear(C + K, C, L, H, K), normalization="revin")
    with torch.no_grad():
        rlinear.net.weight.copy_(model.net.linear_path.weight.unsqueeze(0))  # [1, H, L]
        rlinear.net.bias.copy_(model.net.linear_path.bias.T)  # [1, H]
    inputs = batch()
    torch.testing.assert_close(model(inputs)["y_hat"], rlinear(inputs)["y_hat"])
    assert not torch.allclose(model(inputs)["y_hat"], inputs["x"][:, -1:, :C].expand(-1, H, -1))  # a control


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("season", [1, 24, 48])
def test_the_path_starts_as_a_seasonal_naive_rule_in_the_data_units(name, season):
    model = forecaster(name, season=season)
    silence(model)
    inputs = batch()
    expected = inputs["x"][:, L + torch.from_numpy(season_offsets(H, season)), :C]  # [B, H, C]
    torch.testing.assert_close(model(inputs)["y_hat"], expected, rtol=1e-5, atol=1e-4)


def test_quantile_forecasts_share_the_path_and_without_revin_it_reads_the_raw_values():
    model = forecaster("lstm_seq2seq", normalization="none", quantiles=[0.1, 0.5, 0.9], season=24)
    silence(model)
    inputs = batch()
    y_hat = model(inputs)["y_hat"]  # [B, H, C, Q]
    expected = inputs["x"][:, L + torch.from_numpy(season_offsets(H, 24)), :C]
    for q in range(3):
        torch.testing.assert_close(y_hat[..., q], expected)


def test_a_season_longer_than_the_lookback_is_refused():
    with pytest.raises(ValueError, match="linear_path_season=49"):
        LinearPath(L, H, init_season=49)
    with pytest.raises(ValueError, match="needs lookback and horizon"):
        LSTMSeq2Seq(C + K, C, K, linear_path=True)


def test_seasonal_lag_channels_hold_the_seasonal_naive_values_and_nothing_after_the_origin():
    from tsattn.models.forecaster import with_seasonal_lags

    inputs = batch()
    lagged = with_seasonal_lags(inputs, [24, 48], C)
    x, future = lagged["x"], lagged["known_future"]
    assert x.shape == (5, L, C + K + 2 * C) and future.shape == (5, H, K + 2 * C)
    targets = inputs["x"][..., :C]
    for j, m in enumerate((24, 48)):
        ahead = future[..., K + j * C : K + (j + 1) * C]  # [B, H, C]
        torch.testing.assert_close(ahead, targets[:, L + torch.from_numpy(season_offsets(H, m))])
        past = x[..., C + K + j * C : C + K + (j + 1) * C]  # [B, L, C]
        torch.testing.assert_close(past[:, m:], targets[:, : L - m])  # the value m steps before
    # Every lag value is one of the lookback's own values: changing the last step changes only lags of it.
    changed = dict(inputs, x=inputs["x"].clone())
    changed["x"][:, -1, :C] += 100.0
    after, before = with_seasonal_lags(changed, [24], C), with_seasonal_lags(inputs, [24], C)
    moved = (after["known_future"] - before["known_future"])[..., K:].abs()  # [B, H, C]: the lag channels
    assert moved[:, 23].min() > 99 and moved[:, :23].max() == 0  # step 24 repeats the last step; no other does


def lagged_forecaster(name: str) -> Forecaster:
    cls, options = NETWORKS[name]
    dims = {"n_features": C + K, "n_targets": C, "n_known": K}
    sizes = network_sizes(dims, L, H, channel_independent=True, segment_len=S, n_lags=2)
    assert sizes["n_known"] == (K + 2) * S  # 2 seasons x 1 target per window, in segments of S
    net = cls(**sizes, **options, linear_path=True, lookback=L, horizon=H, linear_path_season=24)
    folding = {"channel_independent": True, "segment_len": S, "n_targets": C}
    return Forecaster(net, normalization="revin", **folding, seasonal_lags=[24, 48])


@pytest.mark.parametrize("name", NETWORKS)
def test_forecasts_with_lag_channels_and_the_path_read_nothing_at_or_after_the_origin(name):
    """Windows of one series: rewriting every row from the forecast origin on leaves the forecast as it was;
    the control, rewriting the row just before the origin, moves it."""
    from tsattn.data.windows import WindowDataset

    model = lagged_forecaster(name).eval()
    generator = torch.Generator().manual_seed(3)
    values = torch.randn(400, C, generator=generator)  # [T, C]
    calendar = torch.randn(400, K, generator=generator)

    def forecast(series: torch.Tensor) -> torch.Tensor:
        starts = torch.tensor([100, 200, 300])
        data = WindowDataset(series, calendar, starts, torch.zeros(3, dtype=torch.long), torch.tensor([0]), L, H, C)
        with torch.no_grad():
            return model(data[[0, 1, 2]])["y_hat"]

    before = forecast(values)
    future = values.clone()
    future[148:] += 50.0  # window 0's origin is row 100 + L = 148
    torch.testing.assert_close(forecast(future)[0], before[0])
    control = values.clone()
    control[147] += 50.0
    assert not torch.allclose(forecast(control)[0], before[0])


@pytest.mark.parametrize("name", ["lstm_seq2seq", "attention_seq2seq", "transformer_autoregressive"])
def test_teacher_forcing_feeds_the_decoder_what_it_feeds_back_when_free(name):
    """With the linear path, a free-running decoder feeds back the network's part of its forecast; teacher
    forcing must feed the same quantity of the truth. Given its own forecast as the truth, a teacher-forced
    pass therefore repeats the free-running one exactly."""
    model = lagged_forecaster(name).eval()
    inputs = batch()
    with torch.no_grad():
        free = model(inputs)["y_hat"]  # [B, H, C]
        forced = model(dict(inputs, y=free), teacher_forcing_ratio=1.0)["y_hat"]
    torch.testing.assert_close(forced, free, rtol=1e-4, atol=1e-4)


def test_ridge_is_weighted_least_squares_with_a_free_bias():
    from tsattn.training.linear_init import ridge

    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(200, 6, generator=generator, dtype=torch.float64)
    outputs = inputs @ torch.randn(6, 3, generator=generator, dtype=torch.float64) + 0.5
    scale = torch.rand(200, 1, generator=generator, dtype=torch.float64) + 0.5
    noisy = outputs + 0.01 * torch.randn(200, 3, generator=generator, dtype=torch.float64)
    weight, bias = ridge(inputs, noisy, scale, 0.0)
    design = torch.cat([inputs, torch.ones(200, 1, dtype=torch.float64)], dim=1) * scale
    expected = torch.linalg.lstsq(design, noisy * scale).solution  # [7, 3]
    torch.testing.assert_close(weight, expected[:-1].T)
    torch.testing.assert_close(bias, expected[-1])
    assert torch.allclose(bias, torch.full((3,), 0.5, dtype=torch.float64), atol=0.01)
    shrunk, _ = ridge(inputs, outputs, scale, 10.0)
    assert shrunk.abs().sum() < weight.abs().sum() / 2  # the penalty shrinks the map


def test_the_fitted_path_beats_every_simple_rule_on_validation_and_the_network_starts_silent(weather_path):
    """On the bundled hourly temperatures: the ridge map chosen on the validation windows scores below the
    last value and seasonal naive at a day there, and the forecaster's first forecast is that map alone."""
    from tsattn.data.datamodule import ForecastDataModule
    from tsattn.training.linear_init import fit_linear_path

    data = ForecastDataModule(
        str(weather_path),
        targets=["temperature"],
        time_col="time",
        id_col="city",
        missing="interpolate",
        lookback=48,
        horizon=24,
        calendar="none",
    )
    data.setup()
    sizes = network_sizes(data.dims, 48, 24, channel_independent=True, segment_len=24)
    net = LSTMSeq2Seq(**sizes, hidden_size=8, linear_path=True, lookback=48, horizon=24)
    model = Forecaster(net, normalization="revin", channel_independent=True, segment_len=24, n_targets=1).eval()
    fit = fit_linear_path(model, data.datasets["train"], data.datasets["val"])
    assert fit["val_mse"] < min(data.naive_errors["val"].values()), (fit, data.naive_errors["val"])
    batch = data.datasets["val"][list(range(64))]
    expected = Forecaster(RLinear(1, 1, 48, 24), normalization="revin")
    with torch.no_grad():
        expected.net.weight.copy_(net.linear_path.weight.unsqueeze(0))
        expected.net.bias.copy_(net.linear_path.bias.T)
        torch.testing.assert_close(model(batch)["y_hat"], expected(batch)["y_hat"])
        error = float(((model(batch)["y_hat"] - batch["y"]) ** 2).mean())
    val = data.datasets["val"]
    rule = val.seasonal_naive(val.starts[:64], data.best_naive_season)  # [64, H, C]: validation's own choice
    assert error < float(((rule - batch["y"]) ** 2).mean())


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_linear_path_learns_at_its_share_of_the_rate(share):
    """model.linear_path_lr: 0 keeps the path where it started while the network trains; a share between
    moves it by that share of the network's rate; a bundle accepts the option only as a number in [0, 1]."""
    import functools
    from pathlib import Path

    from tsattn.errors import TsattnError
    from tsattn.inference.bundle import _forecaster_options
    from tsattn.training.module import ForecastModule, scale_rates
    from tsattn.training.schedules import LearningRate

    torch.manual_seed(0)
    net = forecaster("lstm_seq2seq").net.train()
    optimizer = functools.partial(torch.optim.SGD, lr=0.1)
    folding = {"normalization": "revin", "channel_independent": True, "segment_len": S, "n_targets": C}
    module = ForecastModule(net, optimizer=optimizer, **folding, linear_path_lr=share)
    groups = module.configure_optimizers().param_groups
    assert [g["lr"] for g in groups] == ([0.1] if share == 1.0 else [0.1, 0.1 * share])
    # The warm-up and cosine schedule scales each group's own base rate, a base of 0 included.
    scheduled = ForecastModule(net, optimizer=optimizer, scheduler=LearningRate(), **folding, linear_path_lr=share)
    groups = scheduled.configure_optimizers().param_groups
    scale_rates(groups, 0.5, fallback=0.1)
    assert [g["lr"] for g in groups] == ([0.05] if share == 1.0 else [0.05, 0.05 * share])
    for group in groups:  # a checkpoint saved without the schedule's base rates: each group keeps its share
        del group["initial_lr"]
    scale_rates(groups, 0.5, fallback=0.1)
    assert [g["lr"] for g in groups] == ([0.05] if share == 1.0 else [0.05, 0.05 * share])
    start = {name: p.detach().clone() for name, p in module.named_parameters()}
    data = dict(batch(), y=torch.randn(5, H, C))
    loss = module.loss(module(data)["y_hat"], data["y"], data)
    loss.backward()
    if share == 0.0:  # held: no gradient at all, so it takes no part in gradient clipping either
        assert net.linear_path.weight.grad is None and not net.linear_path.weight.requires_grad
        gradient = torch.zeros_like(net.linear_path.weight)
    else:
        gradient = net.linear_path.weight.grad.clone()
        assert gradient.abs().sum() > 0  # the path has something to learn here
    module.configure_optimizers().step()  # a fresh optimizer over the same parameters: one SGD step
    moved = net.linear_path.weight.detach() - start["forecaster.net.linear_path.weight"]
    torch.testing.assert_close(moved, -0.1 * share * gradient)
    assert not torch.equal(net.head.linear.weight, start["forecaster.net.head.linear.weight"])  # the network learns
    for bad in (-0.5, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(TsattnError, match=r"module_options\.linear_path_lr is not a number in \[0, 1\]"):
            _forecaster_options({"linear_path_lr": bad}, Path("schema.json"))
    with pytest.raises(ValueError, match=r"model\.linear_path_lr=2\.0 must lie in \[0, 1\]"):
        ForecastModule(net, optimizer=optimizer, linear_path_lr=2.0)
