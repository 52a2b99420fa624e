"""Forecast metrics: pure functions over [B, H, C] tensors, and an accumulator of errors per horizon step.

Each function returns the mean over every element, so a batch-size-weighted mean of batch values equals the
metric over the whole split.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric


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
    q = torch.tensor(quantiles, dtype=y_hat.dtype, device=y_hat.device)  # [Q]
    error = y.unsqueeze(-1) - y_hat  # [B, H, C, Q]
    return torch.mean(torch.maximum(q * error, (q - 1.0) * error))


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
