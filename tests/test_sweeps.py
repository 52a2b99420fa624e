"""Sweeps: an Optuna search that resumes and prunes, parallel joblib jobs on one sqlite store, CPU DDP."""

from __future__ import annotations

import math

import pytest

from tests.conftest import run_tsattn

TINY = [
    "data.lookback=48",
    "data.horizon=12",
    "trainer.max_epochs=3",
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
def test_optuna_search_records_trials_in_mlflow_and_resumes_its_study(tmp_path):
    import optuna

    search = ["train", "-m", "hparams_search=lstm_seq2seq_optuna", *TINY, f"paths.log_dir={tmp_path}"]
    first = run_tsattn([*search, "hydra.sweeper.n_trials=3"], cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    storage = f"sqlite:///{tmp_path / 'optuna' / 'lstm_seq2seq-weather.db'}"
    study = optuna.load_study(study_name="lstm_seq2seq-weather", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3

    client, (parent,), children = _runs(tmp_path)
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/runs"] == 3
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

    again = run_tsattn([*search, "hydra.sweeper.n_trials=1"], cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 earlier trials" in again.stdout + again.stderr
    study = optuna.load_study(study_name="lstm_seq2seq-weather", storage=storage)
    assert len(study.trials) == 4 and study.trials[3].state == optuna.trial.TrialState.COMPLETE
    _, parents, children = _runs(tmp_path)
    assert len(parents) == 2 and len(children) == 4


@pytest.mark.slow
def test_pruned_trials_stop_early_and_are_recorded_as_pruned(tmp_path):
    import optuna

    # A threshold no validation loss can meet: every trial is pruned at its first report.
    prune_all = ["hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "+hydra.sweeper.pruner.upper=0.0"]
    prune_all += ["~hydra.sweeper.pruner.n_startup_trials", "~hydra.sweeper.pruner.n_warmup_steps"]
    args = ["train", "-m", "hparams_search=lstm_seq2seq_optuna", "hydra.sweeper.n_trials=2", *prune_all]
    result = run_tsattn([*args, *TINY, f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    study = optuna.load_study(
        study_name="lstm_seq2seq-weather", storage=f"sqlite:///{tmp_path / 'optuna' / 'lstm_seq2seq-weather.db'}"
    )
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    client, _, children = _runs(tmp_path)
    for child in children:
        assert child.data.metrics["optuna/pruned"] == 1.0
        assert len(client.get_metric_history(child.info.run_id, "val/loss")) == 1  # stopped after epoch 0 of 3


@pytest.mark.slow
def test_two_parallel_joblib_jobs_share_one_sqlite_store(tmp_path):
    args = ["train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1", "model.net.hidden_size=16"]
    result = run_tsattn([*args, *TINY, f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database is locked" not in result.stdout + result.stderr
    _, (parent,), children = _runs(tmp_path)
    assert sorted(r.data.tags["tsattn.seed"] for r in children) == ["0", "1"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert all(r.info.status == "FINISHED" and "test/mse" in r.data.metrics for r in children)


@pytest.mark.slow
def test_cpu_ddp_with_two_processes_trains_and_logs_one_run(tmp_path):
    args = ["train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "model.net.hidden_size=16"]
    result = run_tsattn([*args, *TINY, f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[rank: 1]" in result.stdout + result.stderr  # a second process really trained
    _, parents, (run,) = _runs(tmp_path)
    assert parents == []
    assert run.info.status == "FINISHED" and math.isfinite(run.data.metrics["test/mse"])
    assert run.data.params["trainer/strategy"] == "ddp"
