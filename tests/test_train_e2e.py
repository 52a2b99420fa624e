"""`tsattn train` end to end: a real run on the bundled data, recorded in a temporary MLflow store."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from tests.conftest import run_tsattn

TINY = [
    "data.lookback=48",
    "data.horizon=12",
    "model.net.hidden_size=16",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "seed=3",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    result = run_tsattn(["train", *TINY, f"paths.log_dir={workdir / 'logs'}"], cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir, result


def test_run_is_recorded_in_mlflow(trained):
    from mlflow.tracking import MlflowClient

    workdir, result = trained
    uri = f"sqlite:///{workdir / 'logs' / 'mlflow' / 'mlflow.db'}"
    assert uri in result.stdout + result.stderr  # the user is told where the run is
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("weather")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "lstm_seq2seq-weather-seed3"

    params = run.data.params
    assert params["data/lookback"] == "48"
    assert params["model/net/hidden_size"] == "16"
    assert params["model/net/_target_"] == "tsattn.models.lstm_seq2seq.LSTMSeq2Seq"
    assert params["seed"] == "3"

    metrics = run.data.metrics
    for key in (
        "train/loss",
        "val/loss",
        "val/loss_tf",
        "val/mse",
        "val/mae",
        "test/mse",
        "test/mae",
        "test/skill_mse",
    ):
        assert math.isfinite(metrics[key]), key
    # One val/loss per epoch: per-epoch history, not just a final value.
    assert len(client.get_metric_history(run.info.run_id, "val/loss")) == 2
    assert len(client.get_metric_history(run.info.run_id, "val/loss_tf")) == 2
    assert {f"test/mse_h{h}" for h in range(1, 13)} <= set(metrics)

    assert len(client.get_metric_history(run.info.run_id, "train/lr")) == 2
    assert metrics["val/loss_best"] == min(m.value for m in client.get_metric_history(run.info.run_id, "val/loss"))

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "data.json", "bundle", "model", "forecasts", "plots"} <= artifacts
    config = yaml.safe_load(open(client.download_artifacts(run.info.run_id, "config.yaml", str(workdir))))
    assert config["data"]["lookback"] == 48 and config["seed"] == 3
    data = json.loads(open(client.download_artifacts(run.info.run_id, "data.json", str(workdir))).read())
    assert set(data["borders"]) == set(data["scaler"]["stats"]) == {"san_francisco", "seattle"}
    bundle = {a.path for a in client.list_artifacts(run.info.run_id, "bundle")}
    assert bundle == {f"bundle/{name}" for name in ("weights.safetensors", "config.yaml", "scaler.json", "schema.json")}
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {"plots/test_forecasts.png"}


def test_run_tags_identify_code_and_data(trained, weather_path):
    import hashlib

    from tsattn import __version__

    run = _the_run(trained)
    tags = run.data.tags
    assert tags["tsattn.version"] == __version__
    assert tags["tsattn.data_sha256"] == hashlib.sha256(weather_path.read_bytes()).hexdigest()
    assert tags["tsattn.model"] == "lstm_seq2seq" and tags["tsattn.seed"] == "3"
    assert "mlflow.parentRunId" not in tags  # a single run has no sweep parent
    assert len(tags["tsattn.git_commit"]) == 40  # the tests run from tsattn's own checkout


def test_test_forecasts_csv_tiles_the_test_span_in_real_units(trained):
    import pandas as pd
    from mlflow.tracking import MlflowClient

    workdir, _ = trained
    run = _the_run(trained)
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'logs' / 'mlflow' / 'mlflow.db'}")
    frame = pd.read_csv(client.download_artifacts(run.info.run_id, "forecasts/test_forecasts.csv", str(workdir)))
    assert list(frame.columns) == ["series", "origin", "time", "step", "target", "actual", "forecast"]
    assert set(frame["series"]) == {"san_francisco", "seattle"} and frame["step"].max() == 12
    # Origins 12 steps apart: the test span once, no overlap.
    origins = pd.to_datetime(frame[frame["series"] == "seattle"]["origin"].drop_duplicates())
    assert (origins.diff().dropna() == pd.Timedelta(hours=12)).all()
    assert frame["actual"].between(20, 110).all()  # degrees Fahrenheit, not scaled values


def test_pyfunc_model_forecasts_from_a_history_frame(trained, weather_path):
    import mlflow.pyfunc
    import pandas as pd

    run = _the_run(trained)
    model = mlflow.pyfunc.load_model(f"{run.info.artifact_uri}/model")
    history = pd.read_csv(weather_path)
    forecasts = model.predict(history)
    assert list(forecasts.columns) == ["city", "time", "step", "temperature"]
    assert len(forecasts) == 2 * 12
    last = pd.to_datetime(history["time"]).max()
    assert pd.to_datetime(forecasts["time"]).min() == last + pd.Timedelta(hours=1)


def _the_run(trained):
    from mlflow.tracking import MlflowClient

    workdir, _ = trained
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'logs' / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("weather").experiment_id])
    return run


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


def test_version_and_help_do_not_import_torch(tmp_path):
    import subprocess
    import sys

    code = "import sys, tsattn.cli as c; c.main(['--help']); print('torch' in sys.modules, 'lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False False")
    assert run_tsattn(["--version"], cwd=tmp_path).stdout.startswith("tsattn ")


def test_a_sweep_records_every_job_in_one_store(tmp_path):
    from mlflow.tracking import MlflowClient

    tiny = [a for a in TINY if not a.startswith(("seed=", "trainer.max_epochs="))]
    args = ["train", "-m", "seed=0,1", *tiny, "trainer.max_epochs=1"]
    result = run_tsattn([*args, f"paths.log_dir={tmp_path / 'logs'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'logs' / 'mlflow' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("weather").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("tsattn.role") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/runs"] == 2
    assert "seed=0,1" in parent.data.tags["tsattn.sweep_overrides"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    # Seeds in the names, and the job number keeps them apart even when other overrides are swept.
    assert sorted(r.info.run_name for r in children) == [
        "lstm_seq2seq-weather-seed0-job0",
        "lstm_seq2seq-weather-seed1-job1",
    ]
    for child in children:
        assert child.info.status == "FINISHED" and "test/mse" in child.data.metrics
        assert child.data.params["trainer/max_epochs"] == "1"
        assert {"bundle", "model", "forecasts"} <= {a.path for a in client.list_artifacts(child.info.run_id)}


def test_registered_model_loads_from_the_registry_and_matches_the_run(trained, weather_path):
    import mlflow
    import mlflow.pyfunc
    import pandas as pd
    from mlflow import MlflowClient

    workdir, _ = trained
    run = _the_run(trained)
    uri = f"sqlite:///{workdir / 'logs' / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_registered_model("weather-lstm")
    version = client.create_model_version("weather-lstm", f"{run.info.artifact_uri}/model", run.info.run_id)
    history = pd.read_csv(weather_path)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # models:/ URIs resolve through the fluent API's tracking URI
    try:
        registered = mlflow.pyfunc.load_model(f"models:/weather-lstm/{version.version}").predict(history)
    finally:
        mlflow.set_tracking_uri(previous)
    direct = mlflow.pyfunc.load_model(f"{run.info.artifact_uri}/model").predict(history)
    pd.testing.assert_frame_equal(registered, direct)
