"""`tsattn.fit`: train one model from Python, with the config `tsattn train` composes for the same overrides.

    import tsattn
    run = tsattn.fit("sales.csv", model="transformer", overrides=["data.targets=[sales]", "seed=1"])
    run.metrics["test/mse"], run.run_id, run.bundle_path
    run.model.forecast(history)                  # the tsattn.load model of the run's bundle

`data` is a CSV path or a pandas DataFrame (written once, as CSV, under the run's log directory, so the run
names a file it was trained on, as a CLI run does). The overrides are the strings the command line takes;
`data=csv` and `data.path` come from `data`. Mistakes raise tsattn.errors.TsattnError with one clear line.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsattn.errors import TsattnError, one_line


@dataclass
class Run:
    """One finished training run: its MLflow id, final metrics and bundle."""

    run_id: str
    metrics: dict[str, float]
    bundle_path: Path
    tracking_uri: str
    _model: Any = field(default=None, repr=False)

    @property
    def model(self):
        """The run's model (tsattn.load of its bundle), loaded on first use."""
        if self._model is None:
            from tsattn.inference.api import load

            self._model = load(self.bundle_path)
        return self._model


def fit(
    data: Any,
    model: str = "lstm_seq2seq",
    overrides: Sequence[str] = (),
    tracking_uri: str | None = None,
) -> Run:
    """Train and test `model` on `data`, recorded in MLflow as `tsattn train` records it.

    Args:
        data: a CSV path, or a pandas DataFrame in a layout the CSV contract accepts.
        model: a config of conf/model (lstm_seq2seq, attention_seq2seq, transformer, linear, rlinear...).
        overrides: Hydra overrides, as on the command line (`data.targets=[sales]`, `seed=1`, ...).
        tracking_uri: the MLflow store (default: MLFLOW_TRACKING_URI, else logs/mlflow/mlflow.db).
    """
    if isinstance(overrides, str):
        raise TsattnError(f"fit(overrides={overrides!r}): give a list of overrides, e.g. [{overrides!r}]")
    overrides = [str(o) for o in overrides]
    own = ("data", "data.path", "model", "logger", "experiment", "hparams_search")
    chosen = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in own]
    if chosen:
        raise TsattnError(
            f"fit(overrides=[{chosen[0]!r}]): data, model and the tracking store are fit's own arguments "
            "(data=<CSV path or DataFrame>, model=<name>, tracking_uri=...) and experiments belong to `tsattn train`; "
            "pass data.* and model.* settings"
        )
    from tsattn.config import hydra_quoted

    settings = [f"model={model}", *([f"logger.tracking_uri={hydra_quoted(tracking_uri)}"] if tracking_uri else [])]
    if not isinstance(data, str | Path):  # a DataFrame is written as a comma-separated file
        settings.append("data.sep=','")
        if not any(o.lstrip("+").startswith("data.name=") for o in overrides):
            settings.append("data.name=dataframe")  # not the written file's name, frame-<content hash>
    # Composed once without the data to learn where this run writes (paths.log_dir, which overrides may move).
    path = _csv_of(data, _composed(["data=csv", "data.path=unused", *overrides, *settings]).paths.log_dir)
    with _naming_the_caller(data, path), _progress_lines():
        return _fit(path, overrides, settings)


def _fit(path: Path, overrides: list[str], settings: list[str]) -> Run:
    from tsattn.config import hydra_quoted

    cfg = _composed(["data=csv", f"data.path={hydra_quoted(path)}", *overrides, *settings])
    if not cfg.train and not cfg.get("ckpt_path"):
        raise TsattnError(
            "fit(overrides=['train=false']) needs ckpt_path=<checkpoint>: an untrained model has no bundle"
        )
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from tsattn.training.train import Training

    try:
        training = Training(cfg, track=True)
    except (HydraException, OmegaConfBaseException) as err:  # a setting that builds nothing: one line
        raise TsattnError(one_line(err)) from None
    if training.handle is None:  # only DDP's other ranks have none: fit() runs one process
        raise TsattnError("fit() trains in this one process; launch DDP training with `tsattn train`")
    metrics = training.run()
    uri = str(cfg.logger.tracking_uri)
    return Run(training.handle.run_id, metrics, _bundle_path(uri, training.handle.run_id), uri)


@contextlib.contextmanager
def _naming_the_caller(data: Any, path: Path) -> Iterator[None]:
    """A DataFrame is written to a file of fit's own: a mistake in it names the DataFrame, not that file."""
    try:
        yield
    except TsattnError as err:
        if isinstance(data, str | Path):
            raise
        err.args = (str(err).replace(str(path), "the DataFrame given to fit()"),)
        raise


@contextlib.contextmanager
def _progress_lines() -> Iterator[None]:
    """The command's output during fit, and only for its duration: tsattn's own lines (what was read and
    chosen, the `done:` summary) on stderr unless the caller configured logging for tsattn already, and none
    of MLflow's information lines and artifact progress bars or Lightning's deprecation notes."""
    import logging
    import os
    import sys
    import warnings

    logger, mlflow_logger = logging.getLogger("tsattn"), logging.getLogger("mlflow")
    # Training sets Lightning's loggers to WARNING; the caller's process gets its levels back afterwards.
    libraries = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = logger.level, mlflow_logger.level, [library.level for library in libraries]
    handler = None
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("tsattn: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    mlflow_logger.setLevel(max(logging.WARNING, mlflow_logger.getEffectiveLevel()))  # MLflow imported already
    # MLflow sets its logger's level from these when first imported, and reads the bar's at each download.
    quiet = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_LOGGING_LEVEL": "WARNING"}
    unset = [key for key in quiet if key not in os.environ]
    os.environ.update({key: quiet[key] for key in unset})
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
            warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than")
            yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(levels[0])
        mlflow_logger.setLevel(levels[1])
        for library, level in zip(libraries, levels[2], strict=True):
            library.setLevel(level)
        for key in unset:
            os.environ.pop(key, None)


def _composed(overrides: list[str]):
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from tsattn.config import compose

    try:
        return compose(overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise TsattnError(one_line(err)) from None


def _csv_of(data: Any, log_dir: str) -> Path:
    """The CSV to train on: the path given, or the DataFrame written under log_dir/data, named by its content."""
    import pandas as pd

    if isinstance(data, str | Path):
        path = Path(data).expanduser().resolve()
        if not path.is_file():
            raise TsattnError(f"{data}: no such CSV file; give fit() a CSV path or a pandas DataFrame")
        return path
    if not isinstance(data, pd.DataFrame):
        raise TsattnError(f"fit(data=...) takes a CSV path or a pandas DataFrame, not {type(data).__name__}")
    if not isinstance(data.index, pd.RangeIndex):  # a DatetimeIndex (or an id index) is a column of the file
        data = data.reset_index()
    text = data.to_csv(index=False)
    directory = Path(log_dir) / "data"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"frame-{hashlib.sha256(text.encode()).hexdigest()[:16]}.csv"
    if not path.exists():
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    return path


def _bundle_path(tracking_uri: str, run_id: str) -> Path:
    """The run's bundle directory: in place for a local artifact store, else downloaded beside the logs."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    artifact_uri = MlflowClient(tracking_uri).get_run(run_id).info.artifact_uri
    if artifact_uri.startswith("file://") or "://" not in artifact_uri:
        local = Path(artifact_uri.removeprefix("file://")) / "bundle"
        if local.is_dir():
            return local
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="bundle", tracking_uri=tracking_uri))
