"""TsattnOptunaSweeper: ask Optuna for trials, launch them as Hydra jobs, tell Optuna their results."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.tsattn_optuna_sweeper.search_space import parse_search_space

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"


class TsattnOptunaSweeper(Sweeper):
    """See config.TsattnOptunaSweeperConf for the arguments."""

    def __init__(
        self,
        study_name: str | None,
        storage: str | None,
        direction: str,
        metric: str,
        n_trials: int,
        n_jobs: int,
        sampler: Any,
        pruner: Any,
        prune_on: str,
        params: dict[str, str] | None,
    ) -> None:
        self.study_name, self.storage, self.direction, self.metric = study_name, storage, direction, metric
        self.n_trials, self.n_jobs = n_trials, max(1, n_jobs)
        self.sampler, self.pruner, self.prune_on = sampler, pruner, prune_on
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config, self.hydra_context = config, hydra_context
        # The pruner's config travels to the jobs, which decide on pruning while they train.
        pruner = config.hydra.sweeper.get("pruner")
        self.pruner_config = OmegaConf.to_container(pruner, resolve=True) if pruner is not None else None
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        # Command-line sweeps (lr=interval(...)) join the YAML search space; plain overrides are fixed.
        distributions, fixed = parse_search_space([f"{k}={v}" for k, v in self.params.items()] + arguments, parser)
        if not distributions:
            raise ValueError("hydra.sweeper.params is empty: give the search space (see conf/hparams_search/)")
        if self.storage and self.storage.startswith("sqlite:///"):
            Path(self.storage[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=_build(self.sampler),
            pruner=_build(self.pruner) or optuna.pruners.NopPruner(),
            direction=self.direction,
            load_if_exists=True,
        )
        earlier = len(study.trials)
        log.info(
            "Optuna study %r (%s): earlier trials %d, to run %d, %s %s over %s",
            study.study_name, self.storage or "in memory", earlier, self.n_trials, self.direction, self.metric,
            ", ".join(distributions),
        )  # fmt: skip
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        job_index, launched, first_error = 0, 0, None
        while launched < self.n_trials:
            trials = [study.ask(distributions) for _ in range(min(self.n_jobs, self.n_trials - launched))]
            batch = [fixed + self._trial_overrides(study, trial) for trial in trials]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=job_index)
            for trial, result in zip(trials, results, strict=True):
                error = self._tell(study, trial, result)
                first_error = first_error or error
            if first_error is not None and launched == 0 and all(r.status == JobStatus.FAILED for r in results):
                raise first_error  # the very first trials all failed: a broken setup, not a bad region
            job_index += len(batch)
            launched += len(batch)
        self._report(study, sweep_dir)

    def _trial_overrides(self, study, trial) -> list[str]:
        overrides = [f"{key}={_format(value)}" for key, value in trial.params.items()]
        if self.storage:  # jobs reach the trial through the storage to report for pruning
            overrides += [
                f"+optuna_trial.study_name='{study.study_name}'",
                f"+optuna_trial.storage='{self.storage}'",
                f"+optuna_trial.trial_id={trial._trial_id}",
                f"+optuna_trial.number={trial.number}",
                f"+optuna_trial.monitor='{self.prune_on}'",
            ]
            if self.pruner_config:
                overrides.append(f"+optuna_trial.pruner={_override_value(self.pruner_config)}")
        return overrides

    def _tell(self, study, trial, result: JobReturn) -> BaseException | None:
        import optuna

        if result.status == JobStatus.FAILED:
            error = result._return_value
            log.warning("trial %d failed: %s", trial.number, str(error).splitlines()[0] if str(error) else error)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return error if isinstance(error, BaseException) else None
        metrics = result.return_value or {}
        if metrics.get("optuna/pruned"):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            log.info("trial %d pruned", trial.number)
            return None
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            log.warning("trial %d returned no finite %s; recorded as failed", trial.number, self.metric)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return None
        study.tell(trial, value)
        log.info("trial %d: %s=%.6g %s", trial.number, self.metric, value, trial.params)
        return None

    def _report(self, study, sweep_dir: Path) -> None:
        import optuna

        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            log.warning("no trial of study %r completed", study.study_name)
            return
        best = study.best_trial
        results = {
            "study_name": study.study_name,
            "storage": self.storage,
            "metric": self.metric,
            "direction": self.direction,
            "best_value": float(best.value),
            "best_trial": best.number,
            "best_params": {k: _plain(v) for k, v in best.params.items()},
            "trials": {
                state.name.lower(): sum(t.state == state for t in study.trials)
                for state in (
                    optuna.trial.TrialState.COMPLETE,
                    optuna.trial.TrialState.PRUNED,
                    optuna.trial.TrialState.FAIL,
                )
            },
        }
        OmegaConf.save(OmegaConf.create(results), sweep_dir / RESULTS_FILE)
        log.info("best trial %d: %s=%.6g with %s", best.number, self.metric, best.value, results["best_params"])


def _build(node: Any) -> Any:
    """A sampler or pruner from config (`_target_`), or one Hydra already built."""
    if node is None or not isinstance(node, (dict, DictConfig)):
        return node
    from hydra.utils import instantiate

    return instantiate(node)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def _override_value(value: Any) -> str:
    """A plain dict, list or scalar in Hydra's override grammar.

    {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 3}
    -> {_target_:'optuna.pruners.MedianPruner',n_startup_trials:3}
    """
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_override_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    if value is None:
        return "null"
    return _format(value)


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
