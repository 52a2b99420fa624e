"""Create, resume and close the MLflow run of one training job, with the tags that make it findable."""

from __future__ import annotations

import getpass
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from tsattn import __version__
from tsattn.data.io import file_sha256
from tsattn.intervals import CRPS_METHOD
from tsattn.tracking.store import is_remote, store_lock
from tsattn.tracking.sweeps import parent_run, sweep_directory

log = logging.getLogger(__name__)

# "<attempt dir>.mlflow_run.json", beside a run's checkpoint directory (inside it, Lightning would warn
# that the directory is not empty): a resumed run finds its MLflow run there and logs into it again.
RUN_FILE_SUFFIX = ".mlflow_run.json"


def run_file(checkpoint_dir: Path) -> Path:
    return checkpoint_dir.with_name(checkpoint_dir.name + RUN_FILE_SUFFIX)


@dataclass(frozen=True)
class RunHandle:
    tracking_uri: str
    experiment_id: str
    run_id: str
    resumed: bool


def start_run(settings: DictConfig, tags: dict[str, str], checkpoint_dir: Path | None, resume: bool) -> RunHandle:
    """Create this job's run, or reopen the one its checkpoints belong to when resuming.

    Args:
        settings: the logger config (tracking_uri, experiment_name, run_name, artifact_location, tags).
        tags: tsattn's own tags for the run (run_tags).
        checkpoint_dir: where this run's checkpoints go (None without checkpoints); the run id is noted
            beside it.
        resume: training continues from a checkpoint in `checkpoint_dir`.
    """
    from mlflow import MlflowClient

    uri = settings.tracking_uri
    with store_lock(uri):  # database creation, experiment creation and parent runs race between jobs
        client = MlflowClient(uri)  # opening a new sqlite store creates its tables: inside the lock
        resumed = _resumable_run(client, uri, checkpoint_dir) if resume and checkpoint_dir else None
        if resumed is not None:
            client.update_run(resumed.info.run_id, status="RUNNING")
            handle = RunHandle(uri, resumed.info.experiment_id, resumed.info.run_id, resumed=True)
        else:
            experiment_id = _experiment(client, settings)
            all_tags = {**tags, **{k: str(v) for k, v in (settings.get("tags") or {}).items()}}
            sweep_dir = sweep_directory()
            name = settings.run_name
            if sweep_dir is not None:
                all_tags["mlflow.parentRunId"] = parent_run(client, uri, experiment_id, sweep_dir)
                name = f"{name}-job{_job_number()}"  # equal seeds must not mean equal names in a sweep
            run = client.create_run(experiment_id, run_name=name, tags=all_tags)
            handle = RunHandle(uri, experiment_id, run.info.run_id, resumed=False)
    if checkpoint_dir is None:
        return handle
    checkpoint_dir.parent.mkdir(parents=True, exist_ok=True)
    run_file(checkpoint_dir).write_text(json.dumps({"tracking_uri": uri, "run_id": handle.run_id}))
    return handle


def finish_run(handle: RunHandle, error: BaseException | None = None, killed: bool = False) -> None:
    """Mark the run FINISHED; FAILED with the error's first line as the tag tsattn.error; or KILLED.

    Args:
        killed: the error is an interrupt (Ctrl-C, SIGTERM): the run was stopped, it did not fail.
    """
    from mlflow import MlflowClient

    client = MlflowClient(handle.tracking_uri)
    if error is None:
        client.set_terminated(handle.run_id, "FINISHED")
        return
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    if killed:
        message = "interrupted (Ctrl-C or SIGTERM); resume with ckpt_path=last"
    client.set_tag(handle.run_id, "tsattn.error", message[:4000])
    client.set_terminated(handle.run_id, "KILLED" if killed else "FAILED")


def run_tags(model_name: str, data_name: str, seed: int, data_path: str, checkpoint_dir: Path | None) -> dict[str, str]:
    """Tags that tell runs apart and tie them to their code and data."""
    tags = {
        "tsattn.version": __version__,
        "tsattn.model": model_name,
        "tsattn.data": data_name,
        "tsattn.seed": str(seed),
        "tsattn.crps": CRPS_METHOD,
        "tsattn.data_path": str(Path(data_path).absolute()),
        "tsattn.data_sha256": file_sha256(Path(data_path)),
        "tsattn.checkpoint_dir": str(checkpoint_dir or ""),
        "tsattn.overrides": " ".join(_job_overrides()),
        "mlflow.source.name": "tsattn train",
        "mlflow.source.type": "LOCAL",
        "mlflow.user": _user(),
    }
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["tsattn.git_commit"] = commit
    return tags


def git_commit() -> str | None:
    """The commit of the working directory's repository, else of the tsattn source tree; None outside git."""
    for directory in (Path.cwd(), Path(__file__).resolve().parent):
        try:
            out = subprocess.run(
                ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode == 0:
            return out.stdout.strip()
    return None


def _resumable_run(client, uri: str, checkpoint_dir: Path):
    recorded_file = run_file(checkpoint_dir)
    if not recorded_file.exists():
        return None
    recorded = json.loads(recorded_file.read_text())
    if recorded.get("tracking_uri") != uri:
        log.warning(
            "the checkpoints in %s were tracked in %s; this run starts a new MLflow run",
            checkpoint_dir,
            recorded.get("tracking_uri"),
        )
        return None
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(recorded["run_id"])
    except MlflowException:
        return None
    return run if run.info.lifecycle_stage == "active" else None


def _experiment(client, settings: DictConfig) -> str:
    experiment = client.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        return experiment.experiment_id
    location = None if is_remote(settings.tracking_uri) else settings.get("artifact_location")
    if location and "://" not in location:
        location = Path(location).absolute().as_uri()
    return client.create_experiment(settings.experiment_name, artifact_location=location)


def _job_number() -> int:
    from hydra.core.hydra_config import HydraConfig

    return int(HydraConfig.get().job.num)


def _job_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
