"""Views of a batch that any network can be trained on: one target channel at a time, or segments of steps.

Both are reshapes around an unchanged network, so the LSTM, attention and Transformer forecasters all get
them from ForecastModule:

- channel folding (channel independence, Nie et al., 2023): a window of C targets becomes C windows of
  one target that share the past covariates and calendar features; one network serves every channel.
  Optionally each folded window also carries its channel's identity, a one-hot code of C values read
  like a calendar feature over the lookback and the horizon (SegRNN's channel embedding), so the shared
  network can still tell the channels apart.
- segment folding (Lin et al., 2023, SegRNN; patches in PatchTST): S consecutive steps become one step of
  S times the channels, so the network runs over L/S and H/S steps instead of L and H. S need not divide
  L or H, so a segment can always be one season: the oldest L mod S lookback steps are left unread (RevIN
  has already read them), and the network forecasts H rounded up to whole segments, of which the first H
  steps are kept.

Channel order is kept: targets first, then past covariates, then calendar features last, which is where
the networks look for each.
"""

from __future__ import annotations

import torch

from tsattn.errors import TsattnError

Batch = dict[str, torch.Tensor]


def network_sizes(
    dims: dict[str, int],
    lookback: int,
    horizon: int,
    channel_independent: bool,
    segment_len: int,
    channel_identity: bool = False,
    n_lags: int = 0,
):
    """The channel counts the network is built for, given the data's and the folds applied to it.

    Args:
        dims: the data's n_features (C + P + K), n_targets (C) and n_known (K).
        n_lags: M, the seasons whose seasonal-naive values join the known channels (Forecaster's
            seasonal_lags): M more calendar channels per target the network sees.

    Returns:
        dims as the network sees them: one target when channel independent (with the channel's one-hot
        identity, C more calendar channels), S times every count with segments.
    """
    if not 1 <= segment_len <= lookback:
        raise TsattnError(
            f"model.segment_len={segment_len} must be between 1 and data.lookback={lookback} (one season, or "
            "auto, is the usual choice)"
        )
    if channel_identity and not channel_independent:
        raise TsattnError(
            "model.channel_identity=true tells the channels of a channel-independent model apart; "
            "set model.channel_independent=true as well, or model.channel_identity=false"
        )
    sizes = dict(dims)
    if channel_independent:
        n_targets = sizes["n_targets"]
        sizes["n_features"] -= n_targets - 1
        sizes["n_targets"] = 1
        if channel_identity:
            sizes["n_features"] += n_targets
            sizes["n_known"] += n_targets
    lag_channels = n_lags * sizes["n_targets"]
    sizes["n_features"] += lag_channels
    sizes["n_known"] += lag_channels
    return {key: value * segment_len for key, value in sizes.items()}


def fold_channels(batch: Batch, n_targets: int, identity: bool = False) -> Batch:
    """Each target channel becomes its own window.

    With `identity`, window b * C + j also carries channel j's one-hot code (C values) at the head of its
    calendar features, at every lookback and horizon step: calendar channels are known ahead, never
    normalised, and read by every decoder step.

    Shape:
        x [B, L, C + P + K] -> [B * C, L, 1 + P + K] (identity: 1 + P + C + K);
        known_future [B, H, K] -> [B * C, H, K] (identity: C + K); y [B, H, C] -> [B * C, H, 1]
    """
    x, calendar = batch["x"], batch["known_future"]
    n_batch, lookback, _ = x.shape
    targets = x[..., :n_targets].transpose(1, 2).reshape(n_batch * n_targets, lookback, 1)  # [B * C, L, 1]
    shared = x[..., n_targets:].repeat_interleave(n_targets, dim=0)  # [B * C, L, P + K]
    calendar = calendar.repeat_interleave(n_targets, dim=0)  # [B * C, H, K]
    if identity:
        # Row b * C + j is e_j, the code of window b's channel j, matching the order of `targets`.
        codes = torch.eye(n_targets, dtype=x.dtype, device=x.device).repeat(n_batch, 1)  # [B * C, C]
        n_covariates = shared.shape[-1] - calendar.shape[-1]
        past_codes = codes.unsqueeze(1).expand(-1, lookback, -1)  # [B * C, L, C]
        shared = torch.cat([shared[..., :n_covariates], past_codes, shared[..., n_covariates:]], dim=-1)
        future_codes = codes.unsqueeze(1).expand(-1, calendar.shape[1], -1)  # [B * C, H, C]
        calendar = torch.cat([future_codes, calendar], dim=-1)  # [B * C, H, C + K]
    folded = {"x": torch.cat([targets, shared], dim=-1), "known_future": calendar}
    if "y" in batch:
        horizon = batch["y"].shape[1]
        folded["y"] = batch["y"].transpose(1, 2).reshape(n_batch * n_targets, horizon, 1)  # [B * C, H, 1]
    return folded


def unfold_channels(output: Batch, n_targets: int) -> Batch:
    """Undo fold_channels on the network's output; attention maps are averaged over the channels.

    Shape:
        y_hat [B * C, H, 1(, Q)] -> [B, H, C(, Q)]; attention [B * C, ..., H, L] -> [B, ..., H, L]
    """
    y_hat = output["y_hat"].unflatten(0, (-1, n_targets)).squeeze(3).movedim(1, 2)  # [B, C, H(, Q)] -> [B, H, C(, Q)]
    unfolded = dict(output, y_hat=y_hat)
    if "attention" in output:
        unfolded["attention"] = output["attention"].unflatten(0, (-1, n_targets)).mean(dim=1)
    return unfolded


def fold_segments(batch: Batch, n_targets: int, segment_len: int) -> Batch:
    """S consecutive steps become one step; each channel group keeps its place (targets, covariates, calendar).

    With L' = S * floor(L / S) and H' = S * ceil(H / S): the lookback loses its oldest L - L' steps, and the
    horizon gains H' - H steps at its end that repeat its last step's calendar (and y, which teacher forcing
    reads only as the step before the next segment, and the last segment has none).

    Shape:
        x [B, L, C + P + K] -> [B, L'/S, S*C + S*P + S*K]; known_future [B, H, K] -> [B, H'/S, S*K];
        y [B, H, C] -> [B, H'/S, S*C]
    """
    x = batch["x"][:, batch["x"].shape[1] % segment_len :]  # [B, L, F] -> [B, L', F]
    calendar = _pad_end(batch["known_future"], segment_len)  # [B, H, K] -> [B, H', K]
    n_known = calendar.shape[-1]
    groups = (x[..., :n_targets], x[..., n_targets : x.shape[-1] - n_known], x[..., x.shape[-1] - n_known :])
    folded = {
        "x": torch.cat([_segments(group, segment_len) for group in groups], dim=-1),
        "known_future": _segments(calendar, segment_len),
    }
    if "y" in batch:
        folded["y"] = _segments(_pad_end(batch["y"], segment_len), segment_len)
    return folded


def unfold_segments(output: Batch, segment_len: int, horizon: int) -> Batch:
    """Undo fold_segments on the network's forecasts, keeping the first H steps. Attention maps stay per
    segment: spread them with spread_segment_attention last, after any channel averaging, so the S x S
    expansion runs once per window instead of once per channel.

    Shape:
        y_hat [B, H'/S, S*C(, Q)] -> [B, H, C(, Q)]; attention [B, ..., H'/S, L'/S] unchanged
    """
    y_hat = output["y_hat"]
    y_hat = y_hat.unflatten(2, (segment_len, -1)).flatten(1, 2)  # [B, H'/S, S, C(, Q)] -> [B, H', C(, Q)]
    return dict(output, y_hat=y_hat[:, :horizon])


def spread_segment_attention(attention: torch.Tensor, segment_len: int, lookback: int, horizon: int) -> torch.Tensor:
    """Each horizon step gets its segment's weights, shared evenly by the S lookback steps of a segment;
    the L - L' oldest steps, which no segment holds, get none.

    Shape:
        [B, ..., H'/S, L'/S] -> [B, ..., H, L], rows still summing to 1
    """
    shared = attention / segment_len  # divided before the S^2-fold expansion
    spread = shared.repeat_interleave(segment_len, dim=-2)[..., :horizon, :].repeat_interleave(segment_len, dim=-1)
    return torch.nn.functional.pad(spread, (lookback - spread.shape[-1], 0))  # unread steps: weight 0


def _pad_end(values: torch.Tensor, segment_len: int) -> torch.Tensor:
    """Repeat the last step until T is a whole number of segments. Shape: [B, T, V] -> [B, T', V]."""
    missing = -values.shape[1] % segment_len
    if not missing:
        return values
    return torch.cat([values, values[:, -1:].expand(-1, missing, -1)], dim=1)


def _segments(values: torch.Tensor, segment_len: int) -> torch.Tensor:
    """Shape: [B, T, V] -> [B, T/S, S*V], step-major within a segment."""
    return values.unflatten(1, (-1, segment_len)).flatten(2)
