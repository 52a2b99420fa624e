"""What the optimiser minimises for point forecasts, chosen by `model.loss`.

tsattn.metrics scores forecasts; these only train them (and give `val/loss`, which early stopping and the
best checkpoint follow). `val/mse` and `val/mae` are logged beside it under every loss, so runs trained with
different losses are compared on the same scale. Each loss is a mean over windows of a per-window value, so
Lightning's batch-size-weighted mean of batch values is the loss over the whole split.

Shape (every loss): y_hat, y [B, H, C], in the data's (scaled) units, and the batch they came from -> scalar.

sMAPE and MASE are scored in the data's own units, as the M4 competition scored them: they map the forecast
back with the batch's scaler statistics (tsattn.data.units, fit on training rows only). The others read the
scaled values alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch.nn import functional as F

from tsattn.data.units import UNIT_KEYS
from tsattn.metrics import mae, mse

Batch = Mapping[str, torch.Tensor]

# FreDF's weights: its scripts train with 0.2 x MSE + 0.8 x the frequency term (Master-PLC/FreDF,
# scripts/*: lambda=0.2 for the time-domain loss, 1 - lambda for the frequency one).
FREDF_TIME_WEIGHT = 0.2


def huber(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Huber loss with delta 1 (one training standard deviation, as the scaler leaves the data): half the square
    below it, linear above, so a few large errors (spikes in load data) pull less than under MSE."""
    return F.huber_loss(y_hat, y, delta=1.0)


def arctan_weights(horizon: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """xPatch's horizon weights, 1 - arctan(h) + pi/4 for step h = 1..H: 1 at the first step, falling
    towards 1 - pi/4 (0.215), so the far steps, which no model forecasts well, weigh about a fifth.

    Shape: -> [H, 1] (broadcasts over [B, H, C])
    """
    steps = torch.arange(1, horizon + 1, device=device, dtype=torch.float32)  # float32: MPS has no float64
    return (1.0 - torch.atan(steps) + math.pi / 4).to(dtype or torch.float32).unsqueeze(-1)


def arctan_mae(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """xPatch's training loss: MAE with each horizon step weighted by arctan_weights (stitsyuk/xPatch,
    exp/exp_main.py: outputs and targets both multiplied by the weights before L1)."""
    weights = arctan_weights(y.shape[1], y.device, y.dtype)  # [H, 1]
    return torch.mean(weights * torch.abs(y_hat - y))


def fredf(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """FreDF's loss: 0.2 x MSE + 0.8 x the mean modulus of the difference of the two forecasts' real FFTs
    along the horizon (unnormalised, as in Master-PLC/FreDF's exp/exp_long_term_forecasting.py).

    The frequency term ties the steps of a forecast together: MSE treats them as independent, while the
    errors of a multi-step forecast are correlated over the horizon. FreDF validates with MSE; here `val/loss`
    (early stopping, the best checkpoint) is this loss, and `val/mse` is logged beside it."""
    # At least float32: under mixed precision y_hat may be half or bfloat16, which the FFT does not take on every
    # device; a float64 run stays float64.
    dtype = torch.promote_types(torch.promote_types(y_hat.dtype, y.dtype), torch.float32)
    spectrum_error = torch.fft.rfft(y_hat.to(dtype), dim=1) - torch.fft.rfft(y.to(dtype), dim=1)  # [B, H//2 + 1, C]
    return FREDF_TIME_WEIGHT * mse(y_hat, y) + (1.0 - FREDF_TIME_WEIGHT) * spectrum_error.abs().mean()


def units(batch: Batch) -> tuple[torch.Tensor, ...]:
    """The batch's UNIT_KEYS (target mean, std, MASE scale, the sMAPE reference), each [B, C] -> [B, 1, C]
    (broadcasts over the horizon)."""
    missing = [key for key in UNIT_KEYS if key not in batch]
    if missing:
        raise ValueError(f"the batch lacks {missing}: losses in the data's units need batches of a ForecastDataModule")
    return tuple(batch[key].unsqueeze(1) for key in UNIT_KEYS)


def smape(y_hat: torch.Tensor, y: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The M4 competition's sMAPE in percent, 200 |f - y| / (|f| + |y|), of the forecast mapped back to the data's
    units. A step where both are 0 counts 0.

    It weighs each error by the level of the series, as the competition's score does; it suits positive data
    (demand, counts, prices), not series that cross zero. N-BEATS trains with it too (ServiceNow/N-BEATS,
    common/torch/losses.py) but holds the denominator fixed; here the gradient is the score's own, denominator
    included, so of two forecasts equally far from the truth the higher costs less, as it scores."""
    return 200.0 * smape_terms(y_hat, y, batch).mean()


def smape_terms(y_hat: torch.Tensor, y: torch.Tensor, batch: Batch) -> torch.Tensor:
    """|f - y| / (|f| + |y|) of every step, in the data's units (0 where both are 0). Shape: [B, H, C] -> [B, H, C]"""
    mean, std, *_ = units(batch)
    forecast, actual = y_hat * std + mean, y * std + mean  # [B, H, C], the data's units
    denominator = forecast.abs() + actual.abs()
    ratio = (forecast - actual).abs() / denominator.clamp_min(torch.finfo(denominator.dtype).tiny)
    return torch.where(denominator > 0, ratio, torch.zeros_like(ratio))


def mase(y_hat: torch.Tensor, y: torch.Tensor, batch: Batch) -> torch.Tensor:
    """MASE: the absolute error in the data's units divided by the series' mean absolute seasonal difference over its
    training rows (the in-sample scale, season data.season_length), so every series counts alike whatever its size."""
    _, std, scale, _ = units(batch)
    return ((y_hat - y).abs() * (std / scale)).mean()


def smape_mase(y_hat: torch.Tensor, y: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The two mixed as the competition's OWA mixes them: half of each, each relative to a simple forecast.

    OWA divides sMAPE and MASE by Naive2's; here MASE is already relative to the in-sample seasonal naive forecast
    (its denominator is that forecast's error), and sMAPE is divided by the in-sample seasonal naive forecast's
    sMAPE averaged over every series' training rows (a constant of the data), so neither term outweighs the other
    by its units (sMAPE in %, MASE near 1). Like every loss here it is a mean of per-window values."""
    reference = units(batch)[3]  # [B, 1, C], the same in every window
    return 0.5 * ((200.0 * smape_terms(y_hat, y, batch) / reference).mean() + mase(y_hat, y, batch))


def scaled(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A loss of the scaled values alone, taking the batch as every training loss does."""

    def on_scaled_values(y_hat: torch.Tensor, y: torch.Tensor, batch: Batch) -> torch.Tensor:
        return loss(y_hat, y)

    on_scaled_values.__doc__ = loss.__doc__
    return on_scaled_values


TRAINING_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, Batch], torch.Tensor]] = {
    "mse": scaled(mse),
    "mae": scaled(mae),
    "huber": scaled(huber),
    "arctan_mae": scaled(arctan_mae),
    "fredf": scaled(fredf),
    "smape": smape,
    "mase": mase,
    "smape_mase": smape_mase,
}
