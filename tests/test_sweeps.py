"""Sweeps: parallel jobs on one store with a thread each, an Optuna search that resumes and prunes, and DDP
evaluation that scores every window once."""

from __future__ import annotations

import math
import os

import numpy as np
import optuna  # here, not inside a test: its log handler would keep a capture that closes with the test
import pytest

from tests.conftest import run_tsattn

TINY = [
    "data=weather",
    "data.lookback=48",
    "data.horizon=12",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def _client(log_dir):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{log_dir / 'mlflow' / 'mlflow.db'}")


def _runs(log_dir):
    client = _client(log_dir)
    runs = client.search_runs([client.get_experiment_by_name("weather").experiment_id])
    parents = [r for r in runs if r.data.tags.get("tsattn.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("tsattn.role") != "sweep"]
    return client, parents, children


def test_search_space_syntax_maps_to_optuna_distributions():
    import optuna.distributions as d

    from hydra_plugins.tsattn_optuna_sweeper.search_space import parse_search_space

    space, fixed = parse_search_space(
        [
            "model.optimizer.lr=tag(log, interval(1e-4, 1e-2))",
            "model.net.hidden_size=choice(32, 64)",
            "model.net.num_layers=range(1, 4)",
            "model.net.dropout=interval(0.0, 0.3)",
            "data.lookback=96",
        ]
    )
    assert space["model.optimizer.lr"] == d.FloatDistribution(1e-4, 1e-2, log=True)
    assert space["model.net.hidden_size"] == d.CategoricalDistribution([32, 64])
    assert space["model.net.num_layers"] == d.IntDistribution(1, 3)  # range excludes its stop, as in Hydra
    assert space["model.net.dropout"] == d.FloatDistribution(0.0, 0.3)
    assert fixed == ["data.lookback=96"]


@pytest.mark.slow
def test_optuna_search_records_trials_resumes_its_study_and_prunes(tmp_path, capsys, monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    from tsattn.cli import main

    def search(*overrides: str) -> str:
        """`tsattn train -m` in this process; returns what it printed."""
        before = HydraConfig.instance().cfg
        args = ["train", "-m", "hparams_search=lstm_seq2seq_optuna", *TINY, *overrides]
        code = main([*args, f"paths.log_dir={tmp_path}"])
        # A multirun sets Hydra's global config in MULTIRUN mode; the command gives the caller's back.
        assert HydraConfig.instance().cfg is before
        captured = capsys.readouterr()
        assert code == 0, captured.out + captured.err
        return captured.out + captured.err

    # As `tsattn train` run by a user in this directory, whatever store or Hydra settings the caller's shell has.
    for name in [k for k in os.environ if k.startswith(("MLFLOW_", "HYDRA_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    search("hydra.sweeper.n_trials=2")
    study_name = "lstm_seq2seq-weather-mse"  # the model, the data and the loss whose scale val/loss_best is on
    storage = f"sqlite:///{tmp_path / 'optuna' / f'{study_name}.db'}"
    study = optuna.load_study(study_name=study_name, storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2

    client, (parent,), children = _runs(tmp_path)
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/runs"] == 2
    assert parent.data.metrics["sweep/best_value"] == pytest.approx(study.best_value)
    assert {"optimization_results.yaml"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        trial = study.trials[int(child.data.tags["optuna.trial"])]
        # The run carries the sampled hyperparameters, and the trial's value is the run's best val/loss.
        assert child.data.params["model/net/hidden_size"] == str(trial.params["model.net.hidden_size"])
        assert float(child.data.params["model/optimizer/lr"]) == pytest.approx(trial.params["model.optimizer.lr"])
        assert child.data.metrics["val/loss_best"] == pytest.approx(trial.value)
        assert math.isfinite(child.data.metrics["test/mse"])
        assert {"bundle", "model", "forecasts", "plots"} <= {a.path for a in client.list_artifacts(child.info.run_id)}

    # The same search again adds to the study; with a threshold no validation loss can meet, the pruner
    # stops the new trial at its first report, and it is recorded PRUNED.
    prune_all = ["hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "+hydra.sweeper.pruner.upper=0.0"]
    prune_all += ["~hydra.sweeper.pruner.n_startup_trials", "~hydra.sweeper.pruner.n_warmup_steps"]
    assert "earlier trials 2, to run 1" in search("hydra.sweeper.n_trials=1", *prune_all)
    study = optuna.load_study(study_name=study_name, storage=storage)
    assert len(study.trials) == 3 and study.trials[2].state == optuna.trial.TrialState.PRUNED
    client, parents, children = _runs(tmp_path)
    assert len(parents) == 2 and len(children) == 3
    (pruned,) = [c for c in children if c.data.tags["optuna.trial"] == "2"]
    assert pruned.data.metrics["optuna/pruned"] == 1.0
    assert len(client.get_metric_history(pruned.info.run_id, "val/loss")) == 1  # stopped after epoch 0 of 2


DDP_EVAL = [
    "data=weather",
    "data.lookback=48",
    "data.horizon=12",
    "model.net.hidden_size=16",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=4",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    # 1,730 validation windows in 3 batches and 3,482 test windows in 5: with two ranks, one gets a
    # padding batch in each, which must not be scored.
    "data.eval_batch_size=700",
]


@pytest.mark.slow
def test_two_process_ddp_evaluation_equals_one_process_on_the_same_weights(tmp_path):
    """val/* and test/* of a 2-process gloo run are the metrics over every window, each counted once."""
    import torch

    from tsattn.config import compose
    from tsattn.inference.bundle import load_bundle
    from tsattn.training.train import Training

    args = ["train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *DDP_EVAL]
    result = run_tsattn([*args, f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert output.count(" trainable parameters") == 2  # a second process really ran: each rank builds the model
    client, parents, (run,) = _runs(tmp_path)
    assert parents == [] and run.info.status == "FINISHED" and run.data.params["trainer/strategy"] == "ddp"

    # One process, the run's own weights (the bundle holds the best, here the only, epoch), every window.
    bundle = load_bundle(client.download_artifacts(run.info.run_id, "bundle", str(tmp_path)))
    datamodule = Training(compose([*DDP_EVAL, "logger=none", f"paths.log_dir={tmp_path}"]), track=False).datamodule
    expected = {}
    for split in ("val", "test"):
        dataset = datamodule.datasets[split]
        assert len(dataset) == {"val": 1730, "test": 3482}[split]
        batch = dataset[torch.arange(len(dataset))]
        with torch.no_grad():
            errors = (bundle.forecaster(batch)["y_hat"] - batch["y"]).double()  # [W, H, C]
        expected[split] = float(errors.pow(2).mean())
        # The control: counting the first batch twice, as the padding would be, moves the metric.
        doubled = torch.cat([errors, errors[:700]]).pow(2).mean()
        assert not np.isclose(float(doubled), expected[split], rtol=1e-4)
    assert run.data.metrics["val/loss"] == pytest.approx(expected["val"], rel=1e-5)
    assert run.data.metrics["test/mse"] == pytest.approx(expected["test"], rel=1e-5)
