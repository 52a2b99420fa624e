"""train(cfg): build data, model, callbacks, logger and Trainer from config; fit, test and record the run."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shlex
import signal
import threading

from omegaconf import DictConfig, OmegaConf

from tsattn.data.naive import rule_label
from tsattn.errors import Interrupted, TsattnError
from tsattn.training.architecture import resolve_auto
from tsattn.training.length import resolve_training_length

log = logging.getLogger(__name__)


def _callbacks(settings) -> list:
    """The callbacks the config defines. An entry without a _target_ only adjusts a callback that the chosen
    callbacks group does not have (an experiment's early-stopping patience under callbacks=none): it is
    ignored, and said so."""
    from hydra.utils import instantiate

    callbacks = []
    for name, setting in settings.items():
        if not setting:
            continue
        if "_target_" not in setting:
            log.info("callbacks.%s sets %s, but callbacks= has no such callback: ignored", name, ", ".join(setting))
            continue
        callbacks.append(instantiate(setting))
    return callbacks


def _log_ragged_segments(segment: int, lookback: int, horizon: int) -> None:
    """Say what segments that do not divide L or H leave out or add (tsattn/models/folding.py)."""
    if lookback % segment:
        log.info(
            "segments of %d steps: the oldest %d of the %d lookback steps are not read (RevIN still reads them)",
            segment,
            lookback % segment,
            lookback,
        )
    if horizon % segment:
        log.info(
            "segments of %d steps: the horizon of %d is forecast as %d steps and cut back",
            segment,
            horizon,
            -(-horizon // segment) * segment,
        )


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
        from tsattn.data.io import read_configured
        from tsattn.tracking.store import check_reachable

        # A copy: the `auto` model settings are filled in below, and the caller's config stays as it was given.
        self.cfg = cfg = copy.deepcopy(cfg)
        settings = cfg.get("logger") if track else None
        if settings:
            check_reachable(settings.tracking_uri)  # seconds, not after an hour of training
        # The data is read and checked before torch and Lightning are imported: a bad CSV costs a second.
        data_settings = OmegaConf.to_container(cfg.data, resolve=True)
        collection = read_configured(data_settings) if "path" in data_settings else None

        import lightning as L
        import torch
        from hydra.utils import instantiate
        from lightning.pytorch.utilities import rank_zero_only

        # Lightning sets its loggers to INFO when imported, which is after Hydra configured logging: GPU and
        # TPU availability, tips for other products, the layer table and checkpoint restores would print on
        # every run. Its warnings still show; tsattn logs what the run did itself.
        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)

        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))

        from tsattn.tracking.runs import run_tags, start_run
        from tsattn.training.checkpoints import plan_checkpoints

        # Under DDP every rank builds a Training; only rank 0 talks to MLflow.
        self.tracked = bool(settings) and rank_zero_only.rank == 0
        # As a partial: Hydra would turn a dataclass passed to instantiate into a config node.
        self.datamodule = instantiate(cfg.data, _partial_=True)(collection=collection)
        self.datamodule.setup("fit")
        if self.tracked:  # a tracked run ends by saving a bundle: what it may not hold is refused now
            from tsattn.inference.bundle import check_savable

            data = self.datamodule
            check_savable(data.collection, data.lookback, data.horizon, data.season_length)
        L.seed_everything(cfg.seed, workers=True)
        data = self.datamodule
        chosen = resolve_auto(
            cfg.model, data.lookback, data.season_length, data.best_naive_season, data.season_candidates
        )
        if chosen:
            log.info("model settings left auto: %s", ", ".join(f"{k}={v}" for k, v in chosen.items()))
        length = resolve_training_length(cfg, len(data.datasets["train"]))
        if length:
            data.batch_size = length["batch_size"]
            log.info(
                "trainer.max_epochs=auto: %d epochs in batches of %d (%d optimiser steps at most on one device)",
                length["max_epochs"],
                length["batch_size"],
                length["steps"],
            )
        self.net_sizes = _sizes_from_data(cfg.model, self.datamodule)  # refuses a segment longer than L
        _log_ragged_segments(int(cfg.model.get("segment_len") or 1), data.lookback, data.horizon)
        net = instantiate(cfg.model.net, **self.net_sizes)
        # Every argument the network was built with: the bundle rebuilds it from these and nothing else.
        self.net_options = {**_without_target(cfg.model.net), **self.net_sizes}
        if cfg.model.get("conformal"):  # checked here: inside Hydra's instantiate it would come wrapped
            from tsattn.models.conformal import require_calibratable

            require_calibratable(cfg.model.net.get("quantiles"))
        n_future = len(self.datamodule.collection.future_covariates)
        self.model = instantiate(cfg.model, net=net, n_targets=self.datamodule.dims["n_targets"], n_future=n_future)
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        log.info("model %s: %s, %s trainable parameters", self.model_name, type(net).__name__, f"{trainable:,}")
        callbacks = _callbacks(cfg.get("callbacks") or {})
        self.pruning = None
        trial = cfg.get("optuna_trial")
        if trial:  # a trial of tsattn's Optuna sweeper: report to it, stop when it is pruned
            from tsattn.training.callbacks import OptunaPruning

            self.pruning = OptunaPruning(
                trial.study_name, trial.storage, int(trial.trial_id), trial.monitor, trial.get("pruner")
            )
            callbacks.append(self.pruning)
        self.plan = None
        checkpointing = next((c for c in callbacks if isinstance(c, L.pytorch.callbacks.ModelCheckpoint)), None)
        if checkpointing is not None and cfg.get("paths", {}).get("checkpoint_dir"):
            self.plan = plan_checkpoints(cfg.paths.checkpoint_dir, cfg.get("ckpt_path"))
            checkpointing.dirpath = str(self.plan.directory)
        if cfg.get("ckpt_path") == "last" and self.plan is None:
            raise TsattnError(
                "ckpt_path=last resumes from the run's own checkpoints, but this config writes none "
                "(callbacks=none or no paths.checkpoint_dir); drop callbacks=none, or give ckpt_path=<file>"
            )
        self.ckpt_path = self.plan.ckpt_path if self.plan else cfg.get("ckpt_path")
        self.linear_path_fit = self._start_linear_path()  # after the plan: a resumed run keeps its weights

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

    def _start_linear_path(self) -> dict[str, float]:
        """Fit the network's linear path in closed form before training (model.linear_path_init=ridge); not
        when resuming, whose checkpoint holds the weights."""
        if getattr(self.model.net, "linear_path", None) is None or self.model.hparams.linear_path_init != "ridge":
            return {}
        if not self.cfg.train or self.ckpt_path:
            return {}
        from tsattn.training.linear_init import fit_linear_path

        datasets = self.datamodule.datasets
        fit = fit_linear_path(self.model.forecaster, datasets["train"], datasets["val"], seed=int(self.cfg.seed))
        log.info(
            "linear path: the ridge map (penalty %g) that scores best on the validation windows, val MSE %.4f; "
            "the network starts at zero beside it",
            fit["penalty"],
            fit["val_mse"],
        )
        return {"linear_path/val_mse": fit["val_mse"]}

    def _enter_start(self):
        """Score a fitted start (the linear path's ridge map) on the validation windows and save it as training
        starts, so the run can keep it if no epoch beats it (tsattn/training/start.py); a resumed run takes the
        start its first attempt saved. Needs a checkpoint directory; returns the StartAsCandidate, or None."""
        checkpointing = self.trainer.checkpoint_callback
        if checkpointing is None or self.plan is None:  # no checkpoint directory to keep the start in
            return None
        from tsattn.training.start import StartAsCandidate, validate_start

        if self.ckpt_path:  # resuming: the start an earlier attempt of this run saved, if it had one
            start = StartAsCandidate.saved_in(checkpointing.dirpath)
        elif self.linear_path_fit:
            start = StartAsCandidate(checkpointing.dirpath, validate_start(self.trainer, self.model, self.datamodule))
        else:
            start = None
        if start is not None:
            self.trainer.callbacks.append(start)
        return start

    @property
    def model_name(self) -> str:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            choice = HydraConfig.get().runtime.choices.get("model")
            if choice:
                return str(choice)
        return type(self.model.net).__name__

    def run(self) -> dict[str, float]:
        """Fit, test and log; the MLflow run ends FINISHED, FAILED with the error as a tag, or KILLED.

        Ctrl-C or SIGTERM ends in an Interrupted error that names the command resuming the run.
        """
        from tsattn.tracking.runs import finish_run

        try:
            with _tracking_uri_kept(), _sigterm_noted() as stop:
                metrics = self._fit_and_test(stop)
        except BaseException as err:
            interrupted = _is_interrupt(err)
            if self.handle is not None:
                finish_run(self.handle, err, killed=interrupted)
            if interrupted:
                raise Interrupted(self._resume_advice()) from None
            raise
        if self.handle is not None:
            from tsattn.tracking.artifacts import describe_run

            finish_run(self.handle)
            future = bool(self.datamodule.collection.future_covariates)
            log.info(describe_run(self.handle, self.datamodule.path, future_covariates=future))
        return metrics

    def _resume_advice(self) -> str:
        """What an interrupt kept, and the exact command that goes on from there."""
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        kept = [o for o in overrides if not o.startswith("ckpt_path=")]
        run = f"MLflow run {self.handle.run_id} marked KILLED; " if self.handle is not None else ""
        if self.plan is None:
            command = shlex.join(["tsattn", "train", *kept])
            return f"interrupted; {run}no checkpoints are written without callbacks, start again with: {command}"
        command = shlex.join(["tsattn", "train", *kept, "ckpt_path=last"])
        return f"interrupted; {run}checkpoints kept in {self.plan.directory}; resume with: {command}"

    def _fit_and_test(self, stop: _Stop) -> dict[str, float]:
        """Fit (train=true), test (test=true) and log the results, with the model's bundle when it has one.

        The bundle holds the weights the run stands for: the best checkpoint after training, the given
        checkpoint when train=false, or none when train=false leaves a trainable model untrained. A
        SIGTERM stops the run between batches (Lightning's own handling) or between these steps.
        """
        from tsattn.tracking.artifacts import log_results, log_run_setup

        cfg, model, trainer, datamodule = self.cfg, self.model, self.trainer, self.datamodule
        if self.handle is not None:
            if self.handle.resumed:
                log.info("continuing MLflow run %s", self.handle.run_id)
            else:
                log_run_setup(trainer.logger, cfg, datamodule)

        metrics: dict[str, float] = dict(self.linear_path_fit)
        weights = None  # the checkpoint holding the run's model; None: the weights in memory
        stop.check()
        if cfg.train and model.trainable:
            start = self._enter_start()
            trainer.fit(model, datamodule=datamodule, ckpt_path=self.ckpt_path)
            stop.check()
            metrics.update(_floats(trainer.callback_metrics))
            checkpointing = trainer.checkpoint_callback
            weights = (checkpointing.best_model_path or None) if checkpointing else None
            if checkpointing is not None and checkpointing.best_model_score is not None:
                metrics["val/loss_best"] = float(checkpointing.best_model_score)
            if start is not None:
                kept = start.choose(checkpointing)
                metrics["val/loss_start"], metrics["val/start_kept"] = start.loss, float(kept is not None)
                if kept is not None:
                    weights, metrics["val/loss_best"] = kept
                    log.info(
                        "no epoch beat the linear path's start on validation (val/loss %.4g against the best "
                        "epoch's %.4g): the run keeps the start, the ridge map with the network at zero",
                        start.loss,
                        float(checkpointing.best_model_score),
                    )
            if self.pruning is not None and self.pruning.pruned:
                log.info("Optuna pruned this trial after epoch %d", trainer.current_epoch)
                metrics["optuna/pruned"] = 1.0
            elif not metrics.get("val/start_kept") and _best_epoch_was_last(trainer):
                metrics["val/best_is_last"] = 1.0
                log.warning(
                    "the best validation loss came at the last of the %d epochs: the model may be undertrained; "
                    "train longer with trainer.max_epochs=%d (early stopping still ends the run once validation "
                    "stops improving)",
                    trainer.max_epochs,
                    2 * trainer.max_epochs,
                )
        elif model.trainable:
            weights = self.ckpt_path
            if weights is None:
                log.warning("train=false and no ckpt_path: the model is untrained, and no bundle is logged for it")
        elif cfg.train:
            log.info("%s has no parameters to train: testing it as it is", type(model.net).__name__)
        # A trained model without checkpoints (callbacks=none) keeps its final weights in memory.
        has_model = (cfg.train or not model.trainable) or weights is not None
        if model.hparams.get("conformal") and has_model:
            # Calibrated on the weights the run stands for: the best checkpoint's, loaded first. The offsets
            # are not part of the weights, so testing from the checkpoint keeps them.
            if weights:
                _load_weights(model, weights)
            offsets = model.calibrate_intervals(datamodule.datasets["val"], datamodule.eval_batch_size)
            metrics.update(offsets)
            log.info(
                "conformal offsets from the validation windows: %s",
                ", ".join(f"{k}={v:.4f}" for k, v in offsets.items()),
            )

        if cfg.test:
            if weights:
                log.info("testing the %s: %s", "best checkpoint" if cfg.train else "checkpoint", weights)
            trainer.test(model, datamodule=datamodule, ckpt_path=weights, verbose=False)  # loads its weights
            metrics.update(_floats(trainer.callback_metrics))
            stop.check()
        elif weights:
            _load_weights(model, weights)
        rules = simple_rule_metrics(datamodule.naive_errors, with_test=bool(cfg.test))
        metrics.update(rules)
        if self.handle is not None and trainer.is_global_zero:
            logged_here = (
                "val/loss_best",
                "val/loss_start",
                "val/start_kept",
                "optuna/pruned",
                "val/best_is_last",
                "linear_path/val_mse",
                *(k for k in metrics if k.startswith("conformal/")),
            )
            for key in (*logged_here, *rules):
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
                with_bundle=has_model,
                with_test=bool(cfg.test),
            )
        log.info("done: %s", summary(metrics, rule_label(datamodule.best_naive_season)))
        return metrics


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test one model as configured, recorded in MLflow unless logger=none.

    Returns:
        The final metrics (train/, val/ and test/ keys) as floats, with val/loss_best, the best
        validation loss, which hyperparameter searches minimise.
    """
    if cfg.get("ensemble") is not None:
        from tsattn.tracking.sweeps import sweep_directory

        if sweep_directory() is None:
            log.warning("ensemble=%s combines the runs of a sweep: add -m and a sweep (seed=0,1,2)", cfg.ensemble)
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
        bool(model_cfg.get("channel_identity", False)),
        len(model_cfg.get("seasonal_lags") or []),
    )
    if "season_length" in model_cfg.net and model_cfg.net.season_length is None:
        sizes["season_length"] = datamodule.season_length
    return sizes


class _Stop:
    """Whether SIGTERM came; `check` ends the run there, at a point where nothing is half-written."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def note(self, signum, frame) -> None:
        self.signals.append(signum)

    def check(self) -> None:
        if self.signals:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_noted():
    """SIGTERM is noted, never raised where it lands (in an MLflow write, the store would stay locked).

    While Lightning fits or tests, it adds its own handler beside this one and stops at the end of the
    batch (SIGTERMException); between those steps the run stops at the next `check`.
    """
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, stop.note)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _tracking_uri_kept():
    """Put MLflow's process-wide tracking URI back as it was once the run is done.

    Lightning's MLFlowLogger calls mlflow.set_tracking_uri, which also sets MLFLOW_TRACKING_URI in the
    environment; the next run in the same process (a notebook, a script training two models) would read
    it through the logger config and land in this run's store.
    """
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        if os.environ.get("MLFLOW_TRACKING_URI") != before:
            import mlflow

            mlflow.set_tracking_uri(before)  # None unsets the variable as well


def _load_weights(model, checkpoint: str) -> None:
    """The network weights of a Lightning checkpoint (a plain-tensor file: weights_only loading)."""
    import torch

    state = torch.load(checkpoint, map_location=model.device, weights_only=True)["state_dict"]
    model.load_state_dict(state)


def _is_interrupt(err: BaseException) -> bool:
    """Ctrl-C or SIGTERM, also after Lightning turned it into an exit of its own."""
    if isinstance(err, KeyboardInterrupt):
        return True
    # Lightning catches a KeyboardInterrupt in fit and test, shuts down, and calls sys.exit(1) inside its
    # handler; on its own SIGTERM path it raises SIGTERMException, a SystemExit too.
    return isinstance(err, SystemExit) and (
        isinstance(err.__context__, KeyboardInterrupt) or type(err).__name__ == "SIGTERMException"
    )


def summary(metrics: dict[str, float], best_naive: str | None = None) -> str:
    """The end-of-run line: the scores and the skill against the baselines of the same test windows, the
    strongest simple forecast (`best_naive`, chosen on the validation windows) named."""
    headline = ("val/loss_best", "test/mse", "test/mae", "test/naive_mse", "test/snaive_mse", "test/best_naive_mse")
    parts = [f"{k}={metrics[k]:.4f}" for k in headline if k in metrics]
    skills = (
        ("test/skill_mse", "last value"),
        ("test/skill_snaive", "seasonal naive"),
        ("test/skill_best_naive", f"the strongest simple forecast ({best_naive or 'unnamed'}, chosen on validation)"),
    )
    for key, baseline in skills:
        if key in metrics:
            verdict = "beats it" if metrics[key] > 0 else "does not beat it"
            parts.append(f"skill vs {baseline} {metrics[key]:+.1%} ({verdict})")
    return ", ".join(parts) or "no test metrics"


def simple_rule_metrics(errors: dict[str, dict[int, float]], with_test: bool = True) -> dict[str, float]:
    """The MSE of every simple rule on each split (val/last_value_mse, test/seasonal_naive_168_mse...), over
    every window of the split; the test split's only when the run tests."""
    from tsattn.data.naive import rule_key

    return {
        f"{split}/{rule_key(m)}_mse": e
        for split, per_rule in errors.items()
        if with_test or split != "test"
        for m, e in per_rule.items()
    }


def _without_target(net_cfg: DictConfig) -> dict:
    options = OmegaConf.to_container(net_cfg, resolve=True)
    options.pop("_target_", None)
    return options


def _best_epoch_was_last(trainer) -> bool:
    """Whether fitting ran every epoch of trainer.max_epochs and its last validation was still a new best:
    early stopping's count of epochs without improvement is zero and it never stopped the run."""
    stopping = trainer.early_stopping_callback
    if stopping is None or trainer.max_epochs is None or trainer.max_epochs < 1:
        return False
    return stopping.stopped_epoch == 0 and stopping.wait_count == 0 and trainer.current_epoch >= trainer.max_epochs


def _floats(metrics) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}
