"""Forecaster: everything between a scaled window and a forecast, as one plain nn.Module.

Training (tsattn.training.module.ForecastModule) wraps it; every inference path (forecast, backtest, the
pyfunc model, the Python API, Spark) runs it alone, so a forecast never imports Lightning.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tsattn.data.calendar import season_offsets
from tsattn.errors import TsattnError
from tsattn.models.conformal import widen
from tsattn.models.folding import (
    fold_channels,
    fold_segments,
    spread_segment_attention,
    unfold_channels,
    unfold_segments,
)
from tsattn.models.layers import window_statistics

Batch = dict[str, torch.Tensor]
# How each input window is put on a common scale before the network and its forecast mapped back.
NORMALIZATIONS = ("none", "revin", "last_value")


def window_normalisers(values: torch.Tensor, normalization: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The centre and scale of each window and channel under `normalization`: RevIN's mean and std, or the
    last value and 1 (SegRNN, NLinear: the level is removed, the scale kept), or 0 and 1.

    Shape:
        values [B, L, V] -> centre [B, 1, V], scale [B, 1, V]
    """
    if normalization == "revin":
        return window_statistics(values)
    scale = torch.ones_like(values[:, -1:])
    if normalization == "last_value":
        return values[:, -1:].detach(), scale
    return torch.zeros_like(scale), scale


class Forecaster(nn.Module):
    """A network and the views of a batch it runs on.

    Args:
        net: the network, with forward(batch, teacher_forcing_ratio) -> {"y_hat": [B, H, C'(, Q)], ...}.
        normalization: how each input window is put on a common scale before the network, the forecast
            mapped back after it: "revin" (reversible instance normalisation: standardised by the window's own
            mean and std), "last_value" (the window's last value subtracted, SegRNN's and NLinear's) or "none".
        channel_independent: forecast each target channel as its own series with one shared network
            (Nie et al., 2023): a window of C targets becomes C windows of one target, each with the past
            covariates and calendar features. The network is then built with n_targets=1.
        segment_len: S; above 1 the network runs over segments of S steps, each one step with S times the
            channels (SegRNN; patches in PatchTST): L/S encoder and H/S decoder steps. When S does not
            divide them, the oldest L mod S steps are not read and H is forecast in whole segments, cut
            back to H (tsattn.models.folding).
        n_targets: C, the data's target channels; needed with channel_independent, since the network
            then sees one.
        channel_identity: with channel_independent, each channel's window also carries the channel's
            one-hot code as C more calendar features, so the shared network can tell the channels apart.
        n_future: U, the future covariates: the last U known channels of every step. With RevIN they are
            standardised by their own lookback statistics, over the lookback and the horizon alike, so a
            covariate that moves with a target keeps its relation to it once both are normalised; a
            covariate that hardly moves over the lookback (an event flag) is only centred. With last_value
            their last lookback value is subtracted over the lookback and the horizon alike.
        seasonal_lags: seasons m (each at most L) whose seasonal-naive values join the known channels, after
            normalisation (so scaled like the targets): at horizon step h the value at t + h - m (tiled over seasons
            for h > m), at lookback step i the value m steps before it (the oldest step where i < m). Every
            one lies in the lookback (DeepAR's lag features): each decoder step reads what the seasonal
            rules would forecast there. M seasons add M channels per window target.
    """

    def __init__(
        self,
        net: nn.Module,
        normalization: str = "none",
        channel_independent: bool = False,
        segment_len: int = 1,
        n_targets: int | None = None,
        channel_identity: bool = False,
        n_future: int = 0,
        seasonal_lags: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if channel_independent and not n_targets:
            raise ValueError("channel_independent=True needs n_targets, the data's number of target channels")
        if channel_identity and not channel_independent:
            raise ValueError("channel_identity=True needs channel_independent=True")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"model.normalization={normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
        if segment_len < 1:
            raise ValueError(f"segment_len={segment_len}; a segment holds at least one step")
        if n_future < 0:
            raise ValueError(f"n_future={n_future}; it counts future covariates")
        self.seasonal_lags = list(seasonal_lags or ())
        distinct = len(set(self.seasonal_lags)) == len(self.seasonal_lags)
        if not (distinct and all(type(m) is int and m >= 1 for m in self.seasonal_lags)):
            raise ValueError(f"seasonal_lags={self.seasonal_lags}; give distinct seasons of at least one step each")
        self.net = net
        self.normalization = normalization
        self.channel_independent, self.channel_identity = channel_independent, channel_identity
        self.segment_len, self.n_targets, self.n_future = segment_len, n_targets, n_future
        self.quantiles = getattr(net, "quantiles", None)
        # Conformal offsets of the central intervals [H, C, P] (tsattn.models.conformal), set after training
        # by calibration on the validation windows and saved in the bundle's schema; None: as trained.
        self.register_buffer("interval_offsets", None, persistent=False)

    def set_interval_offsets(self, offsets: torch.Tensor | None) -> None:
        """Widen (or narrow) every central interval by these offsets from now on; None undoes it."""
        if offsets is not None and not self.quantiles:
            raise ValueError("interval offsets need a quantile network")
        self.interval_offsets = None if offsets is None else offsets.to(next(self.parameters(), offsets).device)

    @property
    def uses_teacher_forcing(self) -> bool:
        return bool(getattr(self.net, "uses_teacher_forcing", False))

    def forward(self, batch: Batch, teacher_forcing_ratio: float = 0.0, **forward_options) -> Batch:
        """Run the network on the configured view of the batch. y_hat comes back in the data's scale.

        Order: one window per channel (channel_independent), normalisation of each window, segments of steps
        (segment_len), the network, then each step undone in reverse; per-segment attention maps are spread
        over the steps at the very end. `forward_options` go to the network as they are (return_attention=True
        for the Transformer).
        """
        if self.channel_independent:
            folded = fold_channels(batch, self.n_targets, self.channel_identity)
            output = unfold_channels(self._normalised(folded, teacher_forcing_ratio, **forward_options), self.n_targets)
        else:
            output = self._normalised(batch, teacher_forcing_ratio, **forward_options)
        if self.interval_offsets is not None:  # [B, H, C, Q]: the calibrated intervals
            output = dict(output, y_hat=widen(output["y_hat"], self.interval_offsets, self.quantiles))
        if "attention" in output and self.segment_len > 1:
            # Spread to steps last: averaged over channels first, the map is C times smaller.
            lookback, horizon = batch["x"].shape[1], batch["known_future"].shape[1]
            spread = spread_segment_attention(output["attention"], self.segment_len, lookback, horizon)
            output = dict(output, attention=spread)
        return output

    def _normalised(self, batch: Batch, teacher_forcing_ratio: float, **forward_options) -> Batch:
        """Put each window on the normalisation's scale (by its own statistics), run, and map the forecast back."""
        if self.normalization == "none":
            return self._with_linear_path(batch, teacher_forcing_ratio, **forward_options)
        x = batch["x"]
        n_values = x.shape[-1] - batch["known_future"].shape[-1]  # the known channels are not normalised
        n_targets = self.window_targets
        centre, scale = window_normalisers(x[..., :n_values], self.normalization)  # [B, 1, V] each
        normalised = dict(batch, x=torch.cat([(x[..., :n_values] - centre) / scale, x[..., n_values:]], dim=-1))
        if self.n_future:
            known = batch["known_future"]
            normalised.update(_future_covariates_normalised(normalised["x"], known, self.n_future, self.normalization))
        target_centre, target_scale = centre[..., :n_targets], scale[..., :n_targets]  # [B, 1, C]
        if "y" in batch:  # the teacher-forced decoder reads y on the network's own scale
            normalised["y"] = (batch["y"] - target_centre) / target_scale
        output = self._with_linear_path(normalised, teacher_forcing_ratio, **forward_options)
        y_hat = output["y_hat"]
        if self.quantiles:  # [B, H, C, Q]: broadcast the statistics over Q
            target_centre, target_scale = target_centre.unsqueeze(-1), target_scale.unsqueeze(-1)
        return dict(output, y_hat=y_hat * target_scale + target_centre)

    def _with_linear_path(self, batch: Batch, teacher_forcing_ratio: float, **forward_options) -> Batch:
        """The network's forecast (given the seasonal lags as known channels) plus its linear path's map of the
        lookback's targets, when it has one.

        The path reads the whole lookback (segments leave its oldest L mod S steps to it alone) and adds to
        every quantile alike. A recurrent decoder feeds back the network's own part of the forecast, and while
        teacher forcing reads the truth less the path's forecast, the same quantity.

        Shape:
            x [B, L, F] -> y_hat [B, H, C(, Q)]
        """
        path = getattr(self.net, "linear_path", None)
        base = None if path is None else path(batch["x"][..., : self.window_targets])  # [B, L, C] -> [B, H, C]
        if base is not None and "y" in batch:
            # A teacher-forced decoder reads what it forecasts: the part the path leaves, as it feeds back when free.
            batch = dict(batch, y=batch["y"] - base)
        if self.seasonal_lags:
            batch = with_seasonal_lags(batch, self.seasonal_lags, self.window_targets)
        output = self._segmented(batch, teacher_forcing_ratio, **forward_options)
        if base is None:
            return output
        y_hat = output["y_hat"]
        return dict(output, y_hat=y_hat + (base.unsqueeze(-1) if y_hat.ndim == 4 else base))

    def _segmented(self, batch: Batch, teacher_forcing_ratio: float, **forward_options) -> Batch:
        """Run the network on segments of segment_len steps (or on the steps themselves)."""
        if self.segment_len == 1:
            return self.net(batch, teacher_forcing_ratio, **forward_options)
        folded = fold_segments(batch, self.window_targets, self.segment_len)
        output = self.net(folded, teacher_forcing_ratio, **forward_options)
        return unfold_segments(output, self.segment_len, batch["known_future"].shape[1])

    @property
    def window_targets(self) -> int:
        """Target channels per window reaching the normalisation: 1 when channel independent, else the data's C."""
        if self.channel_independent:
            return 1
        return self.n_targets or self.net.n_targets // self.segment_len

    def point(self, y_hat: torch.Tensor) -> torch.Tensor:
        """The point forecast: y_hat itself, or its median quantile. Shape: -> [B, H, C]."""
        return y_hat[..., self.net.head.median_index] if self.quantiles else y_hat


def with_seasonal_lags(batch: Batch, seasons: Sequence[int], n_targets: int) -> Batch:
    """The batch with each season's seasonal-naive values of its C targets appended to the known channels.

    Nothing is read after the lookback's last step: at horizon step h the value m * ceil(h / m) steps back
    from it, at lookback step i the value at max(i - m, 0).

    Shape:
        x [B, L, F], known_future [B, H, K] -> x [B, L, F + M*C], known_future [B, H, K + M*C]
    """
    x, future = batch["x"], batch["known_future"]
    lookback, horizon = x.shape[1], future.shape[1]
    targets = x[..., :n_targets]  # [B, L, C]
    past, ahead = [], []
    for m in seasons:
        if m > lookback:
            raise TsattnError(f"model.seasonal_lags holds {m}, longer than data.lookback={lookback}")
        ahead.append(targets[:, lookback + torch.from_numpy(season_offsets(horizon, m)).to(x.device)])  # [B, H, C]
        past.append(targets[:, (torch.arange(lookback, device=x.device) - m).clamp(min=0)])  # [B, L, C]
    return dict(batch, x=torch.cat([x, *past], dim=-1), known_future=torch.cat([future, *ahead], dim=-1))


# Below this std over the lookback (in units of the training std, which the scaler made 1) a future
# covariate is taken as flat there, an event flag say, and only centred: dividing by ~0 would blow up its
# values in the horizon.
FLAT_COVARIATE_STD = 0.1


def _future_covariates_normalised(x: torch.Tensor, future: torch.Tensor, n_future: int, normalization: str) -> Batch:
    """The last U known channels put on the normalisation's scale by their lookback statistics, in the inputs
    and the horizon alike.

    Shape:
        x [B, L, F], future [B, H, K] -> {"x": [B, L, F], "known_future": [B, H, K]}
    """
    past = x[..., -n_future:]  # [B, L, U]
    centre, scale = window_normalisers(past, normalization)  # [B, 1, U] each
    scale = torch.where(scale < FLAT_COVARIATE_STD, torch.ones_like(scale), scale)
    return {
        "x": torch.cat([x[..., :-n_future], (past - centre) / scale], dim=-1),
        "known_future": torch.cat([future[..., :-n_future], (future[..., -n_future:] - centre) / scale], dim=-1),
    }
