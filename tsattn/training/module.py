"""ForecastModule: the one LightningModule that trains, validates and tests any forecasting network."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from tsattn.data.naive import LINEAR_PATH_INITS
from tsattn.metrics import POINT_METRICS, HorizonErrors, QuantileErrors, pinball
from tsattn.models.conformal import require_calibratable
from tsattn.models.forecaster import Forecaster
from tsattn.training.losses import TRAINING_LOSSES
from tsattn.training.schedules import LearningRate, TeacherForcing

Batch = dict[str, torch.Tensor]


def scale_rates(groups: list[dict], share: float, fallback: float | None) -> None:
    """Set each param group's rate to `share` of its own base rate (its initial_lr: a group may learn at a
    share of the others', and a base of 0 is a rate, not a missing one). A checkpoint from a run without
    this schedule restores groups without initial_lr: their base is the optimizer's configured rate times
    the group's own share of it (lr_share; the linear path's, model.linear_path_lr)."""
    for group in groups:
        if "initial_lr" not in group:
            base = fallback if fallback is not None else group["lr"]
            group["initial_lr"] = base * group.get("lr_share", 1.0)
        group["lr"] = group["initial_lr"] * share


class ForecastModule(L.LightningModule):
    """Wraps a network with forward(batch, teacher_forcing_ratio) -> {"y_hat": [B, H, C(, Q)], ...}.

    Training feeds the decoder the truth with the scheduled teacher-forcing ratio. Validation, test and
    prediction always run free, on the path forecasts use: `val/loss` (what early stopping watches) is
    free-running; with teacher_forced_validation, `val/loss_tf` is the teacher-forced loss of the same windows,
    so exposure bias shows (a second decoder pass: validation then takes twice as long, measured).
    Testing also scores the last-value and seasonal-naive forecasts of the same windows, per horizon step,
    and the strongest simple forecast the validation windows chose (test/best_naive_*), with a skill score
    against each.

    Args:
        net: the network.
        optimizer: a factory taking the parameters (a `_partial_` optimizer from config); None for
            parameter-free networks, which are only tested.
        scheduler: a LearningRate (warm-up then cosine decay per step, plateau halving, or step decay per
            epoch), or a factory taking the optimizer (a `_partial_` torch LR scheduler), stepped per epoch on
            val/loss.
        loss: what point forecasts train with (tsattn.training.losses): "mse", "mae", "huber", "arctan_mae"
            (xPatch's), "fredf" (FreDF's), or in the data's own units "smape", "mase" (the M4 competition's
            scores) and "smape_mase" (the two mixed as OWA mixes them); quantile networks always train with the
            pinball loss.
        teacher_forcing: the ratio schedule for networks that decode step by step.
        normalization, channel_independent, segment_len, n_targets, channel_identity, n_future: the
            Forecaster's views of a batch (RevIN or the last value subtracted, one window per target
            channel, segments of steps, each channel's one-hot code, the future covariates normalised like
            the targets); see tsattn.models.forecaster.Forecaster.
        teacher_forced_validation: also log val/loss_tf, the teacher-forced validation loss, for decoders
            that can be teacher-forced. Off by default: it runs the decoder over every window twice.
        seasonal_lags: seasons whose seasonal-naive values the network reads as known channels (Forecaster).
        linear_path_init: where a network's linear path starts training: "ridge" (the ridge map that scores best
            on the validation windows, the network's head at zero: tsattn.training.linear_init) or
            "seasonal_naive" (the rule it was built as, model.net.linear_path_season).
        linear_path_lr: the linear path's learning rate as a share of the network's (0 keeps its start:
            its parameters then take no gradient).
        conformal: after training, widen each central interval of a quantile network by its conformal
            offset on the validation windows (calibrate_intervals; tsattn.models.conformal).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: LearningRate | Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        loss: str = "mse",
        teacher_forcing: TeacherForcing | None = None,
        normalization: str = "none",
        channel_independent: bool = False,
        segment_len: int = 1,
        n_targets: int | None = None,
        teacher_forced_validation: bool = False,
        channel_identity: bool = False,
        n_future: int = 0,
        conformal: bool = False,
        seasonal_lags: list[int] | None = None,
        linear_path_init: str = "ridge",
        linear_path_lr: float = 1.0,
    ) -> None:
        super().__init__()
        if loss not in TRAINING_LOSSES:
            raise ValueError(f"model.loss={loss!r}; choose one of {', '.join(TRAINING_LOSSES)}")
        if conformal:
            require_calibratable(getattr(net, "quantiles", None))
        if linear_path_init not in LINEAR_PATH_INITS:
            raise ValueError(f"model.linear_path_init={linear_path_init!r}; choose one of {', '.join(LINEAR_PATH_INITS)}")
        if not 0.0 <= linear_path_lr <= 1.0:
            raise ValueError(f"model.linear_path_lr={linear_path_lr} must lie in [0, 1] (a share of the network's lr)")
        self.linear_path_lr = float(linear_path_lr)
        seasonal_lags = list(seasonal_lags or ())  # a plain list (a config gives a ListConfig): checkpoints hold it
        # Only plain values go into checkpoints, which then load with torch.load(weights_only=True); the
        # network, the schedule and the optimizer factories are rebuilt from the config, logged in full.
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler", "teacher_forcing"])
        # Everything inference needs lives in the Forecaster; this module adds the loss, the optimizer and the loops.
        self.forecaster = Forecaster(
            net, normalization, channel_independent, segment_len, n_targets, channel_identity, n_future, seasonal_lags
        )
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.point_loss = TRAINING_LOSSES[loss]
        self.teacher_forcing = teacher_forcing or TeacherForcing()
        self.quantiles = getattr(net, "quantiles", None)
        self.test_errors: nn.ModuleDict | None = None

    @property
    def trainable(self) -> bool:
        """False for parameter-free baselines (last value, seasonal naive): they are only tested."""
        return any(p.requires_grad for p in self.parameters())

    @property
    def uses_teacher_forcing(self) -> bool:
        return self.forecaster.uses_teacher_forcing

    def forward(self, batch: Batch, teacher_forcing_ratio: float = 0.0, **forward_options) -> Batch:
        """The Forecaster's output: y_hat [B, H, C(, Q)] in the data's scale (see tsattn.models.forecaster)."""
        return self.forecaster(batch, teacher_forcing_ratio, **forward_options)

    @property
    def net(self) -> nn.Module:
        return self.forecaster.net

    def point(self, y_hat: torch.Tensor) -> torch.Tensor:
        """The point forecast: y_hat itself, or its median quantile. Shape: -> [B, H, C]."""
        return self.forecaster.point(y_hat)

    def loss(self, y_hat: torch.Tensor, y: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The training loss of a batch's forecast (sMAPE and MASE also read the batch's statistics in data units)."""
        return pinball(y_hat, y, self.quantiles) if self.quantiles else self.point_loss(y_hat, y, batch)

    def on_train_epoch_start(self) -> None:
        self._set_scheduled_rate()  # so the logged rate is the one the epoch's first batch uses
        optimizer = self.optimizers(use_pl_optimizer=False)
        self.log("train/lr", float(optimizer.param_groups[0]["lr"]), on_step=False, on_epoch=True)

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        self._set_scheduled_rate()

    def _set_scheduled_rate(self) -> None:
        """warmup_cosine: the rate for the next optimizer step, from the step count alone."""
        schedule = self.scheduler_factory
        if not isinstance(schedule, LearningRate) or schedule.kind != "warmup_cosine":
            return
        # Known once the fit loop has its batches (asking earlier would set the data up out of turn).
        # Both count optimizer steps, as global_step does (max_steps and gradient accumulation included).
        batches, accumulate = self.trainer.num_training_batches, self.trainer.accumulate_grad_batches
        per_epoch = math.ceil(batches / accumulate) if math.isfinite(batches) else 0
        total = self.trainer.estimated_stepping_batches
        share = schedule.multiplier(self.global_step, per_epoch, int(total) if math.isfinite(total) else None)
        fallback = getattr(self.optimizer_factory, "keywords", {}).get("lr")
        scale_rates(self.optimizers(use_pl_optimizer=False).param_groups, share, fallback)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        ratio = self.teacher_forcing(self.current_epoch) if self.uses_teacher_forcing else 0.0
        loss = self.loss(self(batch, ratio)["y_hat"], batch["y"], batch)
        size = len(batch["y"])
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=size)
        if self.uses_teacher_forcing:
            self.log("train/teacher_forcing_ratio", ratio, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        y_hat, y = self(batch)["y_hat"], batch["y"]
        # The epoch value is the size-weighted mean over every window, summed across DDP ranks
        # (sync_dist); a padding batch, repeated only to even out the ranks, weighs nothing.
        size = 0 if "padding" in batch else len(y)
        loss = self.loss(y_hat, y, batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        if self.hparams.teacher_forced_validation and self.uses_teacher_forcing:  # a second pass: opt-in
            loss_tf = self.loss(self(batch, 1.0)["y_hat"], y, batch)
            self.log("val/loss_tf", loss_tf, batch_size=size, sync_dist=True)
        for name, metric in POINT_METRICS.items():
            self.log(f"val/{name}", metric(self.point(y_hat), y), batch_size=size, sync_dist=True)

    @torch.no_grad()
    def calibrate_intervals(self, dataset, batch_size: int) -> dict[str, float]:
        """Set the conformal offset of each central interval from the windows of `dataset` (validation).

        Every window is read in order on every process, so DDP ranks agree without a collective.

        Returns:
            The mean offset of each interval over steps and channels (conformal/offset_<p>), scaled units.
        """
        from tsattn.intervals import interval_pairs
        from tsattn.models.conformal import interval_offsets

        training = self.training
        self.eval()
        self.forecaster.set_interval_offsets(None)  # scores of the intervals as trained
        outputs, actuals = [], []
        for start in range(0, len(dataset), batch_size):
            batch = dataset[list(range(start, min(start + batch_size, len(dataset))))]
            batch = {key: value.to(self.device) for key, value in batch.items()}
            outputs.append(self(batch)["y_hat"].float())  # [B, H, C, Q]
            actuals.append(batch["y"].float())  # [B, H, C]
        offsets = interval_offsets(torch.cat(outputs), torch.cat(actuals), self.quantiles)  # [H, C, P]
        self.forecaster.set_interval_offsets(offsets)
        self.train(training)
        pairs = interval_pairs(self.quantiles)
        return {f"conformal/offset_{percent}": float(offsets[..., p].mean()) for p, (_, _, percent) in enumerate(pairs)}

    def on_test_epoch_start(self) -> None:
        self.test_errors = None  # sized by the first batch's horizon
        self.test_window_mse: list[torch.Tensor] = []  # each test window's MSE, in the loader's order

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        y_hat, y = self(batch)["y_hat"], batch["y"]
        padding = "padding" in batch  # repeated for DDP only: computed, never scored
        self.log("test/loss", self.loss(y_hat, y, batch), batch_size=0 if padding else len(y), sync_dist=True)
        if self.test_errors is None:  # on every rank, even one that only gets padding: compute() syncs them
            horizon = y.shape[1]
            scored = ("model", "naive", *(("snaive",) if "seasonal_naive" in batch else ()))
            scored += ("best_naive",) if "best_naive" in batch else ()
            self.test_errors = nn.ModuleDict({name: HorizonErrors(horizon) for name in scored})
            if self.quantiles:  # CRPS and interval coverage of the predicted distribution
                self.test_errors["distribution"] = QuantileErrors(horizon, self.quantiles)
            self.test_errors.to(self.device)
        if padding:
            return
        point = self.point(y_hat)  # [B, H, C]
        self.test_window_mse.append(((point - y) ** 2).mean(dim=(1, 2)).detach().float().cpu())  # [B]
        n_targets = y.shape[-1]
        last_value = batch["x"][:, -1:, :n_targets].expand_as(y)  # the naive forecast of the same windows
        self.test_errors["model"].update(point, y)
        if "distribution" in self.test_errors:
            self.test_errors["distribution"].update(y_hat, y)
        self.test_errors["naive"].update(last_value, y)
        if "snaive" in self.test_errors:  # the datamodule's seasonal-naive forecast of the same windows
            self.test_errors["snaive"].update(batch["seasonal_naive"], y)
        if "best_naive" in self.test_errors:  # the strongest simple forecast, chosen on the validation windows
            self.test_errors["best_naive"].update(batch["best_naive"], y)

    def window_errors(self) -> torch.Tensor | None:
        """Each test window's MSE (scaled units), in the test split's window order: [W]. None under several
        processes, whose samplers interleave the windows."""
        if not getattr(self, "test_window_mse", None) or self.trainer.world_size > 1:
            return None
        return torch.cat(self.test_window_mse)

    def on_test_epoch_end(self) -> None:
        errors = {name: metric.compute() for name, metric in self.test_errors.items()}  # synced across ranks
        model = errors.pop("model")
        # CRPS for every run, so point and quantile runs compare on it: a point forecast's CRPS is its MAE.
        distribution = errors.pop("distribution", None) or {"crps": model["mae"]}
        metrics, steps = {}, {}

        def overall_and_per_step(key: str, per_step: torch.Tensor) -> None:  # [H] -> key, key_h1 ... key_hH
            metrics[key] = per_step.mean()
            steps.update({f"{key}_h{h + 1}": float(value) for h, value in enumerate(per_step.tolist())})

        for name, per_step in distribution.items():  # crps, and coverage_<p>, width_<p> per interval
            overall_and_per_step(f"test/{name}", per_step)
        for name in ("mse", "mae"):
            overall_and_per_step(f"test/{name}", model[name])
            # naive: last value; snaive: seasonal naive at data.season_length; best_naive: the strongest of
            # the last value and seasonal naive at every candidate season, chosen on the validation windows
            for baseline, per_step in errors.items():
                overall_and_per_step(f"test/{baseline}_{name}", per_step[name])
        for baseline, per_step in errors.items():  # point forecasts: `compare --metric test/crps` has them too
            overall_and_per_step(f"test/{baseline}_crps", per_step["mae"])
        # Skill: the share of a baseline's squared error the model removes (above 0: better than it).
        metrics["test/skill_mse"] = 1.0 - metrics["test/mse"] / metrics["test/naive_mse"]
        if "snaive" in errors:
            metrics["test/skill_snaive"] = 1.0 - metrics["test/mse"] / metrics["test/snaive_mse"]
        if "best_naive" in errors:
            metrics["test/skill_best_naive"] = 1.0 - metrics["test/mse"] / metrics["test/best_naive_mse"]
        # Computed from error sums already reduced across ranks: the same on every rank, nothing to sync.
        # (sync_dist with rank_zero_only: no collective, and no warning that one is missing.)
        self.log_dict({k: v.float() for k, v in metrics.items()}, sync_dist=True, rank_zero_only=True)
        # The per-step errors (a thousand values at H=96) go to the loggers in one batch: through log_dict
        # each costs Lightning some milliseconds, seconds a run. They join callback_metrics, where training
        # reads every test metric (and which Lightning carries back from spawned DDP workers).
        self.trainer.callback_metrics.update({k: torch.tensor(v) for k, v in steps.items()})
        if self.trainer.is_global_zero:
            for logger in self.loggers:
                logger.log_metrics(steps, step=self.global_step)

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch)["y_hat"]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning restores weights, optimizer, schedulers and loops but not the random generators; with
        # them a resumed run draws the same dropout masks and teacher-forcing coins as one never stopped.
        checkpoint["rng_states"] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        random.setstate((3, tuple(states["python"]), None))
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])

    def _parameter_groups(self):
        """Every parameter, the linear path's in a group of its own when it learns at a share of the rate."""
        path = [p for name, p in self.named_parameters() if ".linear_path." in f".{name}"]
        if self.linear_path_lr == 1.0 or not path:
            return self.parameters()
        chosen = {id(p) for p in path}
        rest = [p for p in self.parameters() if id(p) not in chosen]
        rate = getattr(self.optimizer_factory, "keywords", {}).get("lr", 1e-3)
        if self.linear_path_lr == 0.0:  # held: no gradient either, so it takes no share of gradient clipping
            for parameter in path:
                parameter.requires_grad_(False)
        # lr_share stays in the optimizer's state: a resumed run finds the group's share of the rate
        return [{"params": rest}, {"params": path, "lr": rate * self.linear_path_lr, "lr_share": self.linear_path_lr}]

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self._parameter_groups())
        if self.scheduler_factory is None:
            return optimizer
        if isinstance(self.scheduler_factory, LearningRate):
            if self.scheduler_factory.kind == "plateau":
                return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory.plateau(optimizer)}
            if self.scheduler_factory.kind == "step_decay":
                return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory.step_decay(optimizer)}
            for group in optimizer.param_groups:  # kept in the optimizer's state: a resumed run finds it
                group.setdefault("initial_lr", group["lr"])
            return optimizer  # warmup_cosine: on_train_batch_start sets the rate
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"},
        }
