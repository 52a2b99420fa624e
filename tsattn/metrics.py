"""Point-forecast metrics: pure functions over tensors shaped [B, H, C].

Each returns the mean over every element, so a batch-size-weighted mean of batch values equals the metric
over the whole split.
"""

from __future__ import annotations

import torch


def mse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error. Shape: y_hat, y [B, H, C] -> scalar."""
    return torch.mean((y_hat - y) ** 2)


def mae(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error. Shape: y_hat, y [B, H, C] -> scalar."""
    return torch.mean(torch.abs(y_hat - y))


POINT_METRICS = {"mse": mse, "mae": mae}
