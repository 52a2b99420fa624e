"""LSTM encoder-decoder: the encoder's final (h, c) is the whole context the decoder gets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tsattn.errors import TsattnError
from tsattn.models.layers import ForecastHead, PositionalEncoding, forecast_output, mix_truth, previous_values
from tsattn.models.layers import linear_path as make_linear_path
from tsattn.models.recurrent_step import State, step_from_state

DECODINGS = ("recurrent", "parallel")
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
POSITION_SIZE = 16  # width of the sinusoidal horizon-position code a parallel decoder reads


class LSTMSeq2Seq(nn.Module):
    """Encoder LSTM over the lookback; decoder LSTM unrolled over the horizon; linear head.

    The encoder reads every input channel (targets, past covariates, calendar). The decoder starts from the
    encoder's final state and at each step h reads the previous target value (the truth while teacher
    forcing, its own point forecast otherwise) with step h's calendar features, which are known in advance.
    With decoding="parallel" each step h instead starts from the encoder's final state and reads h's
    position code and calendar features: nothing is fed back.

    Args:
        n_features: input channels per lookback step, F (targets first, then covariates and calendar).
        n_targets: forecast channels, C; they are the first C input channels.
        n_known: known channels per horizon step, K: calendar features, the static code and future covariates.
        hidden_size: LSTM width D.
        num_layers: stacked LSTM layers in encoder and decoder.
        dropout: dropout between stacked layers and before the head.
        quantiles: quantile levels to forecast, or None for point forecasts.
        decoding: "recurrent" (each step reads the previous forecast and carries the state on) or
            "parallel" (each horizon step starts from the encoder's final state and reads only its position
            and calendar features: no forecast is fed back, so errors cannot accumulate over the horizon and
            all steps run at once; SegRNN's parallel multi-step forecasting, Lin et al., 2023).
        cell: "lstm" or "gru" (SegRNN's cell: one state instead of two, a quarter fewer weights).
        linear_path: a linear map of the lookback beside the network (tsattn.models.layers.LinearPath), added
            to its forecast by the Forecaster: the forecaster can then fall back to RLinear or a seasonal
            naive rule and learns only what they miss. Needs lookback and horizon.
        lookback, horizon: L and H of the data's windows (for the linear path).
        linear_path_season: the season whose seasonal-naive forecast the linear path starts as (1: the
            last value; training sets it to the strongest simple forecast chosen on validation).

    Shape:
        batch["x"] [B, L, F], batch["known_future"] [B, H, K], batch["y"] [B, H, C] (teacher forcing only)
        -> {"y_hat": [B, H, C] or [B, H, C, Q]}
    """

    uses_teacher_forcing = True

    def __init__(
        self,
        n_features: int,
        n_targets: int,
        n_known: int = 0,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        quantiles: Sequence[float] | None = None,
        decoding: str = "recurrent",
        cell: str = "lstm",
        linear_path: bool = False,
        lookback: int | None = None,
        horizon: int | None = None,
        linear_path_season: int = 1,
    ) -> None:
        super().__init__()
        if decoding not in DECODINGS:
            raise TsattnError(f"model.net.decoding={decoding!r} is not one of {', '.join(DECODINGS)}")
        if cell not in CELLS:
            raise TsattnError(f"model.net.cell={cell!r} is not one of {', '.join(CELLS)}")
        recurrent = CELLS[cell]
        self.n_targets = n_targets
        self.decoding = decoding
        self.uses_teacher_forcing = decoding == "recurrent"  # a parallel decoder feeds nothing back
        between_layers = dropout if num_layers > 1 else 0.0  # nn.LSTM warns when dropout has no layer to act on
        self.encoder = recurrent(n_features, hidden_size, num_layers, batch_first=True, dropout=between_layers)
        # The recurrent decoder reads the previous values, the parallel one the position of its step.
        fed_back = n_targets if decoding == "recurrent" else POSITION_SIZE
        self.positions = (
            PositionalEncoding(
                POSITION_SIZE,
                max_len=4096,
                overflow=(
                    "the parallel decoder reads {end} horizon steps (in segments with model.segment_len) but its "
                    "position code holds {max_len}; use a longer model.segment_len or model.net.decoding=recurrent"
                ),
            )
            if decoding == "parallel"
            else None
        )
        self.decoder = recurrent(
            fed_back + n_known, hidden_size, num_layers, batch_first=True, dropout=between_layers
        )
        self.dropout = nn.Dropout(dropout)
        self.head = ForecastHead(hidden_size, n_targets, quantiles)
        self.quantiles = self.head.quantiles
        self.linear_path = make_linear_path(linear_path, lookback, horizon, linear_path_season)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, State]:
        """Run the encoder. Shape: x [B, L, F] -> outputs [B, L, D], (h, c) (a GRU: h) each [num_layers, B, D]."""
        return self.encoder(x)

    def attention_keys(self, encoded: torch.Tensor) -> torch.Tensor | None:
        """What decoder steps are scored against, prepared once per batch; None here (no attention)."""
        return None

    def readout(
        self, decoded: torch.Tensor, encoded: torch.Tensor, keys: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the head reads from the decoder outputs; here the outputs themselves (no attention).

        Shape:
            decoded [B, T, D], encoded [B, L, D], keys from attention_keys -> hidden [B, T, D], attention None
        """
        return self.dropout(decoded), None

    def decode(
        self,
        encoded: torch.Tensor,
        state: State,
        last_value: torch.Tensor,
        known_future: torch.Tensor,
        y: torch.Tensor | None = None,
        teacher_forcing_ratio: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """Unroll the decoder over the horizon.

        Args:
            encoded: the encoder outputs. [B, L, D]
            state: the encoder's final (h, c), or h for a GRU.
            last_value: the last observed target values. [B, C]
            known_future: the known channels of the horizon steps (calendar, static code, future covariates). [B, H, K]
            y: the true targets, read only when teacher_forcing_ratio > 0. [B, H, C]
            teacher_forcing_ratio: probability that a step is fed the truth instead of the forecast.

        Returns:
            {"y_hat": [B, H, C] or [B, H, C, Q], "attention": [B, H, L] when the model attends}
        """
        keys = self.attention_keys(encoded)  # once per batch, not once per decoder step
        if self.decoding == "parallel":
            return self._decode_parallel(encoded, state, known_future, keys)
        if y is not None and teacher_forcing_ratio >= 1.0:
            # Full teacher forcing: every decoder input is known, so one fused LSTM call covers all steps.
            inputs = torch.cat([previous_values(last_value, y), known_future], dim=-1)  # [B, H, C + K]
            decoded, _ = self.decoder(inputs, state)  # [B, H, D]
            hidden, attention = self.readout(decoded, encoded, keys)
            return forecast_output(self.head(hidden)[0], attention)

        previous = last_value.unsqueeze(1)  # [B, 1, C]
        forecasts, weights = [], []
        for h in range(known_future.shape[1]):
            step_input = torch.cat([previous, known_future[:, h : h + 1]], dim=-1)  # [B, 1, C + K]
            decoded, state = self.decoder(step_input, state)  # [B, 1, D]
            hidden, attention = self.readout(decoded, encoded, keys)
            forecast, point = self.head(hidden)  # [B, 1, C(, Q)], [B, 1, C]
            forecasts.append(forecast)
            weights.append(attention)
            previous = point  # feed back the point forecast (the median for quantiles), never raw outputs
            if y is not None and teacher_forcing_ratio > 0.0:
                previous = mix_truth(point, y[:, h : h + 1], teacher_forcing_ratio)
        attention = torch.cat(weights, dim=1) if weights[0] is not None else None  # H x [B, 1, L] -> [B, H, L]
        return forecast_output(torch.cat(forecasts, dim=1), attention)  # H x [B, 1, ...] -> [B, H, ...]

    def _decode_parallel(
        self,
        encoded: torch.Tensor,
        state: State,
        known_future: torch.Tensor,
        keys: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        """Every horizon step at once: one decoder step from the encoder's final state per horizon step.

        Shape:
            encoded [B, L, D], state each [num_layers, B, D], known_future [B, H, K]
            -> {"y_hat": [B, H, C] or [B, H, C, Q], "attention": [B, H, L] when the model attends}
        """
        n_batch, horizon = known_future.shape[:2]
        position = self.positions(known_future.new_zeros(1, horizon, POSITION_SIZE))  # [1, H, E]
        inputs = torch.cat([position.expand(n_batch, -1, -1), known_future], dim=-1)  # [B, H, E + K]
        # Each horizon step is one decoder step from the encoder's final state; the state's own projection
        # is computed once per window, not once per step (tsattn.models.recurrent_step).
        decoded = step_from_state(self.decoder, inputs, state)  # [B, H, D]
        hidden, attention = self.readout(decoded, encoded, keys)
        return forecast_output(self.head(hidden)[0], attention)

    def forward(self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        x = batch["x"]
        encoded, state = self.encode(x)
        last_value = x[:, -1, : self.n_targets]  # [B, L, F] -> [B, C]
        y = batch.get("y") if teacher_forcing_ratio > 0.0 else None  # the free-running path never reads y
        return self.decode(encoded, state, last_value, batch["known_future"], y, teacher_forcing_ratio)
