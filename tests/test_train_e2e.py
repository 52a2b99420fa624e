"""`tsattn train` end to end: the one real training process, on the bundled data, into the default store of a
fresh directory (logs/mlflow/mlflow.db), then what a user does next with what it printed."""

from __future__ import annotations

import json
import math
import shlex

import pandas as pd
import pytest
import yaml

from tests.conftest import run_tsattn
from tsattn.cli import main

TINY = [
    "data=weather",
    "data.lookback=48",
    "data.horizon=12",
    "model.net.hidden_size=16",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "seed=3",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    result = run_tsattn(["train", *TINY], cwd=workdir)  # paths.log_dir: its default, ./logs
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir, result


def test_the_output_is_tsattns_own_lines_without_bars_or_library_chatter(trained):
    """Output that is not a terminal (a log file, CI) gets no progress bar; Lightning's and MLflow's
    information lines (device availability, product tips, the layer table, database set-up) stay out."""
    _, result = trained
    output = result.stdout + result.stderr
    for chatter in ("it/s]", "Epoch 0:", "GPU available", "Tip:", "Total params", "Creating initial MLflow", "INFO:"):
        assert chatter not in output, chatter
    assert "model lstm_seq2seq: LSTMSeq2Seq, " in output and " trainable parameters" in output
    assert "done: val/loss_best=" in output
    assert len(output) < 8000  # a handful of lines: what was read, chosen, trained and where it went


def _uri(workdir) -> str:
    return f"sqlite:///{workdir / 'logs' / 'mlflow' / 'mlflow.db'}"


def _the_run(trained):
    from mlflow.tracking import MlflowClient

    workdir, _ = trained
    client = MlflowClient(tracking_uri=_uri(workdir))
    (run,) = client.search_runs([client.get_experiment_by_name("weather").experiment_id])
    return client, run


def test_run_is_recorded_in_mlflow(trained):
    workdir, result = trained
    client, run = _the_run(trained)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "lstm_seq2seq-weather-seed3"

    params = run.data.params
    assert params["data/lookback"] == "48"
    assert params["model/net/hidden_size"] == "16"
    assert params["model/net/_target_"] == "tsattn.models.lstm_seq2seq.LSTMSeq2Seq"
    assert params["seed"] == "3"
    assert params["data/season_length"] == "24"  # the one used (inferred from hourly data), not "None"

    metrics = run.data.metrics
    for key in (
        "train/loss",
        "val/loss",
        "val/mse",
        "val/mae",
        "test/mse",
        "test/mae",
        "test/skill_mse",
        "test/snaive_mse",
        "test/snaive_mae",
        "test/skill_snaive",
        "test/best_naive_mse",
        "test/skill_best_naive",
        "val/last_value_mse",
        "val/seasonal_naive_24_mse",
        "test/seasonal_naive_24_mse",
    ):
        assert math.isfinite(metrics[key]), key
    # L=48 holds a day of hourly data, not a week: the validation windows chose between the last value and a day.
    assert params["data/best_naive"] == "seasonal_naive_24" and params["data/season_candidates"] == "[24, 168]"
    assert "val/seasonal_naive_168_mse" not in metrics
    # The chosen rule is the data's season here: the same forecast of the same (limited) test batches.
    assert metrics["test/best_naive_mse"] == pytest.approx(metrics["test/snaive_mse"])
    assert metrics["test/skill_snaive"] == pytest.approx(1 - metrics["test/mse"] / metrics["test/snaive_mse"])
    # One val/loss per epoch: per-epoch history, not just a final value.
    assert len(client.get_metric_history(run.info.run_id, "val/loss")) == 2
    assert "val/loss_tf" not in metrics  # a second decoder pass, only with model.teacher_forced_validation=true
    assert {f"test/mse_h{h}" for h in range(1, 13)} | {f"test/snaive_mse_h{h}" for h in range(1, 13)} <= set(metrics)

    assert len(client.get_metric_history(run.info.run_id, "train/lr")) == 2
    # The best of the epochs and of the ridge start the run began from (kept unless an epoch beats it); the
    # start's validation is no epoch, so it is not in the history.
    epochs = [m.value for m in client.get_metric_history(run.info.run_id, "val/loss")]
    assert metrics["val/loss_best"] == min([*epochs, metrics["val/loss_start"]])
    assert metrics["val/start_kept"] == float(metrics["val/loss_start"] <= min(epochs))

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "data.json", "bundle", "model", "forecasts", "plots"} <= artifacts
    config = yaml.safe_load(open(client.download_artifacts(run.info.run_id, "config.yaml", str(workdir))))
    assert config["data"]["lookback"] == 48 and config["seed"] == 3
    data = json.loads(open(client.download_artifacts(run.info.run_id, "data.json", str(workdir))).read())
    assert set(data["borders"]) == set(data["scaler"]["stats"]) == {"san_francisco", "seattle"}
    assert data["season_length"] == 24
    # Both cities give windows in every split, and the run says so: no series is left out silently.
    assert data["series_without_window"] == {"train": {}, "val": {}, "test": {}}
    assert params["data/series_without_window"] == '{"train": 0, "val": 0, "test": 0}'
    assert params["data/split_used"] == "RatioSplit(train=0.7, val=0.1, short_series=tail)"
    bundle = {a.path for a in client.list_artifacts(run.info.run_id, "bundle")}
    assert bundle == {f"bundle/{name}" for name in ("weights.safetensors", "config.yaml", "scaler.json", "schema.json")}
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {"plots/test_forecasts.png"}
    assert "season 24 steps, inferred" in result.stdout + result.stderr  # the data line says it


def test_the_end_of_run_message_gives_commands_that_work(trained, tmp_path, monkeypatch, capsys):
    workdir, result = trained
    _, run = _the_run(trained)
    printed = result.stdout + result.stderr
    assert "skill vs last value +" in printed and "skill vs seasonal naive " in printed  # both skills
    ui = f"open it with: mlflow ui --backend-store-uri {_uri(workdir)} --port 5000"
    assert ui in printed
    (line,) = [line for line in printed.splitlines() if "forecast with: " in line]
    command = shlex.split(line.split("forecast with: ", 1)[1])
    # The default store of the directory it ran in: no --tracking-uri to type.
    assert command[:3] == ["tsattn", "forecast", f"runs:/{run.info.run_id}"] and "--tracking-uri" not in command

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(workdir)
    assert main(command[1:]) == 0
    frame = pd.read_csv(workdir / "forecast.csv")
    assert set(frame["city"]) == {"san_francisco", "seattle"} and frame["step"].max() == 12

    monkeypatch.chdir(tmp_path)  # elsewhere there is no store: named, and not created
    assert main([*command[1:4], "-o", str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err
    assert f"no MLflow store at {tmp_path / 'logs' / 'mlflow' / 'mlflow.db'}; run tsattn train from this" in err
    assert list(tmp_path.iterdir()) == []  # no ./mlflow.db, no logs/


def test_run_tags_identify_code_and_data(trained, weather_path):
    import hashlib

    from tsattn import __version__

    _, run = _the_run(trained)
    tags = run.data.tags
    assert tags["tsattn.version"] == __version__
    assert tags["tsattn.data_sha256"] == hashlib.sha256(weather_path.read_bytes()).hexdigest()
    assert tags["tsattn.model"] == "lstm_seq2seq" and tags["tsattn.seed"] == "3"
    assert "mlflow.parentRunId" not in tags  # a single run has no sweep parent
    assert len(tags["tsattn.git_commit"]) == 40  # the tests run from tsattn's own checkout


def test_test_forecasts_csv_tiles_the_test_span_in_real_units(trained):
    workdir, _ = trained
    client, run = _the_run(trained)
    frame = pd.read_csv(client.download_artifacts(run.info.run_id, "forecasts/test_forecasts.csv", str(workdir)))
    assert list(frame.columns) == ["series", "origin", "time", "step", "target", "actual", "forecast"]
    assert set(frame["series"]) == {"san_francisco", "seattle"} and frame["step"].max() == 12
    # Origins 12 steps apart: the test span once, no overlap.
    origins = pd.to_datetime(frame[frame["series"] == "seattle"]["origin"].drop_duplicates())
    assert (origins.diff().dropna() == pd.Timedelta(hours=12)).all()
    # The forecasts, not only the actuals, are in degrees Fahrenheit: scaled values would sit near 0 and
    # miss each city's level by tens of degrees.
    for _, rows in frame.groupby("series"):
        assert rows["forecast"].between(20, 110).all()
        assert abs(rows["forecast"].mean() - rows["actual"].mean()) < 10


def test_pyfunc_model_forecasts_from_a_history_frame(trained, weather_path):
    import mlflow.pyfunc

    _, run = _the_run(trained)
    model = mlflow.pyfunc.load_model(f"{run.info.artifact_uri}/model")
    history = pd.read_csv(weather_path)
    forecasts = model.predict(history)
    assert list(forecasts.columns) == ["city", "time", "step", "temperature"]
    assert len(forecasts) == 2 * 12
    last = pd.to_datetime(history["time"]).max()
    assert pd.to_datetime(forecasts["time"]).min() == last + pd.Timedelta(hours=1)


def test_checkpoint_and_hydra_run_dir_land_under_log_dir(trained):
    workdir, _ = trained
    (run_dir,) = (workdir / "logs" / "runs").iterdir()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "testing the best checkpoint" in (run_dir / "train.log").read_text()
    assert len(list((workdir / "logs" / "checkpoints").glob("weather-seed3-*/*/last.ckpt"))) == 1


def test_checkpoints_hold_no_pickled_objects(trained):
    import torch

    workdir, _ = trained
    (last,) = (workdir / "logs" / "checkpoints").glob("*/*/last.ckpt")
    checkpoint = torch.load(last, weights_only=True)
    (datamodule_state,) = [v for k, v in checkpoint.items() if k.endswith("ForecastDataModule")]
    assert set(datamodule_state["scaler"]["stats"]) == {"san_francisco", "seattle"}


def test_registered_model_loads_from_the_registry_and_matches_the_run(trained, weather_path):
    import mlflow
    import mlflow.pyfunc

    workdir, _ = trained
    client, run = _the_run(trained)
    client.create_registered_model("weather-lstm")
    version = client.create_model_version("weather-lstm", f"{run.info.artifact_uri}/model", run.info.run_id)
    history = pd.read_csv(weather_path)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(_uri(workdir))  # models:/ URIs resolve through the fluent API's tracking URI
    try:
        registered = mlflow.pyfunc.load_model(f"models:/weather-lstm/{version.version}").predict(history)
    finally:
        mlflow.set_tracking_uri(previous)
    direct = mlflow.pyfunc.load_model(f"{run.info.artifact_uri}/model").predict(history)
    pd.testing.assert_frame_equal(registered, direct)
