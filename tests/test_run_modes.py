"""train=false, test=false and ckpt_path: a run's logged model is always the weights it stands for."""

from __future__ import annotations

import pytest
import torch

from tsattn.cli import main

TINY = [
    "data=weather",
    "data.lookback=48",
    "data.horizon=12",
    "model.net.hidden_size=8",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow store for the runs of this module; returns (log dir, run with the given overrides)."""
    from mlflow import MlflowClient

    from tsattn.config import compose
    from tsattn.training.train import train

    log_dir = tmp_path_factory.mktemp("modes")
    client = MlflowClient(f"sqlite:///{log_dir / 'mlflow' / 'mlflow.db'}")

    def run(*overrides):
        metrics = train(compose([*TINY, *overrides, f"paths.log_dir={log_dir}"]))
        experiment = client.get_experiment_by_name("weather").experiment_id
        latest = client.search_runs([experiment], order_by=["attributes.start_time DESC"], max_results=1)[0]
        return metrics, latest

    return log_dir, client, run


def _artifacts(client, run) -> set[str]:
    return {a.path for a in client.list_artifacts(run.info.run_id)}


def _bundle_weights(client, run, tmp_path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(client.download_artifacts(run.info.run_id, "bundle/weights.safetensors", str(tmp_path)))


def test_test_false_still_logs_the_best_weights_as_the_model(store, tmp_path):
    log_dir, client, run = store
    _, logged = run("test=false", "seed=1")
    assert logged.info.status == "FINISHED" and not any(k.startswith("test/") for k in logged.data.metrics)
    assert _artifacts(client, logged) == {"bundle", "model", "config.yaml", "data.json"}  # nothing from the test split
    # The weights the run stands for: its best epoch's, or its ridge start's when no epoch beat that.
    kept_start = logged.data.metrics["val/start_kept"] == 1.0
    pattern = "start.ckpt" if kept_start else "epoch*.ckpt"
    (best,) = [p for p in log_dir.glob(f"checkpoints/*/*/{pattern}") if "seed1" in str(p)]
    checkpoint = torch.load(best, weights_only=True)["state_dict"]
    bundle = _bundle_weights(client, logged, tmp_path)
    assert bundle.keys() == {k.removeprefix("forecaster.net.") for k in checkpoint}
    for name, tensor in bundle.items():
        torch.testing.assert_close(tensor, checkpoint[f"forecaster.net.{name}"], rtol=0, atol=0)


def test_train_false_logs_no_untrained_model_but_a_given_checkpoint_is_one(store, tmp_path, caplog):
    log_dir, client, run = store
    metrics, untrained = run("train=false", "seed=2")
    assert "test/mse" in metrics  # the untrained weights are scored, as asked
    assert "bundle" not in _artifacts(client, untrained) and "model" not in _artifacts(client, untrained)
    assert "the model is untrained, and no bundle is logged for it" in caplog.text

    run("seed=3")  # a trained run, whose best checkpoint is then given to train=false
    (best,) = [p for p in log_dir.glob("checkpoints/*/*/epoch*.ckpt") if "seed3" in str(p)]
    _, tested = run("train=false", "seed=3", f"ckpt_path={best}")
    assert {"bundle", "model", "forecasts"} <= _artifacts(client, tested)
    checkpoint = torch.load(best, weights_only=True)["state_dict"]
    for name, tensor in _bundle_weights(client, tested, tmp_path).items():
        torch.testing.assert_close(tensor, checkpoint[f"forecaster.net.{name}"], rtol=0, atol=0)


def test_resuming_needs_checkpoints(tmp_path, capsys):
    code = main(["train", *TINY, "callbacks=none", "ckpt_path=last", f"paths.log_dir={tmp_path}"])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "ckpt_path=last resumes from the run's own checkpoints, but this config writes none" in line
    assert not list(tmp_path.rglob("mlflow.db"))  # refused before any run was recorded


def test_a_window_longer_than_the_positional_encoding_is_one_line(tmp_path, capsys):
    overrides = ["model=transformer", "model.segment_len=1", "model.net.d_model=8", "model.net.max_len=50"]
    overrides.append("logger=none")
    window = [o for o in TINY if "hidden_size" not in o]
    assert main(["train", *window, *overrides, f"paths.log_dir={tmp_path}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "reads 60 positions" in line and "model.net.max_len=50; raise model.net.max_len" in line
