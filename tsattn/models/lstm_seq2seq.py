"""LSTM encoder-decoder: the encoder's final (h, c) is the whole context the decoder gets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tsattn.models.layers import ForecastHead, forecast_output, mix_truth, previous_values


class LSTMSeq2Seq(nn.Module):
    """Encoder LSTM over the lookback; decoder LSTM unrolled over the horizon; linear head.

    The encoder reads every input channel (targets, past covariates, calendar). The decoder starts from the
    encoder's final state and at each step h reads the previous target value (the truth while teacher
    forcing, its own point forecast otherwise) with step h's calendar features, which are known in advance.

    Args:
        n_features: input channels per lookback step, F (targets first, then covariates and calendar).
        n_targets: forecast channels, C; they are the first C input channels.
        n_calendar: calendar channels per horizon step, K.
        hidden_size: LSTM width D.
        num_layers: stacked LSTM layers in encoder and decoder.
        dropout: dropout between stacked layers and before the head.
        quantiles: quantile levels to forecast, or None for point forecasts.

    Shape:
        batch["x"] [B, L, F], batch["future_calendar"] [B, H, K], batch["y"] [B, H, C] (teacher forcing only)
        -> {"y_hat": [B, H, C] or [B, H, C, Q]}
    """

    uses_teacher_forcing = True

    def __init__(
        self,
        n_features: int,
        n_targets: int,
        n_calendar: int = 0,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        quantiles: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.n_targets = n_targets
        between_layers = dropout if num_layers > 1 else 0.0  # nn.LSTM warns when dropout has no layer to act on
        self.encoder = nn.LSTM(n_features, hidden_size, num_layers, batch_first=True, dropout=between_layers)
        self.decoder = nn.LSTM(
            n_targets + n_calendar, hidden_size, num_layers, batch_first=True, dropout=between_layers
        )
        self.dropout = nn.Dropout(dropout)
        self.head = ForecastHead(hidden_size, n_targets, quantiles)
        self.quantiles = self.head.quantiles

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the encoder. Shape: x [B, L, F] -> outputs [B, L, D], (h, c) each [num_layers, B, D]."""
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
        state: tuple[torch.Tensor, torch.Tensor],
        last_value: torch.Tensor,
        future_calendar: torch.Tensor,
        y: torch.Tensor | None = None,
        teacher_forcing_ratio: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """Unroll the decoder over the horizon.

        Args:
            encoded: the encoder outputs. [B, L, D]
            state: the encoder's final (h, c).
            last_value: the last observed target values. [B, C]
            future_calendar: calendar features of the horizon steps. [B, H, K]
            y: the true targets, read only when teacher_forcing_ratio > 0. [B, H, C]
            teacher_forcing_ratio: probability that a step is fed the truth instead of the forecast.

        Returns:
            {"y_hat": [B, H, C] or [B, H, C, Q], "attention": [B, H, L] when the model attends}
        """
        keys = self.attention_keys(encoded)  # once per batch, not once per decoder step
        if y is not None and teacher_forcing_ratio >= 1.0:
            # Full teacher forcing: every decoder input is known, so one fused LSTM call covers all steps.
            inputs = torch.cat([previous_values(last_value, y), future_calendar], dim=-1)  # [B, H, C + K]
            decoded, _ = self.decoder(inputs, state)  # [B, H, D]
            hidden, attention = self.readout(decoded, encoded, keys)
            return forecast_output(self.head(hidden)[0], attention)

        previous = last_value.unsqueeze(1)  # [B, 1, C]
        forecasts, weights = [], []
        for h in range(future_calendar.shape[1]):
            step_input = torch.cat([previous, future_calendar[:, h : h + 1]], dim=-1)  # [B, 1, C + K]
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

    def forward(self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        x = batch["x"]
        encoded, state = self.encode(x)
        last_value = x[:, -1, : self.n_targets]  # [B, L, F] -> [B, C]
        y = batch.get("y") if teacher_forcing_ratio > 0.0 else None  # the free-running path never reads y
        return self.decode(encoded, state, last_value, batch["future_calendar"], y, teacher_forcing_ratio)
