"""`tsattn backtest`: no leakage from after an origin, the model's test border, and metrics by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import build_bundle, run_tsattn
from tsattn.cli import main
from tsattn.metrics import crps

TRANSFORMER_STEPS = ["model.net.label_len=12", "model.segment_len=1"]
WINDOW = ["data=weather", "data.lookback=48", "data.horizon=12"]
# Every model, with RevIN off where it has it: then nothing but the scaling statistics decides the level.
MODELS = {
    "lstm_seq2seq": ["model=lstm_seq2seq", "model.normalization=none", "model.net.hidden_size=8"],
    "attention_seq2seq": ["model=attention_seq2seq", "model.normalization=none", "model.net.hidden_size=8"],
    # Per step (segment_len=1): label_len counts steps.
    "transformer": ["model=transformer", "model.normalization=none", "model.net.d_model=16", *TRANSFORMER_STEPS],
    "transformer_revin": ["model=transformer", "model.net.d_model=16", *TRANSFORMER_STEPS],
    "linear": ["model=linear"],
    "seasonal_naive": ["model=seasonal_naive"],
}


def _unseen_history(weather_path) -> pd.DataFrame:
    """Seattle under a name the models never saw, so it is scaled by its own past: 600 hourly rows, with
    its first value empty and the four hours before row 300 missing (the models fill gaps: interpolate)."""
    weather = pd.read_csv(weather_path)
    seattle = weather[weather["city"] == "seattle"].head(600).reset_index(drop=True)
    seattle["temperature"] = seattle["temperature"].astype(object)
    seattle.loc[0, "temperature"] = ""
    return seattle.drop(index=range(296, 300)).assign(city="new_town")


def _model_forecasts(bundle_dir, frame, tmp_path, name) -> pd.DataFrame:
    path, out = tmp_path / f"{name}.csv", tmp_path / f"{name}-out.csv"
    frame.to_csv(path, index=False)
    assert main(["backtest", str(bundle_dir), str(path), "-o", str(out), "--step", "1", "--quiet"]) == 0
    rows = pd.read_csv(out, parse_dates=["origin"])
    return rows.pivot_table(index="origin", columns="step", values="model")


@pytest.mark.parametrize("model", MODELS)
def test_rows_after_an_origin_never_reach_its_forecast(model, tmp_path, weather_path, capsys, monkeypatch):
    bundle_dir, _ = build_bundle(tmp_path, *WINDOW, *MODELS[model], fit=False)
    history = _unseen_history(weather_path)
    cut = history["time"].searchsorted("2010-01-13 12:00")  # hour 300: it and every later row are changed
    changed = history.copy()
    later = changed["temperature"].iloc[cut:].astype(float)
    changed.iloc[cut:, changed.columns.get_loc("temperature")] = later * 3 + 100
    before = _model_forecasts(bundle_dir, history, tmp_path, "before")
    after = _model_forecasts(bundle_dir, changed, tmp_path, "after")
    capsys.readouterr()
    # Origins whose last input is before hour 300 may not move (the gap before it included); later ones must.
    early, late = before.index < pd.Timestamp("2010-01-13 12:00"), before.index >= pd.Timestamp("2010-01-13 12:00")
    assert early.sum() >= 8 and late.sum() >= 8
    np.testing.assert_allclose(after[early].to_numpy(), before[early].to_numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(after[late].to_numpy(), before[late].to_numpy())  # the change is there to see

    if model == "lstm_seq2seq":  # (a linear model is affine: the statistics cancel out of its forecasts)
        # The control: scaled by the whole history, as before this fix, the early forecasts do move.
        from tsattn.data.scaling import mean_and_std

        def whole_history(values, ends):
            mean, std = mean_and_std(values)
            return np.tile(mean, (len(ends), 1)), np.tile(std, (len(ends), 1))

        monkeypatch.setattr("tsattn.inference.windows.expanding_mean_and_std", whole_history)
        leaky_before = _model_forecasts(bundle_dir, history, tmp_path, "leaky-before")
        leaky_after = _model_forecasts(bundle_dir, changed, tmp_path, "leaky-after")
        assert not np.allclose(leaky_after[early].to_numpy(), leaky_before[early].to_numpy(), rtol=1e-3)


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    """A daily series with a trend and a 3-day wiggle, and a seasonal-naive model of season 2 trained on it.

    The model repeats the last 2 days; the backtest's own seasonal-naive baseline repeats the last week
    (daily data), and the last-value baseline the last day: three different forecasts to check by hand.
    """
    root = tmp_path_factory.mktemp("daily")
    values = [10.0 + (i % 3) * 1.5 + 0.5 * i for i in range(60)]
    times = pd.date_range("2024-01-01", periods=len(values), freq="D")
    csv = root / "daily.csv"
    pd.DataFrame({"date": times.strftime("%Y-%m-%d"), "y": values}).to_csv(csv, index=False)
    overrides = ["data=csv", f"data.path={csv}", "data.lookback=3", "data.horizon=2", "model=seasonal_naive"]
    bundle_dir, run = build_bundle(root, *overrides, "model.net.season_length=2", fit=False)
    return root, csv, values, times, bundle_dir, run


def test_backtest_metrics_equal_a_hand_computation(daily, capsys):
    """Every number recomputed here with plain loops, the model's forecasts included."""
    root, csv, values, times, bundle_dir, _ = daily
    out, report = root / "bt.csv", root / "bt.json"
    args = ["backtest", str(bundle_dir), str(csv), "-o", str(out), "--step", "2", "--start", "earliest"]
    assert main([*args, "--metrics-json", str(report)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(report.read_text())["metrics"]

    season, horizon = 7, 2  # daily data: a weekly season for the baseline
    origins = list(range(7, len(values) - horizon + 1, 2))  # o >= max(L=3, season=7), o + H <= 60
    insample = values[:7]
    scale = sum(abs(insample[t] - insample[t - 1]) for t in range(1, 7)) / 6  # 7 rows do not span 2 seasons: lag 1
    expected = {"model": [], "last_value": [], "seasonal_naive": []}
    for o in origins:
        for h in range(horizon):
            actual = values[o + h]
            expected["model"].append((values[o - 2 + h % 2], actual))
            expected["last_value"].append((values[o - 1], actual))
            expected["seasonal_naive"].append((values[o - season + h % season], actual))
    assert expected["model"] != expected["last_value"] != expected["seasonal_naive"]
    # Daily data tries a week and a year, neither within L=3: the strongest simple forecast is the last value.
    expected["best_naive"] = expected["last_value"]
    for name, pairs in expected.items():
        mse = sum((f - a) ** 2 for f, a in pairs) / len(pairs)
        mae = sum(abs(f - a) for f, a in pairs) / len(pairs)
        smape = 100 * sum(2 * abs(f - a) / (abs(f) + abs(a)) for f, a in pairs) / len(pairs)
        overall = metrics[name]["overall"]
        assert overall["mse"] == pytest.approx(mse) and overall["mae"] == pytest.approx(mae)
        assert overall["smape"] == pytest.approx(smape) and overall["mase"] == pytest.approx(mae / scale)
        # A point forecast is a distribution with all its mass at f, whose CRPS (the integral of the squared
        # distance between its CDF and the actual's step) is |f - y| in closed form: the hand-computed MAE.
        assert overall["crps"] == pytest.approx(mae)
        step_one = [f - a for f, a in pairs[0::2]]
        assert metrics[name]["per_step"]["mse"][0] == pytest.approx(sum(e * e for e in step_one) / len(step_one))
    rows = pd.read_csv(out)
    assert list(rows["origin"].unique()) == [str(times[o - 1]) for o in origins]  # 2024-01-07 00:00:00
    np.testing.assert_allclose(rows["model"], [f for f, _ in expected["model"]])
    assert "seasonal naive" in printed and "MASE" in printed
    assert "best simple: the strongest simple forecast, last value, chosen on the model's validation" in printed


def test_season_sets_the_mase_lag_and_the_progress_total_counts_origins(daily, capsys):
    """--season 3: MASE divides by the mean 3-step difference of the 7 rows before the first origin (the
    default, the model's weekly season, falls back to lag 1 there); the other scores do not move."""
    import tsattn
    from tsattn.inference.backtest import count_origins
    from tsattn.inference.forecast import history_from_frame

    root, csv, values, _, bundle_dir, _ = daily
    metrics = {}
    for season in (None, 3):
        report = root / f"season-{season}.json"
        args = ["backtest", str(bundle_dir), str(csv), "-o", str(root / "s.csv"), "--step", "2", "--start", "earliest"]
        assert main([*args, "--metrics-json", str(report), "--quiet", *(["--season", "3"] if season else [])]) == 0
        metrics[season] = json.loads(report.read_text())
    insample = values[:7]
    lag1 = sum(abs(insample[t] - insample[t - 1]) for t in range(1, 7)) / 6
    lag3 = sum(abs(insample[t] - insample[t - 3]) for t in range(3, 7)) / 4
    default, three = metrics[None]["metrics"]["model"]["overall"], metrics[3]["metrics"]["model"]["overall"]
    assert three["mase"] == pytest.approx(default["mase"] * lag1 / lag3) and three["mae"] == default["mae"]
    assert (metrics[None]["mase_season"], metrics[3]["mase_season"]) == (7, 3)
    api = tsattn.load(bundle_dir).backtest(pd.read_csv(csv), step=2, season=3, start="earliest")
    assert api.metrics["model"]["overall"]["mase"] == pytest.approx(three["mase"])
    model = tsattn.load(bundle_dir)
    history = history_from_frame(model.bundle, pd.read_csv(csv), fill="causal")
    assert count_origins(model.bundle, history, 2) == metrics[3]["windows"] == 26  # origins 7, 9, ..., 57


def test_a_quantile_models_crps_coverage_and_width_in_real_units(tmp_path, weather_path, capsys):
    """Recomputed from the quantile columns the backtest writes; the median is the point forecast."""
    overrides = ["model=lstm_seq2seq", "model.net.hidden_size=8", "model.net.quantiles=[0.1,0.5,0.9]"]
    bundle_dir, _ = build_bundle(tmp_path, *WINDOW, *overrides)
    out, report = tmp_path / "bt.csv", tmp_path / "bt.json"
    args = ["backtest", str(bundle_dir), str(weather_path), "-o", str(out), "--step", "6", "--start", "earliest"]
    assert main([*args, "--metrics-json", str(report), "--quiet"]) == 0
    printed = capsys.readouterr().out
    model = json.loads(report.read_text())["metrics"]["model"]
    rows = pd.read_csv(out)
    np.testing.assert_allclose(rows["model"], rows["model_q0.5"])
    quantiles = rows[["model_q0.1", "model_q0.5", "model_q0.9"]].to_numpy()  # [rows, Q], real units
    actual, levels = rows["actual"].to_numpy(), [0.1, 0.5, 0.9]
    inside = (rows["actual"] >= rows["model_q0.1"]) & (rows["actual"] <= rows["model_q0.9"])
    width = rows["model_q0.9"] - rows["model_q0.1"]
    assert model["overall"]["crps"] == pytest.approx(crps(actual, quantiles, levels), rel=1e-6)
    assert model["overall"]["coverage_80"] == pytest.approx(inside.mean())
    assert model["overall"]["width_80"] == pytest.approx(width.mean(), rel=1e-6)
    last = (rows["step"] == 12).to_numpy()
    assert model["per_step"]["coverage_80"][11] == pytest.approx(inside[last].mean())
    assert model["per_step"]["crps"][11] == pytest.approx(crps(actual[last], quantiles[last], levels), rel=1e-6)
    assert 0 < model["overall"]["coverage_80"] < 1
    assert model["overall"]["crps"] != pytest.approx(model["overall"]["mae"])  # not the median's MAE
    assert f"model 80% interval: covers {model['overall']['coverage_80']:.1%} of the actuals (nominal 80%)" in printed
    assert "80% covered" in printed


def test_the_training_file_is_backtested_from_its_test_border(daily, capsys):
    import tsattn

    root, csv, values, times, bundle_dir, run = daily
    border = run.datamodule.borders[run.datamodule.collection.series[0].id].val_end  # 70% + 10% of 60 rows: 48
    out = root / "auto.csv"
    assert main(["backtest", str(bundle_dir), str(csv), "-o", str(out), "--step", "1"]) == 0
    err = capsys.readouterr().err
    assert f"the model was trained on (a wide file's one series always does) and reach before its test border: " in err
    assert f"their origins start there ({times[border]})" in err
    first_targets = pd.to_datetime(pd.read_csv(out).query("step == 1")["date"])
    assert first_targets.min() == times[border] and len(first_targets) == len(values) - 2 + 1 - border

    # The training file with a week appended (other bytes, so another hash): the series is recognised by its
    # id, and its origins still start at the border; the API's default does the same.
    longer = root / "longer.csv"
    week = pd.DataFrame({"date": pd.date_range(times[-1], periods=8, freq="D")[1:].strftime("%Y-%m-%d"), "y": 40.0})
    pd.concat([pd.read_csv(csv), week]).to_csv(longer, index=False)
    report = root / "longer.json"
    args = ["backtest", str(bundle_dir), str(longer), "-o", str(out), "--step", "1"]
    assert main([*args, "--metrics-json", str(report)]) == 0
    first_targets = pd.to_datetime(pd.read_csv(out).query("step == 1")["date"])
    assert first_targets.min() == times[border] and json.loads(report.read_text())["in_sample_origins"] == 0
    api = tsattn.load(bundle_dir).backtest(pd.read_csv(longer), step=1)
    assert api.in_sample == 0 and api.windows == len(first_targets)

    # --start earliest scores the rows the model saw: counted in the report and said even with --quiet.
    assert main([*args, "--start", "earliest", "--quiet", "--metrics-json", str(report)]) == 0
    err = capsys.readouterr().err
    in_sample, origins = border - 7, len(values) + 7 - 2 + 1 - 7  # origins 7 .. border - 1 of 7 .. 65
    assert f"tsattn: {in_sample} of {origins} origins forecast rows before the model's test border" in err
    assert "--start auto (the default) leaves them out" in err
    assert json.loads(report.read_text())["in_sample_origins"] == in_sample

    assert main(["backtest", str(bundle_dir), str(longer), "-o", str(out), "--start", "2024-02-20"]) == 0
    assert pd.to_datetime(pd.read_csv(out)["date"]).min() == pd.Timestamp("2024-02-20")
    assert main(["backtest", str(bundle_dir), str(longer), "-o", str(out), "--start", "someday"]) == 2
    assert "--start 'someday': give auto, earliest or a timestamp" in capsys.readouterr().err


def test_the_backtest_command_in_its_own_process(daily):
    """The one real `tsattn backtest` process: exit code, printed table, output file."""
    root, csv, _, _, bundle_dir, _ = daily
    out = root / "process.csv"
    result = run_tsattn(["backtest", str(bundle_dir), str(csv), "-o", str(out)], cwd=root)
    assert result.returncode == 0, result.stderr
    assert "backtest: 1 series" in result.stdout and "seasonal naive" in result.stdout
    assert out.is_file() and "tsattn: backtest of" in result.stderr
