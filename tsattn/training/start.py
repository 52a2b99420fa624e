"""A fitted start is a candidate like any epoch: the run keeps it when no epoch beats it on validation.

A forecaster whose linear path starts at the ridge map (tsattn.training.linear_init) begins training as the
best linear forecast, chosen on the validation windows. Training can still end worse than that start on
validation (ETTh1 at H=720: ridge 1.5547, the best epoch of each forecaster 1.5645 to 1.5672), and the best
checkpoint would then hand the user a model that loses to a linear map it already held. So the start is
scored on the validation windows by the same loop as every epoch and saved as it enters training; after
training, the run's model (test scores, bundle, `val/loss_best`) is the start unless the best epoch scored
below it. Lightning's checkpointing, early stopping and the schedule are left as they were: they follow
the epochs, and `ckpt_path=last` resumes as before.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)

START, START_LOSS = "start.ckpt", "start.json"


def validate_start(trainer: Trainer, model: LightningModule, datamodule) -> float:
    """The monitored validation loss of the weights before training; logged nowhere, since it is no epoch.

    Like the sanity check, its dataloader draws a seed from torch's generator: a run with a fitted start
    follows its own (seeded, repeatable) path through training."""
    loggers = trainer.loggers
    trainer.loggers = []
    try:
        (results,) = trainer.validate(model, datamodule=datamodule, verbose=False)
    finally:
        trainer.loggers = loggers
    return float(results["val/loss"])


class StartAsCandidate(Callback):
    """Saves the weights as training starts (weights only, beside the run's checkpoints, with the start's
    validation loss in start.json, so a run resumed with ckpt_path=last still weighs its start).

    At on_train_start: after the checkpoint callback's setup, which warns about files already in its
    directory, and after the sanity check.
    """

    def __init__(self, directory: str, loss: float, saved: bool = False) -> None:
        self.path = str(Path(directory) / START)
        self.loss = loss
        self.saved = saved

    @classmethod
    def saved_in(cls, directory: str) -> StartAsCandidate | None:
        """The start an earlier attempt of this run saved in `directory` (resuming), or None."""
        record = Path(directory) / START_LOSS
        if not (record.exists() and (Path(directory) / START).exists()):
            return None
        return cls(directory, float(json.loads(record.read_text())["val_loss"]), saved=True)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.saved:
            return
        trainer.save_checkpoint(self.path, weights_only=True)
        if trainer.is_global_zero:
            Path(self.path).with_name(START_LOSS).write_text(json.dumps({"val_loss": self.loss}))
        self.saved = True

    def choose(self, checkpointing: ModelCheckpoint) -> tuple[str, float] | None:
        """After training: the start's checkpoint and loss when no epoch scored below it, else None (and the
        start's file is removed: the best epoch's checkpoint is the run's model)."""
        best = checkpointing.best_model_score
        # No best score to weigh it against (no epoch validated, or a spawned DDP run whose parent gets the
        # best path but not its score) or a start that is no number: the epochs' best stands, as before.
        if best is not None and math.isfinite(self.loss) and not float(best) < self.loss:
            return self.path, self.loss
        for name in (START, START_LOSS):
            Path(self.path).with_name(name).unlink(missing_ok=True)
        return None
