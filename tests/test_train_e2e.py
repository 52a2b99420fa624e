"""`tsattn train` end to end: a real run on the bundled data, recorded in a temporary MLflow store."""

from __future__ import annotations

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
    for key in ("train/loss", "val/loss", "val/loss_tf", "val/mse", "val/mae", "test/mse", "test/mae", "test/skill_mse"):
        assert math.isfinite(metrics[key]), key
    # One val/loss per epoch: per-epoch history, not just a final value.
    assert len(client.get_metric_history(run.info.run_id, "val/loss")) == 2
    assert len(client.get_metric_history(run.info.run_id, "val/loss_tf")) == 2
    assert {f"test/mse_h{h}" for h in range(1, 13)} <= set(metrics)

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "data.json"} <= artifacts
    config = yaml.safe_load(open(client.download_artifacts(run.info.run_id, "config.yaml", str(workdir))))
    assert config["data"]["lookback"] == 48 and config["seed"] == 3


def test_checkpoint_and_hydra_run_dir_land_under_log_dir(trained):
    workdir, _ = trained
    (run_dir,) = (workdir / "logs" / "runs").iterdir()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "testing the best checkpoint" in (run_dir / "train.log").read_text()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_checkpoints_hold_no_pickled_objects(trained):
    import torch

    workdir, _ = trained
    (run_dir,) = (workdir / "logs" / "runs").iterdir()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
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
    assert sorted(r.info.run_name for r in runs) == ["lstm_seq2seq-weather-seed0", "lstm_seq2seq-weather-seed1"]
    assert all(r.info.status == "FINISHED" and "test/mse" in r.data.metrics for r in runs)
