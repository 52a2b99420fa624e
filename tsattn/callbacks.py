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
