"""How long training runs when trainer.max_epochs is `auto`: in optimiser steps as well as epochs.

Counting epochs alone lets small data train for a handful of updates (800 windows in batches of 256 over
20 epochs: 80 steps), too few to leave a forecaster's starting point. With `auto`, a run trains for
`training_length.epochs` epochs, or for as many more as give `min_steps` updates; and data with fewer than
`min_batches` batches per epoch is served in smaller batches (never under MIN_BATCH_SIZE windows), so each
epoch, which is what early stopping and the learning-rate schedule count, still holds several updates.
A number for trainer.max_epochs trains exactly that many epochs in data.batch_size batches.

The config is rewritten in place, so the logged config holds the numbers the run used.
"""

from __future__ import annotations

import math

from omegaconf import DictConfig, open_dict

from tsattn.errors import TsattnError

AUTO = "auto"
MIN_BATCH_SIZE = 16


def resolve_training_length(cfg: DictConfig, train_windows: int) -> dict[str, int]:
    """Set trainer.max_epochs (and data.batch_size for small data) when max_epochs is auto; returns the choice."""
    if cfg.trainer.get("max_epochs") != AUTO:
        return {}
    length = cfg.get("training_length") or {}
    epochs, min_steps, min_batches = (int(length.get(k, 0)) for k in ("epochs", "min_steps", "min_batches"))
    if epochs < 1:
        raise TsattnError(f"training_length.epochs={epochs} must be >= 1 when trainer.max_epochs=auto")
    batch_size = int(cfg.data.batch_size)
    if min_batches and math.ceil(train_windows / batch_size) < min_batches:
        batch_size = min(batch_size, max(MIN_BATCH_SIZE, math.ceil(train_windows / min_batches)))
    batches = math.ceil(train_windows / batch_size)
    max_epochs = max(epochs, math.ceil(min_steps / batches))
    with open_dict(cfg):
        cfg.trainer.max_epochs = max_epochs
        cfg.data.batch_size = batch_size
    return {"max_epochs": max_epochs, "batch_size": batch_size, "steps": max_epochs * batches}
