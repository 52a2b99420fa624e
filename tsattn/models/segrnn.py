"""SegRNN (Lin et al., 2023), rebuilt as a reference: the strongest recurrent result on ETTh1 and ETTh2.

Read from its authors' code (lss-1138/SegRNN, models/SegRNN.py, the "pmf" decoder with channel positions)
and written here in tsattn's own terms. Each channel is its own series: the lookback, less its last value,
is cut into segments that a linear map with a ReLU embeds, and one GRU reads them. Every output segment is
then one more GRU step from the encoder's final state, all in parallel, whose input says which segment and
which channel it is (a learned position joined with a learned channel embedding); a dropout and a linear
map turn each step's state into the segment's values, and the last value is added back.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tsattn.errors import TsattnError
from tsattn.models.layers import forecast_output
from tsattn.models.recurrent_step import step_from_state


class SegRNN(nn.Module):
    """A GRU over segments of each channel, decoding every output segment at once.

    Args:
        n_features: input channels per step (F); only the first n_targets are read.
        n_targets: C, the channels forecast; each has its own learned embedding.
        lookback: L; the last L - L mod W steps are read (SegRNN's own setting has W divide L and H).
        horizon: H; the decoder forecasts whole segments and keeps the first H steps.
        n_known: known channels (K), which SegRNN does not read.
        segment: W, steps per segment (24: a day of hourly data).
        hidden_size: D, the embedding and GRU width.
        dropout: before the output map.
        channel_embedding: join a learned embedding of the channel to each decoder step's position
            (half the width each); without it the position takes the whole width.

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
        segment: int = 24,
        hidden_size: int = 512,
        dropout: float = 0.5,
        channel_embedding: bool = True,
    ) -> None:
        super().__init__()
        if not 1 <= segment <= lookback:
            raise TsattnError(f"segrnn reads segments of {segment} steps: data.lookback={lookback} must hold one")
        self.n_targets, self.segment, self.horizon = n_targets, segment, horizon
        # The lookback's last whole segments, and enough output segments to cover the horizon.
        self.n_in, self.n_out = lookback // segment, math.ceil(horizon / segment)
        self.embed = nn.Sequential(nn.Linear(segment, hidden_size), nn.ReLU())
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        position_size = hidden_size // 2 if channel_embedding else hidden_size
        self.position = nn.Parameter(torch.randn(self.n_out, position_size))  # [M, D/2]
        self.channel = nn.Parameter(torch.randn(n_targets, hidden_size - position_size)) if channel_embedding else None
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, segment))

    def forward(self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        x = batch["x"][..., : self.n_targets]  # [B, L, C]
        n_batch, n_channels = x.shape[0], self.n_targets
        last = x[:, -1:, :]  # [B, 1, C]
        recent = (x - last)[:, x.shape[1] - self.n_in * self.segment :]  # [B, NW, C]: the last whole segments
        segments = recent.transpose(1, 2).reshape(n_batch * n_channels, self.n_in, self.segment)  # [BC, N, W]
        _, state = self.gru(self.embed(segments))  # [1, BC, D]
        queries = self.position.unsqueeze(0).expand(n_channels, -1, -1)  # [C, M, D/2]
        if self.channel is not None:
            channel = self.channel.unsqueeze(1).expand(-1, self.n_out, -1)  # [C, M, D/2]
            queries = torch.cat([queries, channel], dim=-1)  # [C, M, D]
        # Each output segment is one GRU step from its series' final state, whose input is the same for every
        # window: the queries' and the state's projections are each computed once (tsattn.models.recurrent_step).
        decoded = step_from_state(self.gru, queries, state.view(1, n_batch, n_channels, -1))  # [B, C, M, D]
        y = self.head(decoded).reshape(n_batch, n_channels, self.n_out * self.segment)  # [B, C, H]
        return forecast_output(y.transpose(1, 2)[:, : self.horizon] + last)  # [B, MW, C] -> [B, H, C]
