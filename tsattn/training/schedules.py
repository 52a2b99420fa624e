"""Schedules over training: teacher forcing (scheduled sampling) and the learning rate."""

from __future__ import annotations

import math

KINDS = ("constant", "linear", "exponential")


class TeacherForcing:
    """The share of decoder steps fed the truth while training, as a function of the epoch.

    - constant: `start` every epoch;
    - linear: from `start` at epoch 0 to `end` at epoch `epochs`, then `end`;
    - exponential: `start * gamma ** epoch`, never below `end`.

    Args:
        kind: "constant", "linear" or "exponential".
        start: the ratio at epoch 0, in [0, 1].
        end: the ratio the decay approaches, in [0, 1].
        epochs: length of the linear decay.
        gamma: per-epoch factor of the exponential decay, in (0, 1].
    """

    def __init__(
        self, kind: str = "constant", start: float = 1.0, end: float = 0.0, epochs: int = 10, gamma: float = 0.8
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"model.teacher_forcing.kind={kind!r}; choose one of {', '.join(KINDS)}")
        if not (0.0 <= end <= 1.0 and 0.0 <= start <= 1.0 and 0.0 < gamma <= 1.0 and epochs >= 1):
            raise ValueError("model.teacher_forcing: start and end lie in [0, 1], gamma in (0, 1], epochs >= 1")
        self.kind, self.start, self.end, self.epochs, self.gamma = kind, start, end, epochs, gamma

    def __call__(self, epoch: int) -> float:
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            progress = min(epoch / self.epochs, 1.0)
            return self.start + (self.end - self.start) * progress
        return max(self.end, self.start * self.gamma**epoch)


LEARNING_RATE_KINDS = ("warmup_cosine", "plateau", "step_decay")


class LearningRate:
    """How the optimizer's learning rate moves while training (`model.scheduler`).

    - warmup_cosine: linear warm-up from 0 over the first `warmup_epochs` epochs' steps, then a cosine decay
      to `floor` times the base rate at the last step of `trainer.max_epochs`, set before every batch from
      the optimizer step count alone (so a resumed run continues on the same curve). Early
      updates from a freshly initialised network are the noisiest, and a rate that keeps falling lets
      training settle instead of stopping on the first epoch that did not improve.
    - plateau: halve (`factor`) the rate when val/loss has not improved for `patience` epochs (the ETTh1
      experiments' schedule, chosen there on validation).
    - step_decay: the base rate for the first `hold_epochs` epochs, then `gamma` times the previous
      epoch's (SegRNN's schedule: 4 epochs, then x 0.8 per epoch).

    Args:
        kind: "warmup_cosine", "plateau" or "step_decay".
        warmup_epochs: length of the warm-up, in epochs (fractions allowed); 0 for none.
        floor: the final rate as a share of the base rate, in [0, 1].
        factor: plateau only: the multiplier on each reduction, in (0, 1).
        patience: plateau only: epochs without improvement before a reduction.
        hold_epochs: step_decay only: epochs at the base rate.
        gamma: step_decay only: the per-epoch multiplier after them, in (0, 1].
    """

    def __init__(
        self,
        kind: str = "warmup_cosine",
        warmup_epochs: float = 1.0,
        floor: float = 0.05,
        factor: float = 0.5,
        patience: int = 1,
        hold_epochs: int = 4,
        gamma: float = 0.8,
    ) -> None:
        if kind not in LEARNING_RATE_KINDS:
            raise ValueError(f"model.scheduler.kind={kind!r}; choose one of {', '.join(LEARNING_RATE_KINDS)}")
        if warmup_epochs < 0 or not 0.0 <= floor <= 1.0 or not 0.0 < factor < 1.0 or patience < 0:
            raise ValueError("model.scheduler: warmup_epochs >= 0, floor in [0, 1], factor in (0, 1), patience >= 0")
        if hold_epochs < 0 or not 0.0 < gamma <= 1.0:
            raise ValueError("model.scheduler: hold_epochs >= 0 and gamma in (0, 1]")
        self.kind, self.warmup_epochs, self.floor = kind, warmup_epochs, floor
        self.factor, self.patience = factor, patience
        self.hold_epochs, self.gamma = hold_epochs, gamma

    def epoch_multiplier(self, epoch: int) -> float:
        """The share of the base rate in epoch `epoch` (from 0; step_decay)."""
        return self.gamma ** max(0, epoch - self.hold_epochs + 1)

    def step_decay(self, optimizer) -> dict:
        """The `lr_scheduler` entry of configure_optimizers for kind=step_decay."""
        import torch

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.epoch_multiplier)
        return {"scheduler": scheduler, "interval": "epoch"}

    def multiplier(self, step: int, steps_per_epoch: int, total_steps: int | None) -> float:
        """The share of the base rate at optimizer step `step` (warmup_cosine)."""
        warmup = max(0, round(self.warmup_epochs * steps_per_epoch))
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if not total_steps or total_steps <= warmup:  # unbounded training (max_epochs=-1): stay at the base rate
            return 1.0
        progress = min(1.0, (step - warmup) / (total_steps - warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def plateau(self, optimizer) -> dict:
        """The `lr_scheduler` entry of configure_optimizers for kind=plateau (warmup_cosine sets rates itself)."""
        import torch

        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.factor, patience=self.patience
        )
        return {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"}
