"""Baselines that run through the same pipeline and metrics as the forecasters, so every score has a reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tsattn.data.calendar import season_offsets
from tsattn.errors import TsattnError
from tsattn.models.layers import forecast_output


class LastValue(nn.Module):
    """Repeat the last observed value over the horizon. No parameters.

    Shape:
        batch["x"] [B, L, F], batch["known_future"] [B, H, K] -> {"y_hat": [B, H, C]}
    """

    uses_teacher_forcing = False

    def __init__(self, n_features: int, n_targets: int, n_known: int = 0) -> None:
        super().__init__()
        self.n_targets = n_targets

    def forward(self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        horizon = batch["known_future"].shape[1]
        last = batch["x"][:, -1:, : self.n_targets]  # [B, 1, C]
        return forecast_output(last.expand(-1, horizon, -1))  # [B, 1, C] -> [B, H, C]


class SeasonalNaive(nn.Module):
    """Repeat the last observed season: step h takes the value one season (m steps) before it.

    Args:
        season_length: m in steps; tsattn infers it from the data's frequency when not given
            (24 for hourly data, 7 for daily, 12 for monthly...).

    Shape:
        batch["x"] [B, L, F] -> {"y_hat": [B, H, C]}; needs L >= m.
    """

    uses_teacher_forcing = False

    def __init__(self, n_features: int, n_targets: int, n_known: int = 0, season_length: int = 24) -> None:
        super().__init__()
        if season_length < 1:
            raise TsattnError(f"model.net.season_length={season_length} must be >= 1")
        self.n_targets, self.season_length = n_targets, season_length

    def forward(self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        x, horizon = batch["x"], batch["known_future"].shape[1]
        lookback, m = x.shape[1], self.season_length
        if lookback < m:
            raise TsattnError(f"seasonal_naive needs data.lookback >= the season length {m}; raise data.lookback")
        index = lookback + torch.from_numpy(season_offsets(horizon, m)).to(x.device)  # [H], lookback rows
        return forecast_output(x[:, index, : self.n_targets])  # [B, L, F] -> [B, H, C]


class DLinear(nn.Module):
    """One linear map from the lookback to the horizon per channel, on a trend/remainder split (Zeng et al., 2023).

    The trend is a moving average of the input window (edges padded by repetition); the remainder is what is
    left. Each part gets its own L -> H linear map, and the forecast is their sum.

    Args:
        lookback: L, fixed by the data config.
        horizon: H, fixed by the data config.
        kernel_size: moving-average width for the trend.
        individual: one pair of maps per target channel (True) or one pair shared by all channels.

    Shape:
        batch["x"] [B, L, F] -> {"y_hat": [B, H, C]}
    """

    uses_teacher_forcing = False

    def __init__(
        self,
        n_features: int,
        n_targets: int,
        lookback: int,
        horizon: int,
        n_known: int = 0,
        kernel_size: int = 25,
        individual: bool = True,
    ) -> None:
        super().__init__()
        self.n_targets, self.kernel_size = n_targets, kernel_size
        channels = n_targets if individual else 1
        self.trend = nn.Parameter(torch.full((channels, horizon, lookback), 1.0 / lookback))  # [C, H, L]
        self.remainder = nn.Parameter(torch.full((channels, horizon, lookback), 1.0 / lookback))
        self.bias = nn.Parameter(torch.zeros(channels, horizon))  # [C, H]

    def forward(self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        x = batch["x"][..., : self.n_targets].transpose(1, 2)  # [B, L, C] -> [B, C, L]
        pad = (self.kernel_size - 1) // 2
        padded = F.pad(x, (pad, self.kernel_size - 1 - pad), mode="replicate")  # [B, C, L + k - 1]
        trend = F.avg_pool1d(padded, self.kernel_size, stride=1)  # [B, C, L]
        remainder = x - trend
        channels = x.shape[1]  # shared maps ([1, H, L]) serve every channel
        trend_map, remainder_map = self.trend.expand(channels, -1, -1), self.remainder.expand(channels, -1, -1)
        # [B, C, L] x [C, H, L] -> [B, C, H]
        y = torch.einsum("bcl,chl->bch", trend, trend_map) + torch.einsum("bcl,chl->bch", remainder, remainder_map)
        return forecast_output((y + self.bias).transpose(1, 2))  # [B, C, H] -> [B, H, C]


class RLinear(nn.Module):
    """One linear map from the lookback to the horizon, shared by every channel (Li et al., 2023, RLinear).

    Meant to run on RevIN-normalised windows (conf/model/rlinear.yaml: model.normalization=revin): each window is
    standardised by its own mean and std, mapped L -> H, and mapped back. The strongest linear baseline at
    L=96 in the published tables, and a reference no forecaster should lose to.

    Args:
        lookback: L, fixed by the data config.
        horizon: H, fixed by the data config.
        individual: one map per target channel (True) or one shared by all channels (False, as published).

    Shape:
        batch["x"] [B, L, F] -> {"y_hat": [B, H, C]}
    """

    uses_teacher_forcing = False

    def __init__(
        self,
        n_features: int,
        n_targets: int,
        lookback: int,
        horizon: int,
        n_known: int = 0,
        individual: bool = False,
    ) -> None:
        super().__init__()
        self.n_targets = n_targets
        channels = n_targets if individual else 1
        bound = 1.0 / lookback**0.5  # nn.Linear's initialisation
        self.weight = nn.Parameter(torch.empty(channels, horizon, lookback).uniform_(-bound, bound))  # [C, H, L]
        self.bias = nn.Parameter(torch.empty(channels, horizon).uniform_(-bound, bound))  # [C, H]

    def forward(self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        x = batch["x"][..., : self.n_targets].transpose(1, 2)  # [B, L, C] -> [B, C, L]
        weight = self.weight.expand(x.shape[1], -1, -1)  # a shared map ([1, H, L]) serves every channel
        y = torch.einsum("bcl,chl->bch", x, weight) + self.bias  # [B, C, H]
        return forecast_output(y.transpose(1, 2))  # [B, C, H] -> [B, H, C]
