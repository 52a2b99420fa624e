"""Stochastic weight averaging whose averages are validated like any epoch's weights (`callbacks=averaged`).

From `start_epoch` on, the callback keeps the equal-weight mean of the parameters after every optimizer step
(SWA, Izmailov et al. 2018; the same averaging as Lightning's WeightAveraging, which tsattn's floor,
lightning 2.4, lacks). Each validation from then on scores the mean, not the weights in training, and each
checkpoint holds the mean as its weights. So early stopping, the choice of the best checkpoint and a
`plateau` schedule all see the averaged model: an average that validates worse than an earlier epoch is
never the run's model, and the test split chooses nothing. Validations before `start_epoch` (and the sanity check)
score the weights in training, as without the callback.

The weights in training travel in each checkpoint beside the mean (`weights_in_training`), with the number
of steps averaged in the callback's state, so `ckpt_path=last` resumes both. tsattn's forecasters have no
batch-norm statistics to recompute: only parameters are averaged; buffers keep their values.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from tsattn.errors import TsattnError

log = logging.getLogger(__name__)

IN_TRAINING = "weights_in_training"


class WeightAverage(L.Callback):
    """Averages the parameters after every optimizer step from `start_epoch` (0-based) on.

    Args:
        start_epoch: the first epoch whose steps enter the mean. Earlier epochs train and validate as usual,
            so the early, fast-improving weights do not drag the mean.
    """

    def __init__(self, start_epoch: int = 2) -> None:
        if start_epoch < 0:
            raise ValueError(f"callbacks.weight_averaging.start_epoch must be 0 or more, got {start_epoch}")
        self.start_epoch = start_epoch
        self.count = 0  # optimizer steps in the mean
        self._mean: dict[str, torch.Tensor] = {}
        self._held: dict[str, torch.Tensor] | None = None  # the weights in training while the mean validates
        self._last_step = -1
        self._resuming = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if any(getattr(c, "save_weights_only", False) for c in trainer.checkpoint_callbacks):
            # Lightning skips callbacks' on_save_checkpoint for weights-only files: they would hold the weights
            # in training under the mean's validation score.
            raise TsattnError(
                "callbacks=averaged needs full checkpoints: drop callbacks.model_checkpoint.save_weights_only"
            )
        # A fresh fit starts a fresh mean; a resumed one overwrites it from the checkpoint right after setup.
        self._mean = {name: p.detach().clone() for name, p in pl_module.named_parameters()}
        self.count, self._last_step, self._held = 0, -1, None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # setup and on_load_checkpoint run before the strategy moves the module to its device.
        with torch.no_grad():
            self._mean = {name: self._mean[name].to(p.device) for name, p in pl_module.named_parameters()}

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.count == 0 and trainer.current_epoch >= self.start_epoch:
            # Under gradient accumulation the epoch's first batches take no optimizer step: only a step taken
            # from here on enters the mean, never the weights the previous epoch ended with.
            self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        # global_step counts optimizer steps: under gradient accumulation several batches share one.
        if trainer.current_epoch < self.start_epoch or trainer.global_step == self._last_step:
            return
        self._last_step = trainer.global_step
        self.count += 1
        with torch.no_grad():
            for name, p in pl_module.named_parameters():
                mean = self._mean[name]
                mean.add_(p.detach() - mean, alpha=1.0 / self.count)  # the running mean; count 1 copies p

    def _averaging(self, trainer: L.Trainer) -> bool:
        return self.count > 0 and not trainer.sanity_checking and trainer.state.fn == "fit"

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._averaging(trainer):
            return
        with torch.no_grad():
            self._held = {}
            for name, p in pl_module.named_parameters():
                self._held[name] = p.detach().clone()
                p.copy_(self._mean[name])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Before ModelCheckpoint saves (on_validation_end): the checkpoint is written from the weights in
        # training, with the mean put in as its weights by on_save_checkpoint.
        if self._held is None:
            return
        with torch.no_grad():
            for name, p in pl_module.named_parameters():
                p.copy_(self._held[name])
        self._held = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self.count == 0:
            return
        weights = checkpoint["state_dict"]
        checkpoint[IN_TRAINING] = {name: weights[name] for name in self._mean}
        checkpoint["state_dict"] = {**weights, **{name: mean.clone() for name, mean in self._mean.items()}}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # Testing a checkpoint loads its weights, the mean, as they are; only a resumed fit splits them again
        # (and takes the callback's state, which Lightning restores next, whatever the stage).
        self._resuming = trainer.state.fn == "fit"
        if not self._resuming or IN_TRAINING not in checkpoint:
            return
        with torch.no_grad():
            for name, p in pl_module.named_parameters():
                self._mean[name] = p.detach().clone()  # the module was just loaded from the mean
                p.copy_(checkpoint[IN_TRAINING][name])

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "start_epoch": self.start_epoch, "last_step": self._last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self._resuming:
            self.count = int(state_dict["count"])
            self._last_step = int(state_dict["last_step"])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.count:
            log.info(
                "weight averaging: %d optimizer steps from epoch %d on averaged; every validation since scored "
                "the mean, so the best checkpoint holds it if one of those epochs was best",
                self.count,
                self.start_epoch,
            )
