"""train(cfg): build data, model, callbacks, logger and Trainer from config; fit, test and record the run."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

log = logging.getLogger(__name__)


def build_components(cfg: DictConfig, with_logger: bool = False):
    """Instantiate the datamodule (read and validated), the model and the Trainer with its callbacks.

    The data is read first, so a bad CSV fails before any model is built or any MLflow store is touched.
    Sizes that depend on the data (input channels, targets, calendar features) reach the network from the
    datamodule.

    Args:
        cfg: the composed config.
        with_logger: attach the configured logger (cfg.logger) to the Trainer, in a new run.

    Returns:
        (datamodule, model, trainer)
    """
    run = Training(cfg, track=with_logger)
    return run.datamodule, run.model, run.trainer


class Training:
    """One configured training job, from the checked tracking store to the recorded results.

    Building it reads the data and creates the MLflow run; `run()` fits, tests and logs the results.
    """

    def __init__(self, cfg: DictConfig, track: bool = True) -> None:
        import lightning as L
        from hydra.utils import instantiate
        from lightning.pytorch.utilities import rank_zero_only

        from tsattn.checkpoints import plan_checkpoints
        from tsattn.tracking.runs import run_tags, start_run
        from tsattn.tracking.store import check_reachable

        self.cfg = cfg
        settings = cfg.get("logger") if track else None
        # Under DDP every rank builds a Training; only rank 0 talks to MLflow.
        self.tracked = bool(settings) and rank_zero_only.rank == 0
        if self.tracked:
            check_reachable(settings.tracking_uri)  # seconds, not after an hour of training

        self.datamodule = instantiate(cfg.data)
        self.datamodule.setup("fit")
        L.seed_everything(cfg.seed, workers=True)
        self.net_sizes = _sizes_from_data(cfg.model, self.datamodule)
        net = instantiate(cfg.model.net, **self.net_sizes)
        # Every argument the network was built with: the bundle rebuilds it from these and nothing else.
        self.net_options = {**_without_target(cfg.model.net), **self.net_sizes}
        self.model = instantiate(cfg.model, net=net, n_targets=self.datamodule.dims["n_targets"])
        callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
        self.pruning = None
        trial = cfg.get("optuna_trial")
        if trial:  # a trial of tsattn's Optuna sweeper: report to it, stop when it is pruned
            from tsattn.callbacks import OptunaPruning

            self.pruning = OptunaPruning(
                trial.study_name, trial.storage, int(trial.trial_id), trial.monitor, trial.get("pruner")
            )
            callbacks.append(self.pruning)
        self.plan = None
        checkpointing = next((c for c in callbacks if isinstance(c, L.pytorch.callbacks.ModelCheckpoint)), None)
        if checkpointing is not None and cfg.get("paths", {}).get("checkpoint_dir"):
            self.plan = plan_checkpoints(cfg.paths.checkpoint_dir, cfg.get("ckpt_path"))
            checkpointing.dirpath = str(self.plan.directory)
        ckpt_path = self.plan.ckpt_path if self.plan else cfg.get("ckpt_path")
        self.ckpt_path = None if ckpt_path == "last" and self.plan is None else ckpt_path

        self.handle = None
        logger = False
        if self.tracked:
            directory = self.plan.directory if self.plan else None
            tags = run_tags(self.model_name, self.datamodule.name, cfg.seed, self.datamodule.path, directory)
            if trial:
                tags.update({"optuna.study": str(trial.study_name), "optuna.trial": str(trial.number)})
            self.handle = start_run(settings, tags, directory, resume=bool(self.plan and self.plan.resume))
            logger = instantiate(settings, run_id=self.handle.run_id)
        self.trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)

    @property
    def model_name(self) -> str:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            choice = HydraConfig.get().runtime.choices.get("model")
            if choice:
                return str(choice)
        return type(self.model.net).__name__

    def run(self) -> dict[str, float]:
        """Fit, test and log; the MLflow run ends FINISHED, or FAILED with the error as a tag."""
        try:
            metrics = self._fit_and_test()
        except BaseException as err:
            if self.handle is not None:
                from tsattn.tracking.runs import finish_run

                finish_run(self.handle, err)
            raise
        if self.handle is not None:
            from tsattn.tracking.artifacts import describe_run
            from tsattn.tracking.runs import finish_run

            finish_run(self.handle)
            log.info(describe_run(self.handle.run_id, self.handle.experiment_id, self.handle.tracking_uri))
        return metrics

    def _fit_and_test(self) -> dict[str, float]:
        from tsattn.tracking.artifacts import log_results, log_run_setup

        cfg, model, trainer, datamodule = self.cfg, self.model, self.trainer, self.datamodule
        if self.handle is not None:
            if self.handle.resumed:
                log.info("continuing MLflow run %s", self.handle.run_id)
            else:
                log_run_setup(trainer.logger, cfg, datamodule)

        metrics: dict[str, float] = {}
        if cfg.train and model.trainable:
            trainer.fit(model, datamodule=datamodule, ckpt_path=self.ckpt_path)
            metrics.update(_floats(trainer.callback_metrics))
            best_score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
            if best_score is not None:
                metrics["val/loss_best"] = float(best_score)
            if self.pruning is not None and self.pruning.pruned:
                log.info("Optuna pruned this trial after epoch %d", trainer.current_epoch)
                metrics["optuna/pruned"] = 1.0
        elif cfg.train:
            log.info("%s has no parameters to train: testing it as it is", type(model.net).__name__)
        if cfg.test:
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            if cfg.train and best:
                log.info("testing the best checkpoint: %s", best)
            trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
            metrics.update(_floats(trainer.callback_metrics))
            if self.handle is not None and trainer.is_global_zero:
                for key in ("val/loss_best", "optuna/pruned"):
                    if key in metrics:
                        trainer.logger.experiment.log_metric(self.handle.run_id, key, metrics[key])
                log_results(
                    trainer.logger.experiment,
                    self.handle.run_id,
                    model,
                    datamodule,
                    cfg,
                    self.model_name,
                    self.net_options,
                )

        log.info("done: %s", summary(metrics))
        return metrics


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test one model as configured, recorded in MLflow unless logger=none.

    Returns:
        The final metrics (train/, val/ and test/ keys) as floats, with val/loss_best, the best
        validation loss, which hyperparameter searches minimise.
    """
    return Training(cfg, track=True).run()


def _sizes_from_data(model_cfg: DictConfig, datamodule) -> dict[str, int]:
    """Constructor arguments the data decides: the channel counts, and the season length when left null.

    The counts are those the network sees after ForecastModule's folds: one target channel when
    channel independent, S times the channels with segments of S steps.
    """
    from tsattn.models.folding import network_sizes

    sizes = network_sizes(
        datamodule.dims,
        datamodule.lookback,
        datamodule.horizon,
        bool(model_cfg.get("channel_independent", False)),
        int(model_cfg.get("segment_len", 1)),
    )
    if "season_length" in model_cfg.net and model_cfg.net.season_length is None:
        sizes["season_length"] = datamodule.season_length
    return sizes


def summary(metrics: dict[str, float]) -> str:
    """The end-of-run line: the scores and the skill against both baselines of the same test windows."""
    headline = ("val/loss_best", "test/mse", "test/mae", "test/naive_mse", "test/snaive_mse")
    parts = [f"{k}={metrics[k]:.4f}" for k in headline if k in metrics]
    for key, baseline in (("test/skill_mse", "last value"), ("test/skill_snaive", "seasonal naive")):
        if key in metrics:
            parts.append(f"skill vs {baseline} {metrics[key]:+.1%}")
    return ", ".join(parts) or "no test metrics"


def _without_target(net_cfg: DictConfig) -> dict:
    from omegaconf import OmegaConf

    options = OmegaConf.to_container(net_cfg, resolve=True)
    options.pop("_target_", None)
    return options


def _floats(metrics) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}
