"""Start a forecaster's linear path at the best linear forecast: a ridge regression fit in closed form.

The linear path (tsattn.models.layers.LinearPath) maps the lookback to the horizon beside the network. Fit by
least squares on the training windows, as the Forecaster normalises them (RevIN: each window and channel by
its own lookback mean and std; last_value: less its last value; channels pooled, since the map is shared), it
is RLinear's map at its optimum; the ridge penalty is the one whose map scores best on the validation
windows. The network's head then starts at zero, so training starts from that linear forecast and the
network learns only what it misses.
"""

from __future__ import annotations

import logging

import torch

from tsattn.data.windows import WindowDataset
from tsattn.models.forecaster import Forecaster, window_normalisers

log = logging.getLogger(__name__)

# Rows (windows x channels) the fit reads at most per split: a [rows, L] float64 matrix stays under ~100 MB.
MAX_ROWS = 60_000
# Ridge penalties tried, relative to the rows' total weight (the Gram matrix of standardised inputs grows with it).
PENALTIES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def linear_pairs(forecaster: Forecaster, dataset: WindowDataset, max_rows: int = MAX_ROWS, seed: int = 0):
    """Lookbacks and horizons of the targets as the linear path reads and must produce them, channels pooled,
    with the scale each row's errors take once the Forecaster maps them back (RevIN's std, else 1).

    Shape:
        -> inputs [N * C, L], outputs [N * C, H], scale [N * C, 1], float64
    """
    n_windows = len(dataset)
    n_targets = dataset.n_targets
    keep = max(1, min(n_windows, max_rows // n_targets))
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(n_windows, generator=generator)[:keep] if keep < n_windows else torch.arange(n_windows)
    start = dataset.starts[index]  # the targets alone: no covariate or calendar channel is gathered
    lookback, horizon = dataset.lookback_targets(start).double(), dataset.actuals(start).double()  # [N, L|H, C]
    centre, std = window_normalisers(lookback, forecaster.normalization)  # [N, 1, C]: the Forecaster's own
    lookback, horizon = (lookback - centre) / std, (horizon - centre) / std
    rows = lookback.transpose(1, 2).flatten(0, 1), horizon.transpose(1, 2).flatten(0, 1)  # [N * C, L], [N * C, H]
    return (*rows, std.transpose(1, 2).flatten(0, 1))


def ridge(
    inputs: torch.Tensor, outputs: torch.Tensor, scale: torch.Tensor, penalty: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares of the errors in the data's scale (each row weighted by its scale), with an unpenalised
    bias: what training the path alone with the MSE loss converges to (RLinear's optimum).

    Shape:
        inputs [N, L], outputs [N, H], scale [N, 1] -> weight [H, L], bias [H]
    """
    return ridge_path(inputs, outputs, scale, (penalty,))[penalty]


def ridge_path(
    inputs: torch.Tensor, outputs: torch.Tensor, scale: torch.Tensor, penalties: tuple[float, ...]
) -> dict[float, tuple[torch.Tensor, torch.Tensor]]:
    """`ridge` at each penalty, from one pass over the rows: the normal equations are formed once.

    Shape:
        inputs [N, L], outputs [N, H], scale [N, 1] -> {penalty: (weight [H, L], bias [H])}
    """
    n_rows, n_inputs = inputs.shape
    with_bias = torch.cat([inputs, inputs.new_ones(n_rows, 1)], dim=1) * scale  # [N, L + 1]
    gram, cross = with_bias.T @ with_bias, with_bias.T @ (outputs * scale)  # [L + 1, L + 1], [L + 1, H]
    total_weight = float((scale**2).sum())
    maps = {}
    for penalty in penalties:
        shrink = torch.full((n_inputs + 1,), penalty * total_weight, dtype=inputs.dtype)
        shrink[-1] = 0.0
        solution = torch.linalg.solve(gram + torch.diag(shrink), cross)  # [L + 1, H]
        maps[penalty] = solution[:-1].T, solution[-1]
    return maps


@torch.no_grad()
def fit_linear_path(forecaster: Forecaster, train: WindowDataset, val: WindowDataset, seed: int = 0) -> dict[str, float]:
    """Set the linear path to the ridge map that scores best on `val`, and the network's head to zero.

    Returns:
        The chosen penalty and the map's validation MSE (in the scaled data's units, as val/mse), for the log.
    """
    path = forecaster.net.linear_path
    train_rows = linear_pairs(forecaster, train, seed=seed)
    val_in, val_out, val_scale = linear_pairs(forecaster, val, seed=seed)
    maps = ridge_path(*train_rows, PENALTIES)
    scores = {
        penalty: float((((val_in @ weight.T + bias - val_out) * val_scale) ** 2).mean())
        for penalty, (weight, bias) in maps.items()
    }
    best = min(scores, key=scores.get)
    weight, bias = maps[best]
    path.weight.copy_(weight.to(path.weight.dtype))
    path.bias.copy_(bias.to(path.bias.dtype).unsqueeze(1))
    head = forecaster.net.head.linear
    head.weight.zero_()
    head.bias.zero_()
    return {"penalty": best, "val_mse": scores[best]}
