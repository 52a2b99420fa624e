"""Lightning callbacks that keep a run honest: stop on a diverged loss, report to an Optuna trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from tsattn.errors import TsattnError


class TrainingDiverged(TsattnError):
    """The training loss stopped being a finite number."""


class FiniteLossGuard(L.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, naming the epoch and batch.

    Without it a diverged run trains on for hours, every checkpoint after the fault holds NaN weights, and
    early stopping only notices at the next validation. Raising inside fit makes Lightning finalise the
    logger as failed; the checkpoints written before the fault stay on disk.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch, batch_idx: int):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or bool(torch.isfinite(loss.detach()).all()):
            return
        checkpoint = trainer.checkpoint_callback
        last = Path(checkpoint.dirpath or "", "last.ckpt") if checkpoint is not None else None
        kept = (
            f"the last good checkpoint is {last}; resume from it with ckpt_path=last"
            if last is not None and last.exists()
            else "no checkpoint was written before it"
        )
        raise TrainingDiverged(
            f"the training loss became {loss.item()} at epoch {trainer.current_epoch}, batch {batch_idx}: "
            f"lower model.optimizer.lr or keep trainer.gradient_clip_val; {kept}"
        )


class OptunaPruning(L.Callback):
    """Reports the monitored validation metric to an Optuna trial every epoch; stops the run when pruned.

    The trial lives in the study's storage, so this works in any process a launcher starts. A pruned run
    stops like an early-stopped one (its best checkpoint is still tested and logged) and `pruned` tells
    the sweeper to record the trial as PRUNED.

    Args:
        study_name: the study.
        storage: the study's storage URL.
        trial_id: the trial's storage id.
        monitor: the metric to report, e.g. "val/loss".
        pruner: the sweep's pruner config (`_target_` and arguments); it decides here, in the job, since
            a storage keeps trials but not the pruner.
    """

    def __init__(
        self, study_name: str, storage: str, trial_id: int, monitor: str = "val/loss", pruner: Any = None
    ) -> None:
        import optuna
        from hydra.utils import instantiate

        pruner = instantiate(pruner) if pruner else optuna.pruners.NopPruner()
        study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
        self.trial = optuna.trial.Trial(study, trial_id)
        self.monitor = monitor
        self.pruned = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Epochs only: not the sanity check, nor the validation of a fitted start before training.
        if trainer.sanity_checking or trainer.state.fn != "fit" or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.trial.report(value, step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True
