"""Building blocks shared by the forecasters: positional encoding, attention scores, output heads, RevIN."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tsattn.data.calendar import season_offsets
from tsattn.errors import TsattnError
from tsattn.intervals import interval_pairs, point_level


class PositionalEncoding(nn.Module):
    """Sinusoidal encoding of the timestep, added to the token embeddings (Vaswani et al., 2017).

    Stored batch-first as [1, max_len, D] and sliced on dim 1, so it lines up with [B, T, D] inputs.

    Args:
        d_model: embedding width D.
        max_len: the longest sequence it can encode.
        overflow: the one-line error for a longer sequence, naming its reader and the fix ({end}, {max_len}).
    """

    def __init__(self, d_model: int, max_len: int, overflow: str) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # [T, 1]
        frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(1, max_len, d_model)
        pe[0, :, 0::2] = torch.sin(position * frequency)
        pe[0, :, 1::2] = torch.cos(position * frequency[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)
        self.max_len = max_len
        self.overflow = overflow

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Shape: x [B, T, D] -> [B, T, D]; positions start..start+T-1."""
        end = start + x.shape[1]
        if end > self.max_len:
            # Sliced past its end the table would come back short, and the addition fail deep inside torch.
            raise TsattnError(self.overflow.format(end=end, max_len=self.max_len))
        return x + self.pe[:, start:end]


class AttentionScore(nn.Module):
    """Scores of decoder states against encoder states, softmaxed over the encoder steps.

    - `dot` (Luong): s . h
    - `general` (Luong): s . W h
    - `additive` (Bahdanau): v . tanh(W_s s + W_h h)

    Args:
        kind: "dot", "general" or "additive".
        hidden_size: width of both the decoder and the encoder states.

    Shape:
        queries [B, H, D], keys [B, L, D] -> weights [B, H, L], non-negative, summing to 1 over L.
    """

    KINDS = ("dot", "general", "additive")

    def __init__(self, kind: str, hidden_size: int) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"model.net.score={kind!r}; choose one of {', '.join(self.KINDS)}")
        self.kind = kind
        if kind == "general":
            self.key_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        elif kind == "additive":
            self.query_proj = nn.Linear(hidden_size, hidden_size, bias=False)
            self.key_proj = nn.Linear(hidden_size, hidden_size)
            self.v = nn.Linear(hidden_size, 1, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """The encoder-side half of the score, computed once per batch rather than once per decoder step.

        Shape:
            keys [B, L, D] -> [B, L, D]
        """
        return keys if self.kind == "dot" else self.key_proj(keys)

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, projected_keys: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Weights of each query over the keys; pass `project_keys(keys)` when scoring many query steps."""
        projected = self.project_keys(keys) if projected_keys is None else projected_keys  # [B, L, D]
        if self.kind == "additive":
            mixed = self.query_proj(queries).unsqueeze(2) + projected.unsqueeze(1)  # [B, H, L, D]
            scores = self.v(torch.tanh(mixed)).squeeze(-1)  # [B, H, L, D] -> [B, H, L]
        else:
            scores = queries @ projected.transpose(1, 2)  # [B, H, D] @ [B, D, L] -> [B, H, L]
        return torch.softmax(scores, dim=-1)


def _check_interval_names(quantiles: Sequence[float]) -> None:
    """Test metrics name each central interval by its whole percent (test/coverage_80): two intervals may not
    share a name, and a pair such as 0.0125 and 0.9875 (a 97.5% interval) has none."""
    pairs = interval_pairs(quantiles)
    for lower, _, _ in pairs:
        q = quantiles[lower]
        exact = 100 * (1.0 - 2.0 * q)
        if abs(exact - round(exact)) > 1e-6:
            raise ValueError(
                f"model.net.quantiles: levels {q:g} and {1 - q:g} make a {exact:g}% interval; intervals are "
                "scored by whole percents, so choose levels in steps of 0.005 (0.025 and 0.975: 95%)"
            )
    percents = [percent for _, _, percent in pairs]
    if len(set(percents)) != len(percents):
        raise ValueError(f"model.net.quantiles={list(quantiles)}: a level is given twice")


class ForecastHead(nn.Module):
    """Linear map from a hidden state to each target's point or quantile forecasts.

    With quantiles, the outputs are sorted along the quantile axis, so they never cross; the point
    forecast is the median (the quantile closest to 0.5).

    Args:
        in_features: hidden width.
        n_targets: C.
        quantiles: levels in (0, 1), or None for point forecasts.

    Shape:
        [..., in_features] -> forecast [..., C] (points) or [..., C, Q] (quantiles); point [..., C]
    """

    def __init__(self, in_features: int, n_targets: int, quantiles: Sequence[float] | None = None) -> None:
        super().__init__()
        self.quantiles = sorted(float(q) for q in quantiles) if quantiles else None
        if self.quantiles and not all(0.0 < q < 1.0 for q in self.quantiles):
            raise ValueError(f"model.net.quantiles={list(quantiles)}: every level must lie in (0, 1)")
        if self.quantiles:
            _check_interval_names(self.quantiles)
        self.n_targets = n_targets
        self.n_quantiles = len(self.quantiles) if self.quantiles else 1
        self.median_index = point_level(self.quantiles or [])
        self.linear = nn.Linear(in_features, n_targets * self.n_quantiles)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.linear(hidden)
        if self.quantiles is None:
            return out, out
        out = out.unflatten(-1, (self.n_targets, self.n_quantiles))  # [..., C * Q] -> [..., C, Q]
        out = torch.sort(out, dim=-1).values  # monotone in q: no crossing
        return out, out[..., self.median_index]


class LinearPath(nn.Module):
    """A linear map from the lookback to the horizon beside the network (LSTNet's autoregressive component,
    RLinear's map): one [H, L] map shared by every channel, applied to the (RevIN-normalised) lookback.

    It starts as the seasonal-naive forecast of `init_season` steps (1: the last value), each horizon step
    copying the value a whole number of seasons before it, so a forecaster with it starts from that simple
    rule and its network learns only what the rule misses; the map itself trains too.

    Args:
        lookback: L.
        horizon: H.
        init_season: the season the map starts from, at most L.

    Shape:
        [B, L, C] -> [B, H, C]
    """

    def __init__(self, lookback: int, horizon: int, init_season: int = 1) -> None:
        super().__init__()
        if not 1 <= init_season <= lookback:
            raise ValueError(f"model.net.linear_path_season={init_season} must lie in [1, data.lookback={lookback}]")
        weight = torch.zeros(horizon, lookback)
        source = lookback + torch.from_numpy(season_offsets(horizon, init_season))  # [H], lookback rows
        weight[torch.arange(horizon), source] = 1.0
        self.weight = nn.Parameter(weight)  # [H, L]
        self.bias = nn.Parameter(torch.zeros(horizon, 1))  # [H, 1]

    def forward(self, lookback: torch.Tensor) -> torch.Tensor:
        return torch.einsum("hl,blc->bhc", self.weight, lookback) + self.bias  # [B, L, C] -> [B, H, C]


def linear_path(enabled: bool, lookback: int | None, horizon: int | None, init_season: int) -> LinearPath | None:
    """The network's linear path when `enabled` (model.net.linear_path), which needs the window's L and H."""
    if not enabled:
        return None
    if not lookback or not horizon:
        raise ValueError("model.net.linear_path=true needs lookback and horizon (${data.lookback}, ${data.horizon})")
    return LinearPath(lookback, horizon, init_season)


def window_statistics(values: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """RevIN statistics: mean and std of each input window and channel.

    Shape:
        values [B, L, V] -> mean [B, 1, V], std [B, 1, V]
    """
    mean = values.mean(dim=1, keepdim=True)
    std = torch.sqrt(values.var(dim=1, keepdim=True, unbiased=False) + eps)
    return mean.detach(), std.detach()


def previous_values(last_value: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """What a teacher-forced decoder reads at each horizon step: the value one step earlier.

    Shape:
        last_value [B, C] (the last observed step), y [B, H, C] -> [B, H, C]: last_value, y_0 .. y_{H-2}
    """
    return torch.cat([last_value.unsqueeze(1), y[:, :-1]], dim=1)


def mix_truth(prediction: torch.Tensor, truth: torch.Tensor, ratio: float) -> torch.Tensor:
    """Scheduled sampling: each window takes the truth with probability `ratio`, else the prediction.

    Shape:
        prediction, truth [B, T, C] -> [B, T, C]
    """
    use_truth = torch.rand(truth.shape[0], truth.shape[1], 1, device=truth.device) < ratio  # [B, T, 1]
    return torch.where(use_truth, truth, prediction)


def forecast_output(forecast: torch.Tensor, attention: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The forecasters' common return value: {"y_hat": ...} plus "attention" when there is one."""
    return {"y_hat": forecast} if attention is None else {"y_hat": forecast, "attention": attention}
