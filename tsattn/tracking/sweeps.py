"""One MLflow parent run per sweep, with every job of the sweep nested under it.

Jobs may run in other processes (joblib) or on other machines (SLURM), so the parent is not handed to
them: the first job to need one creates it, and records it in a small JSON file in the sweep directory,
under a lock; the others find it there. When the sweep ends, `SweepRunsCallback` (a Hydra callback in the
launching process) closes every parent it recorded.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from tsattn.errors import TsattnError, one_line
from tsattn.tracking.store import file_lock

log = logging.getLogger(__name__)

REGISTRY = "mlflow_parents.json"
SWEEP_INFO = "sweep.json"
SEARCH_RESULTS = "optimization_results.yaml"  # written by tsattn's Optuna sweeper


def sweep_directory() -> Path | None:
    """The running sweep's directory, or None outside a Hydra multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    return Path(hydra.sweep.dir).absolute()


def parent_run(client, tracking_uri: str, experiment_id: str, sweep_dir: Path) -> str:
    """The id of this sweep's parent run in `experiment_id`, created by the first job that asks."""
    registry = sweep_dir / REGISTRY
    key = f"{tracking_uri} {experiment_id}"
    with file_lock(sweep_dir / (REGISTRY + ".lock")):
        parents: dict[str, Any] = json.loads(registry.read_text()) if registry.exists() else {}
        if key in parents:
            return parents[key]["run_id"]
        info_file = sweep_dir / SWEEP_INFO
        info = json.loads(info_file.read_text()) if info_file.exists() else {}
        tags = {
            "tsattn.role": "sweep",
            "tsattn.sweep_dir": str(sweep_dir),
            "tsattn.sweep_overrides": " ".join(info.get("overrides", [])),
            "tsattn.sweeper": info.get("sweeper", ""),
        }
        run = client.create_run(experiment_id, run_name=f"sweep-{sweep_dir.name}", tags=tags)
        parents[key] = {"tracking_uri": tracking_uri, "experiment_id": experiment_id, "run_id": run.info.run_id}
        _write_atomically(registry, json.dumps(parents, indent=2))
        return run.info.run_id


class SweepRunsCallback(Callback):
    """Hydra callback: note the sweep's overrides when it starts; close its parent runs when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from tsattn.tracking.ensemble_run import ensemble_rule

        ensemble_rule(config)  # a wrong +ensemble= is one line before any job runs
        sweep_dir = Path(config.hydra.sweep.dir).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        info = {
            "overrides": list(config.hydra.overrides.task),
            "sweeper": str(config.hydra.sweeper.get("_target_", "")),
        }
        _write_atomically(sweep_dir / SWEEP_INFO, json.dumps(info, indent=2))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from tsattn.tracking.ensemble_run import ensemble_rule, log_sweep_ensemble

        sweep_dir = Path(config.hydra.sweep.dir).absolute()
        registry = sweep_dir / REGISTRY
        if not registry.exists():
            return
        search = sweep_dir / SEARCH_RESULTS
        for parent in json.loads(registry.read_text()).values():
            client = MlflowClient(parent["tracking_uri"])
            children = client.search_runs(
                [parent["experiment_id"]], filter_string=f"tags.mlflow.parentRunId = '{parent['run_id']}'"
            )
            statuses = [child.info.status for child in children]
            client.log_metric(parent["run_id"], "sweep/runs", len(statuses))
            client.log_metric(parent["run_id"], "sweep/failed", statuses.count("FAILED"))
            if search.exists():  # a hyperparameter search: its best trial, on the parent run
                results = yaml.safe_load(search.read_text())
                client.log_artifact(parent["run_id"], str(search))
                client.log_metric(parent["run_id"], "sweep/best_value", float(results["best_value"]))
                for key, value in results["best_params"].items():
                    client.log_param(parent["run_id"], f"best/{key}", value)
            rule = ensemble_rule(config)
            try:
                if rule is not None:  # +ensemble=mean|median: the sweep's runs as one model, a run of its own
                    log_sweep_ensemble(client, parent, rule, config)
            except (TsattnError, MlflowException, OSError, RuntimeError, ValueError) as err:
                # Said in one line (Hydra would make it a warning); the sweep's runs stand either way.
                log.error("+ensemble=%s: the sweep's ensemble failed: %s", rule, one_line(err, 300))
            finally:
                client.set_terminated(parent["run_id"], "FINISHED")  # whatever became of the ensemble
            log.info("sweep parent run %s: %d child runs", parent["run_id"], len(statuses))


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)
