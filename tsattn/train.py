"""train(cfg): build data, model, callbacks, logger and Trainer from config; fit, test and record the run."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from tsattn.tracking import describe_run, log_run_setup

log = logging.getLogger(__name__)


def build_components(cfg: DictConfig, with_logger: bool = False):
    """Instantiate the datamodule (read and validated), the model and the Trainer with its callbacks.

    The data is read first, so a bad CSV fails before any model is built or any MLflow store is touched.
    Sizes that depend on the data (input channels, targets, calendar features) reach the network from the
    datamodule.

    Args:
        cfg: the composed config.
        with_logger: attach the configured logger (cfg.logger) to the Trainer.

    Returns:
        (datamodule, model, trainer)
    """
    import lightning as L
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    L.seed_everything(cfg.seed, workers=True)
    net = instantiate(cfg.model.net, **_sizes_from_data(cfg.model.net, datamodule))
    model = instantiate(cfg.model, net=net)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    # MLFlowLogger opens its store when built: only now that the data is known to be good.
    logger = instantiate(cfg.logger) if with_logger and cfg.get("logger") else False
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test one model as configured.

    Returns:
        The final metrics (train/, val/ and test/ keys) as floats.
    """
    datamodule, model, trainer = build_components(cfg, with_logger=True)
    logger = trainer.logger
    if logger is not None:
        log_run_setup(logger, cfg, datamodule)

    metrics: dict[str, float] = {}
    if cfg.train and model.trainable:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics.update(_floats(trainer.callback_metrics))
    elif cfg.train:
        log.info("%s has no parameters to train: testing it as it is", type(model.net).__name__)
    if cfg.test:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if cfg.train and best:
            log.info("testing the best checkpoint: %s", best)
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
        metrics.update(_floats(trainer.callback_metrics))

    headline = ("test/mse", "test/mae", "test/naive_mse", "test/skill_mse")
    summary = ", ".join(f"{k}={metrics[k]:.4f}" for k in headline if k in metrics)
    log.info("done: %s", summary or "no test metrics")
    if logger is not None:
        log.info(describe_run(logger, cfg.logger.tracking_uri))
    return metrics


def _sizes_from_data(net_cfg: DictConfig, datamodule) -> dict[str, int]:
    """Constructor arguments the data decides: the channel counts, and the season length when left null."""
    sizes = dict(datamodule.dims)
    if "season_length" in net_cfg and net_cfg.season_length is None:
        sizes["season_length"] = datamodule.season_length
    return sizes


def _floats(metrics) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}
