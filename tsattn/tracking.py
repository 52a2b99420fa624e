"""MLflow: what each run records beyond Lightning's per-epoch metrics, and where to find it."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"net": {"hidden_size": 64}}} -> {"model/net/hidden_size": 64}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def mlflow_logger(
    tracking_uri: str,
    experiment_name: str,
    run_name: str,
    artifact_location: str | None = None,
    tags: Mapping[str, str] | None = None,
):
    """Lightning's MLFlowLogger with a mandatory tracking URI (MLflow 3 has no usable default store).

    Args:
        tracking_uri: sqlite:///path/to/mlflow.db, or http(s)://host:port for a tracking server.
        experiment_name: the experiment, created when missing.
        run_name: the run's display name.
        artifact_location: where a new experiment keeps artifacts. Used for local stores only: a tracking
            server chooses its own, which its UI can then read.
        tags: extra run tags.
    """
    from lightning.pytorch.loggers import MLFlowLogger

    remote = tracking_uri.startswith(("http://", "https://", "databricks"))
    return MLFlowLogger(
        experiment_name=experiment_name,
        run_name=run_name,
        tracking_uri=tracking_uri,
        artifact_location=None if remote else artifact_location,
        tags=dict(tags) if tags else None,
        log_model=False,
    )


def log_run_setup(logger, cfg: DictConfig, datamodule) -> None:
    """Log the resolved config (as params and as config.yaml) and the data's split and scaler (data.json).

    Args:
        logger: a Lightning MLFlowLogger.
        cfg: the run's config, without the hydra section.
        datamodule: a ForecastDataModule after setup().
    """
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    logger.log_hyperparams({k: json.dumps(v) if isinstance(v, list) else v for k, v in flatten(resolved).items()})
    client, run_id = logger.experiment, logger.run_id
    client.log_text(run_id, OmegaConf.to_yaml(resolved), "config.yaml")
    data = {
        "source": datamodule.collection.source,
        "targets": datamodule.collection.targets,
        "covariates": datamodule.collection.covariates,
        "series": [s.id for s in datamodule.collection.series],
        "windows": {split: len(ds) for split, ds in datamodule.datasets.items()},
        **datamodule.state_dict(),
    }
    client.log_dict(run_id, data, "data.json")


def describe_run(logger, uri: str) -> str:
    """Where the run is and how to open it."""
    return (
        f"MLflow run {logger.run_id} (experiment {logger.experiment_id}) in {uri}\n"
        f"  open it with: mlflow ui --backend-store-uri {uri}"
    )
