"""`tsattn score`: M4's definitions reproduced from files, real forecasts scored, and mistakes in one line."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, build_bundle, m4_hourly_path
from tsattn.cli import main

sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.fixture(scope="module")
def m4_files(tmp_path_factory):
    """M4 Hourly as a user would hold it: the long file of every history and its 48 test values (ACTUALS), and
    the seasonal naive forecast of those values with made-up 10% / 90% quantiles, as `tsattn forecast` writes."""
    from m4_hourly import read_m4, seasonal_naive, write_long

    workdir = tmp_path_factory.mktemp("m4score")
    histories, tests = read_m4(m4_hourly_path())
    actuals = write_long(histories, tests, workdir)[0]
    start, frames = np.datetime64("2000-01-01T00:00"), []
    for key, history in histories.items():
        forecast = seasonal_naive(history)
        times = start + (len(history) + np.arange(48)).astype("timedelta64[h]")
        columns = {"id": key, "time": times, "step": np.arange(1, 49), "value": forecast}
        columns |= {"value_q0.1": forecast * 0.9, "value_q0.5": forecast, "value_q0.9": forecast * 1.1}
        frames.append(pd.DataFrame(columns))
    forecast_csv = workdir / "forecast.csv"
    pd.concat(frames).to_csv(forecast_csv, index=False)
    return workdir, forecast_csv, actuals, histories, tests


def test_score_reproduces_the_competitions_published_figures_from_files(m4_files, capsys):
    workdir, forecast_csv, actuals, histories, tests = m4_files
    per_series, metrics = workdir / "per_series.csv", workdir / "metrics.json"
    assert main(["score", str(forecast_csv), str(actuals), "-o", str(per_series), "--metrics-json", str(metrics)]) == 0
    printed = capsys.readouterr().out
    overall = json.loads(metrics.read_text())["overall"]
    # M4 Hourly's published scores (Mcompetitions/M4-methods, "Evaluation and Ranks.xlsx"): sNaive 13.912 /
    # 1.193 / 0.627, Naive2 18.383 / 2.395, Naive1 43.003 / 11.608 / 3.593. The forecast is seasonal naive.
    expected = {"snaive": (13.912, 1.193, 0.627), "naive2": (18.383, 2.395, 1.0), "naive1": (43.003, 11.608, 3.593)}
    for name, figures in expected.items():
        assert (overall[name]["smape"], overall[name]["mase"], overall[name]["owa"]) == pytest.approx(figures, abs=6e-4)
    assert {key: overall["forecast"][key] for key in overall["snaive"]} == overall["snaive"]  # the same forecast
    assert "seasonal naive      13.912    1.193   0.628" in printed and "beats Naive2" in printed
    table = pd.read_csv(per_series)
    assert len(table) == 414 and list(table.columns[:3]) == ["id", "target", "steps"]
    # Each series' own scores, from its history alone: H1's sMAPE and MASE computed by hand.
    h1, actual = histories["H1"], tests["H1"]
    forecast = np.tile(h1[-24:], 2)
    smape = np.mean(200 * np.abs(forecast - actual) / (np.abs(forecast) + np.abs(actual)))
    mase = np.mean(np.abs(forecast - actual)) / np.mean(np.abs(h1[24:] - h1[:-24]))
    row = table.set_index("id").loc["H1"]
    assert (row["smape"], row["mase"]) == pytest.approx((smape, mase), rel=1e-9)
    assert row["owa"] == pytest.approx((smape / row["naive2_smape"] + mase / row["naive2_mase"]) / 2, rel=1e-9)
    assert table["naive2_owa"].eq(1.0).all()
    # The quantile columns: CRPS under the point forecast's MAE, and the 80% interval's coverage.
    assert 0 < overall["forecast"]["crps"] < overall["forecast"]["mae"]
    day = {key: np.tile(history[-24:], 2) for key, history in histories.items()}
    coverage = np.mean(np.concatenate([(tests[k] >= 0.9 * day[k]) & (tests[k] <= 1.1 * day[k]) for k in histories]))
    assert overall["forecast"]["coverage_80"] == pytest.approx(coverage, rel=1e-9)


def test_a_real_forecast_is_scored_against_the_values_that_followed(tmp_path, weather_path, capsys):
    """`tsattn forecast` on each city's history less its last day, then `tsattn score` against the whole file."""
    overrides = ("data.lookback=48", "data.horizon=24", "model.net.hidden_size=8")
    bundle = str(build_bundle(tmp_path, *overrides, fit=False)[0])  # untrained: the files are what is tested
    frame = pd.read_csv(weather_path)
    history = frame[frame.groupby("city").cumcount(ascending=False) >= 24]  # each city less its last day
    history.to_csv(tmp_path / "history.csv", index=False)
    forecast_csv = str(tmp_path / "forecast.csv")
    assert main(["forecast", bundle, str(tmp_path / "history.csv"), "-o", forecast_csv, "--quiet"]) == 0
    capsys.readouterr()
    metrics = str(tmp_path / "m.json")
    # Two hours are missing from the file (training interpolates them, data.missing=interpolate): refused by default.
    assert main(["score", forecast_csv, str(weather_path), "--metrics-json", metrics]) == 2
    assert "data.missing" in capsys.readouterr().err
    code = main(["score", forecast_csv, str(weather_path), "--metrics-json", metrics, "--missing", "interpolate"])
    assert code == 0
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["series"] == 2 and report["steps"] == [24] and report["season"] == 24  # hourly: a day
    forecast = pd.read_csv(tmp_path / "forecast.csv", parse_dates=["time"])
    actual = frame.assign(time=pd.to_datetime(frame["time"])).set_index(["city", "time"])["temperature"]
    truth = actual.loc[list(zip(forecast["city"], forecast["time"], strict=True))].to_numpy()
    assert len(truth) == 48  # each city's last day, the 24 hours after the history forecast from
    error = forecast["temperature"].to_numpy() - truth
    assert report["overall"]["forecast"]["mae"] == pytest.approx(np.abs(error).mean(), rel=1e-9)
    assert report["overall"]["forecast"]["mse"] == pytest.approx((error**2).mean(), rel=1e-9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="step"), "no 'step' column; FORECAST must be a table as `tsattn forecast` writes it"),
        (lambda f: f.assign(time=f["time"].where(f.index != 3, "soon")), "line 5: the time column 'time' holds no"),
        (lambda f: f.assign(value=f["value"].where(f.index != 0, np.nan)), "line 2: column 'value' holds no finite"),
        (lambda f: f.assign(id=f["id"].where(f.index != 0, "H999")), "series 'H999' is not in ACTUALS"),
        (lambda f: f.assign(time=f["time"].where(f.index != 0, "2099-01-01")), "ACTUALS holds no value of series 'H1'"),
        (lambda f: f.rename(columns={"value": "load", "value_q0.1": "a", "value_q0.5": "b", "value_q0.9": "c"}),
         "no column 'load', which the forecast has"),
        (lambda f: f.drop(index=5), "forecast times of series 'H1' are not consecutive steps"),
        (lambda f: pd.concat([f, f.iloc[[3]]]), "forecast times of series 'H1' are not consecutive steps"),
        (lambda f: f.rename(columns={"value_q0.9": "value_q5"}), "names the level 5 outside (0, 1)"),
        (lambda f: f.assign(**{"value_q.5": f["value"]}), "names the level 0.5 twice"),
    ],
)
def test_mistakes_are_one_line_exit_2_and_write_nothing(m4_files, tmp_path, capsys, change, message):
    _, forecast_csv, actuals, _, _ = m4_files
    frame = pd.read_csv(forecast_csv, nrows=96)
    change(frame).to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "per_series.csv"
    assert main(["score", str(tmp_path / "bad.csv"), str(actuals), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists() and not list(tmp_path.glob(".per_series*"))


def test_a_failed_write_leaves_neither_output(m4_files, tmp_path, capsys):
    """-o and --metrics-json are renamed into place together: when the second cannot be, neither stays."""
    _, forecast_csv, actuals, _, _ = m4_files
    frame = pd.read_csv(forecast_csv, nrows=96)
    frame.to_csv(tmp_path / "forecast.csv", index=False)
    (tmp_path / "taken").mkdir()  # --metrics-json names a directory: refused before any work
    out = tmp_path / "per_series.csv"
    command = ["score", str(tmp_path / "forecast.csv"), str(actuals), "-o", str(out)]
    assert main([*command, "--metrics-json", str(tmp_path / "taken")]) == 2
    assert "is a directory" in capsys.readouterr().err and not out.exists()
    assert main([*command, "--metrics-json", str(out)]) == 2
    assert "give two files" in capsys.readouterr().err and not out.exists()


def test_missing_values_in_a_history_are_filled_from_that_history_only(m4_files, tmp_path):
    """--missing interpolate fills a gap inside a history from its own rows: the actual values after it (the
    scored steps) never reach the history, so MASE's scale and Naive2 are those of the history alone."""
    _, forecast_csv, actuals, histories, tests = m4_files
    forecast = pd.read_csv(forecast_csv, nrows=48)  # H1 only
    forecast.to_csv(tmp_path / "forecast.csv", index=False)
    frame = pd.read_csv(actuals)
    frame = frame[frame["id"] == "H1"].reset_index(drop=True)
    frame.loc[len(histories["H1"]) - 1, "value"] = np.nan  # the history's last value: interpolated from before
    frame.to_csv(tmp_path / "actuals.csv", index=False)
    high = frame.copy()
    high.loc[len(histories["H1"]) :, "value"] *= 10  # the actuals after the history, changed
    high.to_csv(tmp_path / "actuals_high.csv", index=False)
    tables = []
    for name in ("actuals.csv", "actuals_high.csv"):
        out = tmp_path / f"{name}.scores.csv"
        command = ["score", str(tmp_path / "forecast.csv"), str(tmp_path / name), "-o", str(out)]
        assert main([*command, "--missing", "interpolate"]) == 0
        tables.append(pd.read_csv(out))
    # The last value (a reference forecast) is the history's filled last value in both: the actuals after it
    # changed every score but not the filled history (the last-value forecast's error scales by exactly 10
    # only if its forecast, the filled value, stayed the same).
    mae, mae_high = tables[0]["naive1_mae"].iloc[0], tables[1]["naive1_mae"].iloc[0]
    filled = histories["H1"][-2]  # a gap at the very end is carried from the value before it
    assert mae == pytest.approx(np.abs(tests["H1"] - filled).mean())
    assert mae_high == pytest.approx(np.abs(10 * tests["H1"] - filled).mean())
