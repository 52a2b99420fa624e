"""Forecast metrics: pure functions over [B, H, C] tensors, and an accumulator of errors per horizon step.

Each function returns the mean over every element, so a batch-size-weighted mean of batch values equals the
metric over the whole split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics import Metric

from tsattn.intervals import interval_pairs


def mse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error. Shape: y_hat, y [B, H, C] -> scalar."""
    return torch.mean((y_hat - y) ** 2)


def mae(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error. Shape: y_hat, y [B, H, C] -> scalar."""
    return torch.mean(torch.abs(y_hat - y))


def pinball(y_hat: torch.Tensor, y: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """Mean pinball (quantile) loss over every quantile.

    Shape:
        y_hat [B, H, C, Q], y [B, H, C] -> scalar
    """
    return torch.mean(pinball_terms(y_hat, y, quantiles))


def pinball_terms(y_hat: torch.Tensor, y: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """The pinball loss of every element and level: under-forecasts cost q, over-forecasts 1 - q.

    Shape:
        y_hat [B, H, C, Q], y [B, H, C] -> [B, H, C, Q]
    """
    q = torch.tensor(quantiles, dtype=y_hat.dtype, device=y_hat.device)  # [Q]
    error = y.unsqueeze(-1) - y_hat  # [B, H, C, Q]
    return torch.maximum(q * error, (q - 1.0) * error)


POINT_METRICS = {"mse": mse, "mae": mae}


class HorizonErrors(Metric):
    """Sums of squared and absolute errors per horizon step, reduced across processes under DDP.

    Args:
        horizon: H.

    Shape:
        update(y_hat [B, H, C], y [B, H, C]); compute() -> {"mse": [H], "mae": [H]}
    """

    full_state_update = False

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.add_state("squared", default=torch.zeros(horizon, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("absolute", default=torch.zeros(horizon, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, y_hat: torch.Tensor, y: torch.Tensor) -> None:
        error = (y_hat - y).double()  # float64 sums: thousands of windows x H x C terms
        self.squared += error.pow(2).sum(dim=(0, 2))  # [B, H, C] -> [H]
        self.absolute += error.abs().sum(dim=(0, 2))
        self.count += y.shape[0] * y.shape[2]

    def compute(self) -> dict[str, torch.Tensor]:
        return {"mse": self.squared / self.count, "mae": self.absolute / self.count}


# Levels the quantile function is integrated over (the midpoint rule on equal cells of (0, 1)): for normal
# quantiles the integral moves by under 0.05% from 100 to 2,000 levels.
CRPS_GRID = 100


def quantile_function_weights(levels: Sequence[float], grid: int = CRPS_GRID) -> tuple[np.ndarray, np.ndarray]:
    """The quantile function at `grid` levels as fixed linear combinations of the forecast's quantiles.

    Between two forecast levels the quantile function is interpolated linearly; beyond the outermost ones it
    is extended by exponential tails whose slope matches the outermost segment's (Q(t) = Q(q_1) + s q_1
    log(t / q_1) below q_1, mirrored above q_K), so every level set describes a whole distribution. One level
    describes a point mass.

    Returns:
        tau [G], the integration levels, and weights [Q, G]: quantile values [..., Q] @ weights -> Q(tau) [..., G]
    """
    q = np.asarray([float(level) for level in levels], dtype=np.float64)
    if q.size == 0 or np.any((q <= 0) | (q >= 1)) or np.any(np.diff(q) <= 0):
        raise ValueError(f"quantile levels must be ascending and inside (0, 1), got {list(levels)}")
    tau = (np.arange(grid) + 0.5) / grid
    weights = np.zeros((q.size, grid))
    if q.size == 1:
        weights[0] = 1.0  # a point mass at the one value
        return tau, weights
    inside = (tau >= q[0]) & (tau <= q[-1])
    right = np.clip(np.searchsorted(q, tau[inside], side="right"), 1, q.size - 1)  # segment [q[right-1], q[right]]
    share = (tau[inside] - q[right - 1]) / (q[right] - q[right - 1])
    columns = np.flatnonzero(inside)
    weights[right - 1, columns] += 1.0 - share
    weights[right, columns] += share
    below, above = tau < q[0], tau > q[-1]
    lower = q[0] * np.log(tau[below] / q[0]) / (q[1] - q[0])  # Q = v0 + lower (v1 - v0), lower < 0
    weights[0, below], weights[1, below] = 1.0 - lower, lower
    upper = -(1 - q[-1]) * np.log((1 - tau[above]) / (1 - q[-1])) / (q[-1] - q[-2])  # Q = vK + upper (vK - vK-1)
    weights[-1, above], weights[-2, above] = 1.0 + upper, -upper
    return tau, weights


def crps_terms(y_hat: torch.Tensor, y: torch.Tensor, levels: Sequence[float], chunk: int = 1 << 16) -> torch.Tensor:
    """The CRPS of every forecast element: twice the pinball loss integrated over every level in (0, 1).

    CRPS = 2 * integral over t in (0, 1) of pinball_t(y, Q(t)), with Q the forecast's quantile function
    (quantile_function_weights). Crossing quantiles are sorted first (a quantile function never decreases, and
    sorting never raises the pinball loss). For a point forecast (one level) it is the absolute error.

    Shape:
        y_hat [..., Q], y [...] -> [...]
    """
    tau, weights = quantile_function_weights(levels)
    values = torch.sort(y_hat.double(), dim=-1).values.reshape(-1, y_hat.shape[-1])  # [N, Q]
    truth = y.double().reshape(-1)  # [N]
    weights_t = torch.from_numpy(weights).to(values.device)  # [Q, G]
    # pinball_t(e) = t * e + relu(-e) with e = y - Q(t): the first term sums in closed form over the levels,
    # (y * sum(t) - values @ (weights @ t)); only the second needs Q at every level.
    total = truth * tau.sum() - values @ (weights_t @ torch.from_numpy(tau).to(values.device))  # [N]
    for start in range(0, len(truth), chunk):  # [chunk, G] at a time: 52 MB, whatever B, H and C are
        at_levels = values[start : start + chunk] @ weights_t  # [n, G]
        total[start : start + chunk] += torch.relu(at_levels - truth[start : start + chunk, None]).sum(dim=-1)
    return (2.0 * total / tau.size).reshape(y.shape)


def crps(actual, quantile_forecasts, levels: Sequence[float]) -> float:
    """Mean CRPS of quantile forecasts, in the data's units: comparable across level sets and with a point
    forecast's MAE (its CRPS).

    The forecast's quantile function is interpolated between its levels and given exponential tails
    (quantile_function_weights), then twice the pinball loss is integrated over (0, 1). Perfect N(0, 1)
    quantiles at levels (0.1, 0.5, 0.9), (0.05, 0.1, 0.5, 0.9, 0.95) or 0.1 to 0.9 score within 1% of the
    true CRPS, 1 / sqrt(pi) = 0.564, where the mean pinball loss of the levels gives 0.50, 0.38 and 0.62.

    Args:
        actual: the observed values, any shape [...] (numpy array, tensor or nested lists).
        quantile_forecasts: the forecast's value at each level. [..., Q]
        levels: the Q levels, ascending, inside (0, 1).
    """
    forecast = torch.as_tensor(np.asarray(quantile_forecasts, dtype=np.float64))
    truth = torch.as_tensor(np.asarray(actual, dtype=np.float64))
    if forecast.shape[:-1] != truth.shape or forecast.shape[-1] != len(levels):
        raise ValueError(
            f"quantile_forecasts must have shape actual's {tuple(truth.shape)} plus one axis of the {len(levels)} "
            f"levels, got {tuple(forecast.shape)}"
        )
    return float(crps_terms(forecast, truth, levels).mean())


class QuantileErrors(Metric):
    """CRPS and the coverage and width of each central interval, per horizon step, reduced under DDP.

    CRPS integrates the forecast's quantile function over every level (crps_terms), so runs with different
    level sets, and point forecasts (whose CRPS is their MAE), are scored alike. Coverage is the share of
    targets inside [q, 1 - q], width the mean of the upper minus the lower level.

    Args:
        horizon: H.
        quantiles: the network's levels, ascending.

    Shape:
        update(y_hat [B, H, C, Q], y [B, H, C]);
        compute() -> {"crps": [H], "coverage_<p>": [H], "width_<p>": [H]} for each interval of p%
    """

    full_state_update = False

    def __init__(self, horizon: int, quantiles: Sequence[float]) -> None:
        super().__init__()
        self.quantiles = [float(q) for q in quantiles]
        self.pairs = interval_pairs(self.quantiles)
        intervals = len(self.pairs)
        self.add_state("crps", default=torch.zeros(horizon, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("covered", default=torch.zeros(intervals, horizon, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("width", default=torch.zeros(intervals, horizon, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, y_hat: torch.Tensor, y: torch.Tensor) -> None:
        y_hat, y = y_hat.double(), y.double()
        self.crps += crps_terms(y_hat, y, self.quantiles).sum(dim=(0, 2))  # [B, H, C] -> [H]
        for i, (lower, upper, _) in enumerate(self.pairs):
            low, high = y_hat[..., lower], y_hat[..., upper]  # [B, H, C]
            self.covered[i] += ((y >= low) & (y <= high)).double().sum(dim=(0, 2))
            self.width[i] += (high - low).sum(dim=(0, 2))
        self.count += y.shape[0] * y.shape[2]

    def compute(self) -> dict[str, torch.Tensor]:
        scores = {"crps": self.crps / self.count}
        for i, (_, _, percent) in enumerate(self.pairs):
            scores[f"coverage_{percent}"] = self.covered[i] / self.count
            scores[f"width_{percent}"] = self.width[i] / self.count
        return scores


# Real-unit scores of forecasts held as numpy arrays: backtest, the Python API and the Spark engine.


def mase_scale(insample: np.ndarray, season: int) -> np.ndarray:
    """Mean absolute seasonal difference of the rows before the first origin, per target ([C]).

    The seasonal lag falls back to 1 when the in-sample rows do not span two seasons; a flat in-sample
    series has no scale (NaN), and its MASE is left out.
    """
    lag = season if len(insample) > season else 1
    scale = np.abs(insample[lag:] - insample[:-lag]).mean(axis=0)
    return np.where(scale > 0, scale, np.nan)


def smape_terms(forecast: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """The M competitions' sMAPE of every value, in %: 200 |y - f| / (|y| + |f|), 0 where both are 0. Same shape."""
    denominator = np.abs(forecast) + np.abs(actual)
    ratio = 2 * np.abs(forecast - actual) / np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, ratio, 0.0) * 100


def scores(forecast: np.ndarray, actual: np.ndarray, scaled_abs: np.ndarray) -> dict:
    """MSE, MAE, sMAPE (%) and MASE, overall and per horizon step. Shapes: [N, H, C] each."""
    error = forecast - actual
    smape = smape_terms(forecast, actual)
    per_step = {
        "mse": (error**2).mean(axis=(0, 2)),
        "mae": np.abs(error).mean(axis=(0, 2)),
        "smape": smape.mean(axis=(0, 2)),
        "mase": np.nanmean(scaled_abs, axis=(0, 2))
        if np.isfinite(scaled_abs).any()
        else np.full(error.shape[1], np.nan),
    }
    overall = {
        "mse": float((error**2).mean()),
        "mae": float(np.abs(error).mean()),
        "smape": float(smape.mean()),
        "mase": float(np.nanmean(scaled_abs)) if np.isfinite(scaled_abs).any() else float("nan"),
    }
    return {"overall": overall, "per_step": {k: [float(v) for v in values] for k, values in per_step.items()}}
