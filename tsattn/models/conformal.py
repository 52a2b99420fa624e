"""Conformalised quantile regression (Romano et al., 2019): each central interval widened to its coverage.

On a calibration set (tsattn: the validation windows), the score of an interval [lo, hi] at an actual y is
max(lo - y, y - hi): how far y falls outside it (negative inside). The offset for a nominal coverage of
1 - a is the ceil((n + 1)(1 - a))-th smallest of the n scores, one per horizon step and target channel;
widening the interval by it on both sides covers at least 1 - a of exchangeable new windows. Overlapping
windows of one series are not exchangeable, so the guarantee is approximate here; the calibration benchmark
measures what it does on test.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch

from tsattn.errors import TsattnError
from tsattn.intervals import interval_pairs, median_level

log = logging.getLogger(__name__)


def require_calibratable(quantiles: Sequence[float] | None) -> None:
    """model.conformal=true needs quantile outputs with a 0.5 level, the point forecast it leaves in place."""
    if median_level(quantiles or []) is None:
        raise TsattnError(
            "model.conformal=true calibrates the intervals of a quantile model with a 0.5 level: set "
            "model.net.quantiles (e.g. [0.1,0.5,0.9]), or model.conformal=false"
        )


def interval_offsets(y_hat: torch.Tensor, y: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """The conformal offset of each central interval of `quantiles`, per step and channel.

    Shape:
        y_hat [N, H, C, Q], y [N, H, C] -> [H, C, P], P the number of intervals (interval_pairs order)
    """
    pairs = interval_pairs(quantiles)
    n = y.shape[0]
    offsets = []
    for lower, upper, percent in pairs:
        scores = torch.maximum(y_hat[..., lower] - y, y - y_hat[..., upper])  # [N, H, C]
        rank = math.ceil((n + 1) * percent / 100)  # the finite-sample quantile of the n scores
        if rank > n:  # too few windows to certify this coverage: the largest score is the best there is
            log.warning("%d calibration windows are too few for a %d%% interval: it may cover less", n, percent)
            rank = n
        offsets.append(torch.kthvalue(scores, rank, dim=0).values)  # [H, C]
    return torch.stack(offsets, dim=-1) if offsets else y.new_zeros(*y.shape[1:], 0)


def widen(y_hat: torch.Tensor, offsets: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """Each central interval moved out by its offset (in by a negative one), never past the median.

    Levels stay ordered without narrowing any interval: a lower level is taken down to any lower level
    inside it, an upper level up to any upper level inside it (an inner interval widened past an outer one
    widens the outer one too).

    Shape:
        y_hat [B, H, C, Q], offsets [H, C, P] -> [B, H, C, Q]
    """
    median = median_level(quantiles)
    if median is None:
        raise ValueError("conformal offsets need the 0.5 level, the point forecast they leave in place")
    horizon = y_hat.shape[1]
    widened = y_hat.clone()
    centre = y_hat[..., median]  # [B, H, C]
    for p, (lower, upper, _) in enumerate(interval_pairs(quantiles)):
        offset = offsets[:horizon, :, p]  # [H, C], broadcast over the batch
        widened[..., lower] = torch.minimum(y_hat[..., lower] - offset, centre)
        widened[..., upper] = torch.maximum(y_hat[..., upper] + offset, centre)
    # Levels below the median, from the median outwards: each at most the one inside it; above: at least.
    below = widened[..., :median].flip(-1).cummin(dim=-1).values.flip(-1)
    above = widened[..., median + 1 :].cummax(dim=-1).values
    return torch.cat([below, widened[..., median : median + 1], above], dim=-1)
