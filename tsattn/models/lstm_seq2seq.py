"""LSTM encoder-decoder: the encoder's final (h, c) is the whole context the decoder gets."""

from __future__ import annotations

import torch
from torch import nn


class LSTMSeq2Seq(nn.Module):
    """Encoder LSTM over the lookback; decoder LSTM unrolled over the horizon; linear head.

    The encoder reads every input channel (targets, past covariates, calendar). The decoder starts from the
    encoder's final state and at each step h reads the previous target value (the truth while teacher
    forcing, its own forecast otherwise) with step h's calendar features, which are known in advance.

    Args:
        n_features: input channels per lookback step, F (targets first, then covariates and calendar).
        n_targets: forecast channels, C; they are the first C input channels.
        n_calendar: calendar channels per horizon step, K.
        hidden_size: LSTM width.
        num_layers: stacked LSTM layers in encoder and decoder.
        dropout: dropout between stacked layers and before the head.

    Shape:
        batch["x"] [B, L, F], batch["future_calendar"] [B, H, K], batch["y"] [B, H, C] (teacher forcing only)
        -> {"y_hat": [B, H, C]}
    """

    def __init__(
        self,
        n_features: int,
        n_targets: int,
        n_calendar: int = 0,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_targets = n_targets
        between_layers = dropout if num_layers > 1 else 0.0  # nn.LSTM warns when dropout has no layer to act on
        self.encoder = nn.LSTM(n_features, hidden_size, num_layers, batch_first=True, dropout=between_layers)
        self.decoder = nn.LSTM(n_targets + n_calendar, hidden_size, num_layers, batch_first=True, dropout=between_layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, n_targets)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the encoder. Shape: x [B, L, F] -> outputs [B, L, D], (h, c) each [num_layers, B, D]."""
        return self.encoder(x)

    def decode(
        self,
        state: tuple[torch.Tensor, torch.Tensor],
        last_value: torch.Tensor,
        future_calendar: torch.Tensor,
        y: torch.Tensor | None = None,
        teacher_forcing_ratio: float = 0.0,
    ) -> torch.Tensor:
        """Unroll the decoder over the horizon.

        Args:
            state: the encoder's final (h, c).
            last_value: the last observed target values. [B, C]
            future_calendar: calendar features of the horizon steps. [B, H, K]
            y: the true targets, read only when teacher_forcing_ratio > 0. [B, H, C]
            teacher_forcing_ratio: probability that a step is fed the truth instead of the forecast.

        Returns:
            y_hat [B, H, C]
        """
        if y is not None and teacher_forcing_ratio >= 1.0:
            # Full teacher forcing: all decoder inputs are known, so one fused LSTM call covers every step.
            previous = torch.cat([last_value.unsqueeze(1), y[:, :-1]], dim=1)  # [B, H, C]
            outputs, _ = self.decoder(torch.cat([previous, future_calendar], dim=-1), state)  # [B, H, D]
            return self.head(self.dropout(outputs))  # [B, H, D] -> [B, H, C]

        horizon = future_calendar.shape[1]
        previous = last_value.unsqueeze(1)  # [B, 1, C]
        steps = []
        for h in range(horizon):
            step_input = torch.cat([previous, future_calendar[:, h : h + 1]], dim=-1)  # [B, 1, C + K]
            output, state = self.decoder(step_input, state)  # [B, 1, D]
            y_hat = self.head(self.dropout(output))  # [B, 1, C]
            steps.append(y_hat)
            previous = y_hat
            if y is not None and teacher_forcing_ratio > 0.0:
                # Per window: feed the truth with probability teacher_forcing_ratio (scheduled sampling).
                use_truth = torch.rand(y.shape[0], 1, 1, device=y.device) < teacher_forcing_ratio
                previous = torch.where(use_truth, y[:, h : h + 1], y_hat)
        return torch.cat(steps, dim=1)  # H x [B, 1, C] -> [B, H, C]

    def forward(self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        x = batch["x"]
        _, state = self.encode(x)
        last_value = x[:, -1, : self.n_targets]  # [B, L, F] -> [B, C]
        y = batch.get("y") if teacher_forcing_ratio > 0.0 else None  # the free-running path never reads y
        return {"y_hat": self.decode(state, last_value, batch["future_calendar"], y, teacher_forcing_ratio)}
