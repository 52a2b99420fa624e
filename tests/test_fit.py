"""`tsattn.fit`: training from Python composes the config `tsattn train` runs, so the same overrides and
seed give the same metrics, from a CSV path or a DataFrame; the Run holds the id, metrics and bundle."""

from __future__ import annotations

import pandas as pd
import pytest

import tsattn
from tsattn.cli import main
from tsattn.errors import TsattnError

WEATHER = [
    "data.id_col=city",
    "data.targets=[temperature]",
    "data.missing=interpolate",
    "data.lookback=48",
    "data.horizon=12",
    "model.net.hidden_size=8",
    "seed=3",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
COMPARED = ("test/mse", "test/mae", "test/crps", "test/naive_mse", "val/loss_best")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, weather_path):
    root = tmp_path_factory.mktemp("fit")
    overrides = [*WEATHER, f"paths.log_dir={root / 'logs'}"]
    run = tsattn.fit(weather_path, model="lstm_seq2seq", overrides=overrides)
    return root, overrides, run


def test_fit_gives_the_metrics_of_tsattn_train_for_the_same_overrides_and_seed(fitted, weather_path):
    from mlflow import MlflowClient

    root, overrides, run = fitted
    assert main(["train", "data=csv", f"data.path={weather_path}", "model=lstm_seq2seq", *overrides]) == 0
    client = MlflowClient(run.tracking_uri)
    assert run.tracking_uri == f"sqlite:///{root / 'logs' / 'mlflow' / 'mlflow.db'}"  # the CLI's default store
    assert weather_path.stem == "weather_temps"  # data=csv names its data, and so the experiment, after the file
    experiment = client.get_experiment_by_name("weather_temps").experiment_id
    runs = {r.info.run_id: r for r in client.search_runs([experiment])}
    assert len(runs) == 2 and run.run_id in runs
    cli = next(r for run_id, r in runs.items() if run_id != run.run_id)
    fitted_run = runs[run.run_id]
    for key in COMPARED:
        assert run.metrics[key] == pytest.approx(cli.data.metrics[key], rel=1e-6), key
        assert fitted_run.data.metrics[key] == pytest.approx(cli.data.metrics[key], rel=1e-6), key
    assert fitted_run.data.tags["tsattn.model"] == cli.data.tags["tsattn.model"] == "lstm_seq2seq"
    assert fitted_run.info.status == "FINISHED"


def test_the_run_holds_its_bundle_and_model(fitted, weather_path):
    _, _, run = fitted
    assert (run.bundle_path / "schema.json").is_file() and (run.bundle_path / "weights.safetensors").is_file()
    history = pd.read_csv(weather_path)
    future = run.model.forecast(history)
    assert len(future) == 12 * history["city"].nunique()
    assert run.model is run.model  # loaded once


def test_a_dataframe_trains_the_same_model_as_its_csv(fitted, weather_path, tmp_path):
    _, _, run = fitted
    overrides = [*WEATHER, f"paths.log_dir={tmp_path / 'logs'}"]
    from_frame = tsattn.fit(pd.read_csv(weather_path), model="lstm_seq2seq", overrides=overrides)
    for key in COMPARED:
        assert from_frame.metrics[key] == pytest.approx(run.metrics[key], rel=1e-6), key
    written = list((tmp_path / "logs" / "data").glob("frame-*.csv"))  # the file the run names
    assert len(written) == 1 and pd.read_csv(written[0]).equals(pd.read_csv(weather_path))


@pytest.mark.parametrize(
    ("data", "overrides", "message"),
    [
        (123, [], "fit(data=...) takes a CSV path or a pandas DataFrame, not int"),
        ("no-such.csv", [], "no-such.csv: no such CSV file"),
        ("WEATHER", ["data=etth1"], "data, model and the tracking store are fit's own arguments"),
        ("WEATHER", ["model.net.hidden_sise=8"], "hidden_sise"),
    ],
)
def test_mistakes_raise_one_clear_error(data, overrides, message, weather_path, tmp_path):
    data = weather_path if data == "WEATHER" else data
    with pytest.raises(TsattnError, match=None) as raised:
        tsattn.fit(data, overrides=[*overrides, f"paths.log_dir={tmp_path}"])
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "mlflow").exists()  # nothing was recorded


def test_the_readme_fit_example_runs_and_its_compare_command_ranks_both_runs(etth1_path, tmp_path, monkeypatch, capsys):
    """The README's fit block (ETTh1's MUFL alone and with HUFL known ahead), with short training added and
    the data path filled in, then its compare command."""
    import json
    import re

    from tests.conftest import REPO

    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if "tsattn.fit(" in b]
    assert '"seed=1"]' in block and 'pd.read_csv("ETTh1.csv")' in block
    quick = '"seed=1", "data.lookback=48", "trainer.max_epochs=1", "+trainer.limit_train_batches=3", '
    quick += '"+trainer.limit_val_batches=2", "+trainer.limit_test_batches=1"'
    code = block.replace('"seed=1"', quick).replace('"ETTh1.csv"', repr(str(etth1_path)))
    monkeypatch.chdir(tmp_path)  # the runs go to ./logs, as from a notebook started here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # our own README, with short training
    forecast, planned = namespace["forecast"], namespace["planned"]
    assert list(forecast.columns) == ["date", "step", "MUFL"] and len(forecast) == 24
    assert list(pd.to_datetime(forecast["date"])) == list(pd.to_datetime(planned["date"]))
    known = namespace["known"]
    assert (
        known.model.schema["future_covariates"] == ["HUFL"]
        and namespace["alone"].model.schema["future_covariates"] == []
    )
    capsys.readouterr()
    command = re.search(r"`tsattn (compare --experiment dataframe [^`]*)`", (REPO / "README.md").read_text()).group(1)
    uri = f"sqlite:///{tmp_path / 'logs' / 'mlflow' / 'mlflow.db'}"
    assert main([*command.split(), "--tracking-uri", uri, "--format", "json"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert len(groups) == 2 and all(g["runs"] == 1 and g["last_value"] is not None for g in groups)


def test_mistakes_in_a_dataframe_name_it_and_suggest_the_id_column(tmp_path):
    """The DataFrame is written to a file of fit's own: the message names the DataFrame, not that file, and a
    text column whose values repeat is taken for what it most likely is, the series ids of a long table."""
    times = pd.date_range("2024-01-01", periods=50, freq="h")
    frame = pd.concat([pd.DataFrame({"store": s, "time": times, "sales": range(50)}) for s in ("north", "south")])
    with pytest.raises(tsattn.errors.TsattnError) as caught:
        tsattn.fit(frame, model="linear", overrides=[f"paths.log_dir={tmp_path}"])
    message = str(caught.value)
    assert message.startswith("the DataFrame given to fit(): column 'store' holds text that repeats ('north'...)")
    assert "set data.id_col=store" in message and str(tmp_path) not in message


def test_fit_prints_the_commands_lines_unless_logging_is_configured(monkeypatch, capsys):
    """Without a handler for tsattn's logger (a plain script), fit prints tsattn's lines, the `done:` summary
    among them, on stderr for its duration only; a configured logger is left alone."""
    import logging

    from tsattn.training.fit import _progress_lines

    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # pytest's own capture handlers, set aside
    train_log = logging.getLogger("tsattn.training.train")
    with _progress_lines():
        train_log.info("done: val/loss_best=0.1")
    train_log.info("after fit")
    err = capsys.readouterr().err
    assert "tsattn: done: val/loss_best=0.1" in err and "after fit" not in err
    assert not logging.getLogger("tsattn").handlers
