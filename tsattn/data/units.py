"""Each series' statistics in the data's own units, for the losses that score forecasts there (sMAPE, MASE).

The network sees standardised values; a loss in the data's units maps its forecast back with the scaler's
mean and std, and MASE divides the error by the series' mean absolute seasonal difference. Everything here
is computed from the training rows only (rows before each series' training border), like the scaler, so no
validation or test value reaches a training signal.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from tsattn.data.scaling import StandardScaler
from tsattn.data.series import SeriesCollection
from tsattn.metrics import mase_scale, smape_terms

# The batch keys, each [B, C]: the scaler's mean and std of the targets, MASE's in-sample denominator, and the
# in-sample seasonal naive forecast's sMAPE averaged over every series (one number per channel, the same in every
# window: what the sMAPE half of the mixed loss is measured against, as OWA measures against Naive2's).
UNIT_KEYS = ("target_mean", "target_std", "seasonal_scale", "smape_reference")
# MASE's weight std / scale is capped at this: a nearly flat training history would otherwise outweigh every
# other series in the loss.
MAX_MASE_WEIGHT = 1e3


def seasonal_scale(values: np.ndarray, season: int) -> np.ndarray:
    """MASE's in-sample denominator (tsattn.metrics.mase_scale, the one scoring uses), per channel: the mean absolute
    difference between values `season` steps apart, or 1 step apart in a history no longer than a season.

    A channel that never changes, or a single row, gets 1, so its errors count in its own units instead of
    dividing by zero.

    Shape: values [T, C] -> [C]
    """
    values = values.astype(np.float64)
    if len(values) < 2:
        return np.ones(values.shape[1])
    scale = mase_scale(values, season)
    return np.where(np.isfinite(scale), scale, 1.0)


def seasonal_smape(values: np.ndarray, season: int) -> np.ndarray:
    """The sMAPE (%) of the in-sample seasonal naive forecast (each value forecast by the one `season` steps before
    it; 1 step in a history no longer than a season), per channel: the sMAPE counterpart of MASE's denominator.
    Where it is 0 or undefined (a flat channel, a single row) it is 1.

    Shape: values [T, C] -> [C]
    """
    values = values.astype(np.float64)
    lag = season if len(values) > season else 1
    if len(values) <= lag:
        return np.ones(values.shape[1])
    reference = smape_terms(values[:-lag], values[lag:]).mean(axis=0)
    return np.where(reference > 0, reference, 1.0)


def series_units(
    collection: SeriesCollection, scaler: StandardScaler, train_ends: Mapping[str, int], season: int
) -> dict[str, torch.Tensor]:
    """The UNIT_KEYS of every series, in the collection's order, from its training rows (the sMAPE reference from
    every series' training rows).

    Shape: -> {key: [S, C]} (float32)
    """
    n_targets = len(collection.targets)
    means, stds, scales, smapes = [], [], [], []
    for s in collection.series:
        mean, std = scaler.pairs[s.id]
        means.append(mean[:n_targets])
        stds.append(std[:n_targets])
        train = s.values[: train_ends[s.id], :n_targets]
        scales.append(seasonal_scale(train, season))
        smapes.append(seasonal_smape(train, season))
    stds_, scales_ = np.stack(stds), np.stack(scales)  # [S, C]
    scales_ = np.maximum(scales_, stds_ / MAX_MASE_WEIGHT)
    reference = np.broadcast_to(np.stack(smapes).mean(axis=0), scales_.shape)  # [C] -> [S, C]
    arrays = (np.stack(means), stds_, scales_, reference)  # each [S, C]
    return {key: torch.from_numpy(array.astype(np.float32)) for key, array in zip(UNIT_KEYS, arrays, strict=True)}
