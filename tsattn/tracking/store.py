"""The MLflow store: check it can be reached before any training, and serialise its first writes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tsattn.errors import TsattnError

REMOTE_SCHEMES = ("http://", "https://")


def is_remote(tracking_uri: str) -> bool:
    return tracking_uri.startswith(REMOTE_SCHEMES) or tracking_uri.startswith("databricks")


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a sqlite:/// URI; None for any other store."""
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix) :]) if tracking_uri.startswith(prefix) else None


# Where `tsattn train` records runs, relative to the directory it was started from (conf/paths/default.yaml).
DEFAULT_STORE = Path("logs") / "mlflow" / "mlflow.db"


def resolve_tracking_uri(tracking_uri: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the store `tsattn train` writes in this directory.

    Never MLflow's own default (a ./mlflow.db it would create): a command that reads runs looks where
    training wrote them.
    """
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE.absolute()}"


def require_existing_store(tracking_uri: str) -> None:
    """A sqlite store must already exist: opening a missing one would create an empty database."""
    database = sqlite_path(tracking_uri)
    if database is not None and not database.is_file():
        raise TsattnError(
            f"no MLflow store at {database}; run tsattn train from this directory first, or pass --tracking-uri"
        )


def check_reachable(tracking_uri: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, before the data is read or a model trained, when the store cannot be used.

    A tracking server is asked for its /health page (MLflow's own client would retry for minutes); a
    sqlite store must have a directory tsattn can create and write.
    """
    if tracking_uri.startswith(REMOTE_SCHEMES):
        url = tracking_uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                response.read()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise TsattnError(
                f"cannot reach the MLflow tracking server {tracking_uri} ({reason}); start it, fix "
                f"logger.tracking_uri / MLFLOW_TRACKING_URI, or train without tracking with logger=none"
            ) from None
        return
    database = sqlite_path(tracking_uri)
    if database is None:
        return
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TsattnError(f"cannot create the MLflow store directory {database.parent}: {err.strerror}") from None
    if not os.access(database.parent, os.W_OK):
        raise TsattnError(
            f"the MLflow store directory {database.parent} is not writable; choose another paths.mlflow_dir"
        )


@contextlib.contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """Hold an exclusive file lock beside a sqlite store; a no-op for tracking servers.

    Parallel jobs (joblib, SLURM arrays) that create the database, an experiment or a sweep's parent run
    at the same moment race: one fails with "database is locked" or "experiment already exists". Taken
    around those few writes, the lock makes them happen one job at a time; metric logging runs unlocked.
    """
    database = sqlite_path(tracking_uri)
    if database is None:
        yield
        return
    with file_lock(database.with_name(database.name + ".lock")):
        yield


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path`, created when missing, released on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
