"""`tsattn forecast` and `tsattn backtest`: from a bundle, runs:/ and models:/, on real CSVs, safely."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import BAD_CSV_DIR, build_bundle, run_tsattn
from tsattn.cli import main

TINY = [
    "data=weather",
    "data.horizon=12",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def _bundle_dir(run):
    from mlflow.utils.file_utils import local_file_uri_to_path

    return local_file_uri_to_path(run.info.artifact_uri) + "/bundle"


@pytest.fixture(scope="module")
def long_model(tmp_path_factory):
    """An LSTM seq2seq trained on the long-layout bundled weather file into an MLflow store, registered as
    weather-lstm."""
    from mlflow import MlflowClient

    from tsattn.config import compose
    from tsattn.training.train import train

    workdir = tmp_path_factory.mktemp("long")
    train(compose([*TINY, "data.lookback=48", "model.net.hidden_size=16", f"paths.log_dir={workdir / 'logs'}"]))
    uri = f"sqlite:///{workdir / 'logs' / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("weather").experiment_id])
    client.create_registered_model("weather-lstm")
    client.create_model_version("weather-lstm", f"{run.info.artifact_uri}/model", run.info.run_id)
    return workdir, uri, run


@pytest.fixture(scope="module")
def good_model(tmp_path_factory):
    """DLinear on tests/data/bad/good.csv (hourly, one `value` column), L=8, H=2: the corpus's own model."""
    workdir = tmp_path_factory.mktemp("good")
    overrides = ["data=csv", f"data.path={BAD_CSV_DIR / 'good.csv'}", "data.lookback=8", "data.horizon=2"]
    return str(build_bundle(workdir, *overrides, "model=linear")[0])


def test_forecast_is_the_same_from_a_directory_runs_and_models_uris(long_model, weather_path, tmp_path):
    from tsattn.inference.bundle import load_bundle
    from tsattn.inference.forecast import forecast, history_from_frame

    _, uri, run = long_model
    outputs = {}
    # The one real `tsattn forecast` process, from the bundle directory; MLflow's URIs in this process.
    out = tmp_path / "directory.csv"
    result = run_tsattn(["forecast", _bundle_dir(run), str(weather_path), "-o", str(out)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tsattn: forecast 2 series x 12 steps" in result.stderr
    outputs["directory"] = pd.read_csv(out)
    for name, model in {"run": f"runs:/{run.info.run_id}", "registry": "models:/weather-lstm/1"}.items():
        out = tmp_path / f"{name}.csv"
        assert main(["forecast", model, str(weather_path), "-o", str(out), "--tracking-uri", uri, "--quiet"]) == 0
        outputs[name] = pd.read_csv(out)
    pd.testing.assert_frame_equal(outputs["directory"], outputs["run"])
    pd.testing.assert_frame_equal(outputs["directory"], outputs["registry"])

    frame = outputs["directory"]
    assert list(frame.columns) == ["city", "time", "step", "temperature"]
    history = pd.read_csv(weather_path, parse_dates=["time"])
    for city, rows in frame.groupby("city"):
        last = history[history["city"] == city]["time"].max()
        expected = pd.date_range(last, periods=13, freq="h")[1:]
        assert list(pd.to_datetime(rows["time"])) == list(expected)  # starts one step after the last timestamp
        assert list(rows["step"]) == list(range(1, 13))
        assert rows["temperature"].between(20, 110).all()  # Fahrenheit: the scaling was inverted

    bundle = load_bundle(_bundle_dir(run))  # in-process, from the same bundle
    direct = forecast(bundle, history_from_frame(bundle, pd.read_csv(weather_path)))
    np.testing.assert_allclose(direct["temperature"].to_numpy(), frame["temperature"].to_numpy(), rtol=1e-6)


def test_wide_model_round_trips(tmp_path, weather_path):
    weather = pd.read_csv(weather_path)
    wide = weather.pivot(index="time", columns="city", values="temperature").reset_index().dropna()
    wide.to_csv(tmp_path / "wide.csv", index=False)
    overrides = ["data=csv", f"data.path={tmp_path / 'wide.csv'}", "data.lookback=24", "model.net.hidden_size=8"]
    bundle_dir, _ = build_bundle(tmp_path, *overrides, "data.horizon=12", "data.missing=interpolate")
    out = tmp_path / "forecast.csv"
    assert main(["forecast", str(bundle_dir), str(tmp_path / "wide.csv"), "-o", str(out), "--quiet"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["time", "step", "san_francisco", "seattle"]
    assert len(frame) == 12 and frame["time"].iloc[0] == "2011-01-01 00:00:00"


def test_horizon_can_be_shorter_but_not_longer(long_model, weather_path, tmp_path, capsys):
    _, _, run = long_model
    out = tmp_path / "short.csv"
    assert main(["forecast", _bundle_dir(run), str(weather_path), "-o", str(out), "--horizon", "3", "--quiet"]) == 0
    assert pd.read_csv(out)["step"].max() == 3
    assert (
        main(["forecast", _bundle_dir(run), str(weather_path), "-o", str(tmp_path / "long.csv"), "--horizon", "13"])
        == 2
    )
    assert "--horizon 13: this model forecasts 1 to 12 steps" in capsys.readouterr().err
    assert not (tmp_path / "long.csv").exists()


# input file, what the one-line message says
FORECAST_CASES = {
    "not_utf8.csv": "is not UTF-8 text",
    "empty.csv": "is empty",
    "header_only.csv": "has a header but no data rows",
    "ragged_row.csv": "is not a well-formed CSV",
    "no_time_column.csv": "has no column 'time'",
    "bad_timestamp.csv": "cannot parse 'not-a-date'",
    "duplicate_timestamp.csv": "duplicate timestamp",
    # Gaps: the model's data.missing was fixed in training, so the fix is retraining, not a setting here.
    "missing_timestamps.csv": "is missing 2 timestamps",
    "irregular_timestamps.csv": "off the regular h grid",
    "non_numeric.csv": "'abc' in column 'value' is not a number",
    "empty_value.csv": "empty value in column 'value'",
    "too_short.csv": "fewer than the",
    "absent.csv": "no such file; check the INPUT argument",
    "duplicate_columns.csv": "column 'value' appears 2 times in the header",
    "semicolon.csv": "its fields look separated by ';', not ','; set --sep ';'",
    ".": "is a directory; give the CSV file itself (the INPUT argument)",
    "offsets_mixed_with_none.csv": "mixes timestamps with and without a UTC offset",
}


@pytest.mark.parametrize("command", ["forecast", "backtest"])
@pytest.mark.parametrize("filename", FORECAST_CASES)
def test_bad_input_exits_2_with_its_line_and_keeps_the_old_output(command, filename, good_model, tmp_path, capsys):
    out = tmp_path / "out.csv"
    out.write_text("precious,earlier,output\n")
    code = main([command, good_model, str(BAD_CSV_DIR / filename), "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("tsattn: error: ") and FORECAST_CASES[filename] in err[-1]
    assert "Traceback" not in "\n".join(err)
    if filename in ("missing_timestamps.csv", "empty_value.csv"):  # the model's policy, fixed in training
        assert "or train the model with data.missing=interpolate (or ffill) and forecasting fills them" in err[-1]
        assert "set data.missing" not in err[-1]
    assert out.read_text() == "precious,earlier,output\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left behind


def test_sep_reads_a_semicolon_file_like_its_comma_twin(good_model, tmp_path):
    outputs = []
    for name, extra in (("good.csv", []), ("semicolon.csv", ["--sep", ";"])):
        out = tmp_path / f"{name}.out"
        assert main(["forecast", good_model, str(BAD_CSV_DIR / name), "-o", str(out), "--quiet", *extra]) == 0
        outputs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(*outputs)


def test_missing_column_and_wrong_frequency_are_named(good_model, tmp_path, capsys):
    good = pd.read_csv(BAD_CSV_DIR / "good.csv")
    good.rename(columns={"value": "sales"}).to_csv(tmp_path / "renamed.csv", index=False)
    daily = good.assign(time=pd.date_range("2010-01-01", periods=len(good), freq="D"))
    daily.to_csv(tmp_path / "daily.csv", index=False)
    assert main(["forecast", good_model, str(tmp_path / "renamed.csv"), "-o", str(tmp_path / "a.csv")]) == 2
    assert "has no column 'value'" in capsys.readouterr().err
    assert main(["forecast", good_model, str(tmp_path / "daily.csv"), "-o", str(tmp_path / "b.csv")]) == 2
    assert "sampled every D but the model was trained on h data" in capsys.readouterr().err


def test_skip_short_leaves_short_series_out_and_names_them(long_model, weather_path, tmp_path, capsys):
    _, _, run = long_model
    weather = pd.read_csv(weather_path)
    short = pd.DataFrame({"city": "tiny_town", "time": weather["time"][:10], "temperature": 50.0 + np.arange(10)})
    pd.concat([weather, short]).to_csv(tmp_path / "with_short.csv", index=False)
    out = tmp_path / "out.csv"
    assert main(["forecast", _bundle_dir(run), str(tmp_path / "with_short.csv"), "-o", str(out)]) == 2
    assert "1 series have fewer than the 48 rows needed ('tiny_town')" in capsys.readouterr().err
    assert main(["forecast", _bundle_dir(run), str(tmp_path / "with_short.csv"), "-o", str(out), "--skip-short"]) == 0
    assert "skipped 1 series shorter than 48 rows: 'tiny_town'" in capsys.readouterr().err
    assert set(pd.read_csv(out)["city"]) == {"san_francisco", "seattle"}


def test_model_arguments_that_are_not_bundles_are_named(good_model, tmp_path, capsys):
    args = [str(BAD_CSV_DIR / "good.csv"), "-o", str(tmp_path / "out.csv")]
    for name, expected in {
        str(tmp_path / "nowhere"): "no such model bundle",
        str(BAD_CSV_DIR): "is not a tsattn model bundle",
        str(BAD_CSV_DIR / "good.csv"): "is a file; a tsattn model is a bundle directory",
    }.items():
        assert main(["forecast", name, *args]) == 2
        assert expected in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_a_long_model_forecasts_series_it_never_saw_on_their_own_scale(long_model, weather_path, tmp_path):
    _, _, run = long_model
    weather = pd.read_csv(weather_path)
    seattle = weather[weather["city"] == "seattle"]
    # A new city: Seattle shifted by +100 degrees. Scaled by its own history, its forecast follows it.
    new = seattle.assign(city="hot_springs", temperature=seattle["temperature"] + 100)
    new.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "out.csv"
    assert main(["forecast", _bundle_dir(run), str(tmp_path / "new.csv"), "-o", str(out), "--quiet"]) == 0
    frame = pd.read_csv(out)
    assert set(frame["city"]) == {"hot_springs"} and frame["temperature"].between(120, 210).all()


def test_command_line_values_out_of_range_are_one_line(good_model, tmp_path, capsys):
    args = [good_model, str(BAD_CSV_DIR / "good.csv"), "-o", str(tmp_path / "out.csv")]
    for command, extra, expected in (
        ("forecast", ["--batch-size", "0"], "argument --batch-size: 0 must be at least 1"),
        ("backtest", ["--step", "0"], "argument --step: 0 must be at least 1"),
        ("backtest", ["--start", "2010-01-01T00:00+01:00"], "give the time without a UTC offset"),
    ):
        assert main([command, *args, *extra]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert expected in line
    assert not (tmp_path / "out.csv").exists()


def test_python_api_loads_every_kind_of_source_and_matches_the_cli(long_model, weather_path, tmp_path):
    """tsattn.load from a directory, runs:/ and models:/; forecast and backtest equal the commands'."""
    import json

    import tsattn

    _, uri, run = long_model
    text = pd.read_csv(weather_path)  # time as text
    typed = pd.read_csv(weather_path, parse_dates=["time"])  # time as datetime64
    assert typed["time"].dtype.kind == "M"
    models = {
        "directory": tsattn.load(_bundle_dir(run)),
        "run": tsattn.load(f"runs:/{run.info.run_id}", tracking_uri=uri),
        "registry": tsattn.load("models:/weather-lstm/1", tracking_uri=uri),
    }
    out = tmp_path / "cli.csv"
    assert main(["forecast", _bundle_dir(run), str(weather_path), "-o", str(out), "--quiet"]) == 0
    cli = pd.read_csv(out, parse_dates=["time"])
    for name, model in models.items():
        for history in (text, typed):
            frame = model.forecast(history)
            assert list(frame.columns) == ["city", "time", "step", "temperature"], name
            assert frame["time"].dtype.kind == "M"
            np.testing.assert_allclose(frame["temperature"], cli["temperature"], rtol=1e-6, err_msg=name)
            assert (frame["time"].to_numpy() == cli["time"].to_numpy()).all()
    short = models["directory"].forecast(typed, horizon=3)
    assert list(short["step"].unique()) == [1, 2, 3]
    np.testing.assert_allclose(short["temperature"], cli[cli["step"] <= 3]["temperature"], rtol=1e-6)
    with pytest.raises(tsattn.errors.TsattnError, match="--horizon 13: this model forecasts 1 to 12 steps"):
        models["directory"].forecast(typed, horizon=13)

    metrics_json = tmp_path / "metrics.json"
    cli_args = ["backtest", _bundle_dir(run), str(weather_path), "-o", str(tmp_path / "bt.csv"), "--quiet"]
    assert main([*cli_args, "--start", "earliest", "--step", "24", "--metrics-json", str(metrics_json)]) == 0
    result = models["directory"].backtest(typed, step=24, start="earliest")
    expected = json.loads(metrics_json.read_text())["metrics"]
    assert result.metrics["model"]["overall"]["mse"] == pytest.approx(expected["model"]["overall"]["mse"], rel=1e-9)
    assert len(result.rows) == len(pd.read_csv(tmp_path / "bt.csv"))
    border = models["directory"].backtest(text, step=24)  # the default, as the command's --start auto
    assert border.in_sample == 0 and border.windows < result.windows and result.in_sample > 0
    # A series the model never saw, beside the two it was trained on, starts as early as its history allows.
    other = text.assign(city=text["city"] + "-elsewhere")
    mixed = models["directory"].backtest(pd.concat([text, other], ignore_index=True), step=24)
    first = pd.to_datetime(mixed.rows.groupby("city")["origin"].min())
    known = sorted(text["city"].unique())[0]
    assert first[f"{known}-elsewhere"] < first[known] and mixed.in_sample == 0


def test_pyfunc_honours_the_horizon_parameter_and_datetime_times(long_model, weather_path):
    import mlflow.pyfunc

    _, _, run = long_model
    model = mlflow.pyfunc.load_model(f"{run.info.artifact_uri}/model")
    assert [p.name for p in model.metadata.get_params_schema().params] == ["horizon"]
    text = pd.read_csv(weather_path)
    typed = pd.read_csv(weather_path, parse_dates=["time"])
    full = model.predict(text)
    short = model.predict(typed, params={"horizon": 3})
    assert full["step"].max() == 12 and list(short["step"].unique()) == [1, 2, 3]
    np.testing.assert_allclose(short["temperature"], full[full["step"] <= 3]["temperature"], rtol=1e-6)


def test_the_readme_python_example_runs_as_written(long_model, weather_path, monkeypatch, capsys):
    """The README's Python block, with only the run id filled in, run in the directory holding the store."""
    import re

    from tests.conftest import REPO

    workdir, _, run = long_model
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if 'tsattn.load("runs:/<run id>")' in b]  # the fit example: tests/test_fit.py
    assert 'tsattn.load("runs:/<run id>")' in block and "data/weather_temps.csv" in block
    code = block.replace("<run id>", run.info.run_id).replace("data/weather_temps.csv", str(weather_path))
    monkeypatch.chdir(workdir)  # where logs/mlflow/mlflow.db is, as after `make train`
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # our own README, with a run id filled in
    future, result = namespace["future"], namespace["result"]
    assert list(future.columns) == ["city", "time", "step", "temperature"] and len(future) == 2 * 12
    assert result.in_sample == 0 and result.metrics["model"]["overall"]["mse"] > 0
    assert "mse" in capsys.readouterr().out


def test_ids_a_spreadsheet_would_run_are_written_as_text(long_model, weather_path, tmp_path):
    """OWASP's CSV injection rule: ids starting with = or @ get a leading ', unless --no-formula-guard."""
    workdir, uri, run = long_model
    history = pd.read_csv(weather_path)
    cities = sorted(history["city"].unique())
    history["city"] = history["city"].map(dict(zip(cities, ["=1+2", "@SUM(1)"], strict=True)))
    source = tmp_path / "formulas.csv"
    history.to_csv(source, index=False)
    args = ["forecast", f"runs:/{run.info.run_id}", str(source), "--tracking-uri", uri, "--quiet"]
    guarded, bare = tmp_path / "guarded.csv", tmp_path / "bare.csv"
    assert main([*args, "-o", str(guarded)]) == 0
    assert main([*args, "-o", str(bare), "--no-formula-guard"]) == 0
    assert set(pd.read_csv(guarded)["city"]) == {"'=1+2", "'@SUM(1)"}
    assert set(pd.read_csv(bare)["city"]) == {"=1+2", "@SUM(1)"}
    np.testing.assert_array_equal(pd.read_csv(guarded)["temperature"], pd.read_csv(bare)["temperature"])
    assert not any(line.startswith(("=", "@")) for line in guarded.read_text().splitlines())


def test_outputs_get_the_mode_of_a_new_file_without_touching_the_umask(good_model, tmp_path, monkeypatch):
    """The written file has the permissions the umask gives a new file, and os.umask is never called (it would
    set the process's umask to 0 for a moment, for every thread)."""
    import os

    previous = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda *_: pytest.fail("os.umask called"))
        out = tmp_path / "f.csv"
        assert main(["forecast", good_model, str(BAD_CSV_DIR / "good.csv"), "-o", str(out), "--quiet"]) == 0
        assert out.stat().st_mode & 0o777 == 0o640
        assert not list(tmp_path.glob(".*"))  # no probe or partial file left
    finally:
        monkeypatch.undo()
        os.umask(previous)


def _day_first(path, frame: pd.DataFrame):
    """`frame` with its time column written day first (31/01/2010 13:00), as many European exports are."""
    frame = frame.copy()
    frame["time"] = pd.to_datetime(frame["time"]).dt.strftime("%d/%m/%Y %H:%M")
    frame.to_csv(path, index=False)
    return path


def test_day_first_dates_are_refused_until_data_time_format_says_how_to_read_them(tmp_path, capsys):
    """Without data.time_format a day-first file is one line naming it (not rows "not in time order"); with
    it, training reads the same series as from ISO times and the bundle reads histories in that format."""
    good = pd.read_csv(BAD_CSV_DIR / "good.csv")
    day_first = _day_first(tmp_path / "day_first.csv", good)
    overrides = ["data=csv", "data.lookback=8", "data.horizon=2", "model=linear", "logger=none", "callbacks=none"]
    assert main(["train", f"data.path={day_first}", *overrides, f"paths.log_dir={tmp_path / 'logs'}"]) == 2
    # good.csv spans days 1 to 4: both readings parse, only day first is regular and in order.
    assert "only when read day first; set data.time_format='%d/%m/%Y %H:%M'" in capsys.readouterr().err

    day_first_format = "data.time_format='%d/%m/%Y %H:%M'"
    bundle, run = build_bundle(tmp_path / "m", *overrides, f"data.path={day_first}", day_first_format)
    iso_bundle, iso_run = build_bundle(tmp_path / "iso", *overrides, f"data.path={BAD_CSV_DIR / 'good.csv'}")
    times = [r.datamodule.collection.series[0].time for r in (run, iso_run)]
    np.testing.assert_array_equal(*times)
    out, iso_out = tmp_path / "f.csv", tmp_path / "iso.csv"
    assert main(["forecast", str(bundle), str(day_first), "-o", str(out), "--quiet"]) == 0
    assert main(["forecast", str(iso_bundle), str(BAD_CSV_DIR / "good.csv"), "-o", str(iso_out), "--quiet"]) == 0
    assert pd.read_csv(out)["time"].tolist() == pd.read_csv(iso_out)["time"].tolist()  # written in ISO
    code = main(["forecast", str(bundle), str(BAD_CSV_DIR / "good.csv"), "-o", str(out), "--quiet"])
    assert code == 2 and "with data.time_format='%d/%m/%Y %H:%M'" in capsys.readouterr().err


def test_a_day_first_history_for_a_model_trained_on_iso_times_says_to_retrain(good_model, tmp_path, capsys):
    """The model's time format was fixed in training: the message points at the history or at retraining, not
    at a data.* setting this command does not take."""
    day_first = _day_first(tmp_path / "day_first.csv", pd.read_csv(BAD_CSV_DIR / "good.csv"))
    assert main(["forecast", good_model, str(day_first), "-o", str(tmp_path / "f.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the model reads times as its training file wrote them" in err and "retrain with data.time_format" in err
