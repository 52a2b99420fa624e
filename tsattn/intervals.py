"""Central prediction intervals held by a set of quantile levels: shared by the test metrics and the dashboard.

Kept free of torch so that reading runs (the dashboard, the leaderboard) never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence

# How test/crps is computed (tsattn.metrics.crps), recorded as the run tag tsattn.crps. Quantile runs without
# the tag logged the mean pinball loss of their own levels, which depends on the levels chosen: the
# leaderboard and the dashboard leave them out of CRPS rankings.
CRPS_METHOD = "quantile-function-integral"


def point_level(quantiles: Sequence[float]) -> int:
    """The index of the level closest to 0.5: the quantile a quantile model's point forecast is (0 for none)."""
    return min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5)) if len(quantiles) else 0


def median_level(quantiles: Sequence[float]) -> int | None:
    """The index of level 0.5, the point forecast that conformal calibration leaves in place; None without one."""
    i = point_level(quantiles)
    return i if len(quantiles) and abs(quantiles[i] - 0.5) < 1e-9 else None


def interval_pairs(quantiles: Sequence[float]) -> list[tuple[int, int, int]]:
    """The central intervals a set of quantile levels holds: (lower index, upper index, nominal %).

    Each level q < 0.5 whose mirror 1 - q is also predicted makes one, e.g. 0.1 and 0.9 the 80% interval.
    """
    pairs = []
    for lower, q in enumerate(quantiles):
        upper = next((j for j, p in enumerate(quantiles) if abs(p - (1.0 - q)) < 1e-9), None)
        if q < 0.5 and upper is not None:
            pairs.append((lower, upper, round(100 * (1.0 - 2.0 * q))))
    return pairs
