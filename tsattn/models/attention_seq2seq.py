"""Attention seq2seq: the LSTM encoder-decoder whose every decoder step attends over all encoder steps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tsattn.models.layers import AttentionScore
from tsattn.models.lstm_seq2seq import LSTMSeq2Seq


class AttentionSeq2Seq(LSTMSeq2Seq):
    """LSTM encoder keeps all L outputs; each decoder step scores its state against them (Luong et al., 2015).

    The weights mix the encoder outputs into a context vector; [state; context] -> tanh(W .) is the
    attentional hidden state the head reads. With `score="additive"` the scores are Bahdanau's.

    Args:
        score: "dot", "general" or "additive".
        (the rest as LSTMSeq2Seq)

    Shape:
        -> {"y_hat": [B, H, C] or [B, H, C, Q], "attention": [B, H, L]}
    """

    # Spelled out rather than *args/**kwargs: a bundle may pass exactly the options this signature names.
    def __init__(
        self,
        n_features: int,
        n_targets: int,
        n_known: int = 0,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        quantiles: Sequence[float] | None = None,
        score: str = "general",
        decoding: str = "recurrent",
        cell: str = "lstm",
        linear_path: bool = False,
        lookback: int | None = None,
        horizon: int | None = None,
        linear_path_season: int = 1,
    ) -> None:
        super().__init__(
            n_features,
            n_targets,
            n_known,
            hidden_size,
            num_layers,
            dropout,
            quantiles,
            decoding,
            cell,
            linear_path,
            lookback,
            horizon,
            linear_path_season,
        )
        hidden_size = self.encoder.hidden_size
        self.score = AttentionScore(score, hidden_size)
        self.combine = nn.Linear(2 * hidden_size, hidden_size)

    def attention_keys(self, encoded: torch.Tensor) -> torch.Tensor:
        """The projected encoder outputs every decoder step is scored against. Shape: [B, L, D] -> [B, L, D]."""
        return self.score.project_keys(encoded)

    def readout(
        self, decoded: torch.Tensor, encoded: torch.Tensor, keys: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape: decoded [B, T, D], encoded [B, L, D], keys [B, L, D] -> hidden [B, T, D], attention [B, T, L]."""
        weights = self.score(decoded, encoded, keys)  # [B, T, L]
        context = weights @ encoded  # [B, T, L] @ [B, L, D] -> [B, T, D]
        hidden = torch.tanh(self.combine(torch.cat([decoded, context], dim=-1)))  # [B, T, 2D] -> [B, T, D]
        return self.dropout(hidden), weights
