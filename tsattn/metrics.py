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


class QuantileErrors(Metric):
    """CRPS and the coverage and width of each central interval, per horizon step, reduced under DDP.

    CRPS is approximated from the predicted levels as the mean over levels of twice the pinball loss (the
    usual quantile approximation; for a point forecast it is the MAE). Coverage is the share of targets
    inside [q, 1 - q], width the mean of the upper minus the lower level.

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
        self.add_state("pinball", default=torch.zeros(horizon, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("covered", default=torch.zeros(intervals, horizon, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("width", default=torch.zeros(intervals, horizon, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, y_hat: torch.Tensor, y: torch.Tensor) -> None:
        y_hat, y = y_hat.double(), y.double()
        loss = pinball_terms(y_hat, y, self.quantiles)  # [B, H, C, Q]
        self.pinball += 2.0 * loss.mean(dim=-1).sum(dim=(0, 2))  # -> [H]
        for i, (lower, upper, _) in enumerate(self.pairs):
            low, high = y_hat[..., lower], y_hat[..., upper]  # [B, H, C]
            self.covered[i] += ((y >= low) & (y <= high)).double().sum(dim=(0, 2))
            self.width[i] += (high - low).sum(dim=(0, 2))
        self.count += y.shape[0] * y.shape[2]

    def compute(self) -> dict[str, torch.Tensor]:
        scores = {"crps": self.pinball / self.count}
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


def scores(forecast: np.ndarray, actual: np.ndarray, scaled_abs: np.ndarray) -> dict:
    """MSE, MAE, sMAPE (%) and MASE, overall and per horizon step. Shapes: [N, H, C] each."""
    error = forecast - actual
    denominator = np.abs(forecast) + np.abs(actual)
    smape = np.where(denominator > 0, 2 * np.abs(error) / np.where(denominator > 0, denominator, 1), 0.0) * 100
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
