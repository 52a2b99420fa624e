"""Transformer encoder-decoder for forecasting, with an autoregressive or a generative (one-pass) decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tsattn.errors import TsattnError
from tsattn.models.decoding import IncrementalDecoder
from tsattn.models.layers import ForecastHead, PositionalEncoding, forecast_output, mix_truth, previous_values
from tsattn.models.layers import linear_path as make_linear_path

DECODER_MODES = ("autoregressive", "generative")


class TransformerForecaster(nn.Module):
    """Value projection + calendar embedding + sinusoidal positions -> encoder; causal decoder with cross-attention.

    Decoder tokens carry the previous target value and the calendar features of their own step, and take
    positions that continue the encoder's (the first horizon step is position L), so the model knows where
    in time each token sits.

    - `autoregressive`: decoder token h reads the value at h-1. Training with full teacher forcing is one
      pass under the causal mask; inference runs the decoder once per step, feeding back the point forecast.
      A teacher-forcing ratio in (0, 1) runs two passes: the first predicts with the truth, the second reads
      a per-window mix of truth and those predictions (scheduled sampling for parallel decoders).
    - `generative` (Informer-style): the last `label_len` observed steps, then H placeholder tokens that
      carry only calendar features; one pass, the targets never read.

    Args:
        n_features: input channels per lookback step, F (targets, covariates, then the K calendar channels).
        n_targets: C, the first C input channels.
        n_known: K, the last K input channels and the channels of known_future.
        d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward: as nn.Transformer.
        dropout: dropout on embeddings, residual and feed-forward paths.
        attention_dropout: dropout on the attention weights. Off by default: on CPU any value above 0
            forces PyTorch's unfused attention, which made a training step 3.7x slower at L=168.
        decoder_mode: "autoregressive" or "generative".
        label_len: observed steps that open the generative decoder.
        quantiles: quantile levels, or None for point forecasts.
        attention: cross-attention weights to return on request: "mean" over heads or "per_head".
        max_len: the longest L + H the positional encoding covers.
        linear_path, lookback, horizon, linear_path_season: a linear map of the lookback beside the network,
            as in LSTMSeq2Seq.

    Shape:
        batch["x"] [B, L, F], batch["known_future"] [B, H, K], batch["y"] [B, H, C] (teacher forcing only)
        -> {"y_hat": [B, H, C] or [B, H, C, Q], "attention": [B, H, L] or [B, nhead, H, L] on request}
    """

    def __init__(
        self,
        n_features: int,
        n_targets: int,
        n_known: int = 0,
        d_model: int = 64,
        nhead: int = 4,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 1,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        decoder_mode: str = "autoregressive",
        label_len: int = 48,
        quantiles: Sequence[float] | None = None,
        attention: str = "mean",
        max_len: int = 4096,
        linear_path: bool = False,
        lookback: int | None = None,
        horizon: int | None = None,
        linear_path_season: int = 1,
    ) -> None:
        super().__init__()
        if decoder_mode not in DECODER_MODES:
            raise ValueError(f"model.net.decoder_mode={decoder_mode!r}; choose one of {', '.join(DECODER_MODES)}")
        if attention not in ("mean", "per_head"):
            raise ValueError(f"model.net.attention={attention!r}; choose mean or per_head")
        self.n_targets, self.n_known = n_targets, n_known
        self.decoder_mode, self.label_len, self.attention = decoder_mode, label_len, attention
        self.uses_teacher_forcing = decoder_mode == "autoregressive"

        self.value_embedding = nn.Linear(n_features - n_known, d_model)
        self.target_embedding = nn.Linear(n_targets, d_model)
        self.calendar_embedding = nn.Linear(n_known, d_model, bias=False) if n_known else None
        self.positional = PositionalEncoding(
            d_model,
            max_len,
            overflow=(
                "the Transformer reads {end} positions (lookback + horizon, in segments with model.segment_len) "
                "but its positional encoding holds model.net.max_len={max_len}; raise model.net.max_len"
            ),
        )
        self.dropout = nn.Dropout(dropout)
        encoder_layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(
            encoder_layer, num_encoder_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        decoder_layer = nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(decoder_layer, num_decoder_layers, norm=nn.LayerNorm(d_model))
        # nn.Transformer*Layer use one dropout for everything; the attention weights get their own.
        for layer in [*self.encoder.layers, *self.decoder.layers]:
            for attention in (getattr(layer, "self_attn", None), getattr(layer, "multihead_attn", None)):
                if attention is not None:
                    attention.dropout = attention_dropout
        self.head = ForecastHead(d_model, n_targets, quantiles)
        self.quantiles = self.head.quantiles
        self.linear_path = make_linear_path(linear_path, lookback, horizon, linear_path_season)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x [B, L, F] -> memory [B, L, D]."""
        values, calendar = x[..., : x.shape[-1] - self.n_known], x[..., x.shape[-1] - self.n_known :]
        return self.encoder(self.dropout(self.positional(self._embed(self.value_embedding(values), calendar))))

    def forward(
        self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0, return_attention: bool = False
    ) -> dict[str, torch.Tensor]:
        x, known_future = batch["x"], batch["known_future"]
        lookback, horizon = x.shape[1], known_future.shape[1]
        memory = self.encode(x)
        last_value = x[:, -1, : self.n_targets]  # [B, L, F] -> [B, C]

        if self.decoder_mode == "generative":
            if self.label_len > lookback:
                raise TsattnError(
                    f"model.net.label_len={self.label_len} is longer than data.lookback={lookback}; lower label_len"
                )
            start = lookback - self.label_len
            known = x[:, start:, : self.n_targets]  # [B, label_len, C]
            placeholders = known.new_zeros(x.shape[0], horizon, self.n_targets)  # [B, H, C]
            calendar = torch.cat([x[:, start:, x.shape[-1] - self.n_known :], known_future], dim=1)
            out, attention = self._decode(
                torch.cat([known, placeholders], dim=1), calendar, memory, start, return_attention
            )
            forecast, _ = self.head(out[:, self.label_len :])  # [B, label_len + H, D] -> [B, H, ...]
            return forecast_output(forecast, attention[..., self.label_len :, :] if attention is not None else None)

        y = batch.get("y") if teacher_forcing_ratio > 0.0 else None  # the free-running path never reads y
        if y is None:
            return self._free_running(memory, last_value, known_future, lookback, return_attention)
        if teacher_forcing_ratio < 1.0:
            with torch.no_grad():  # first pass: what the model predicts when fed the truth
                out, _ = self._decode(previous_values(last_value, y), known_future, memory, lookback)
                predicted = self.head(out)[1]  # [B, H, C]
            y = mix_truth(predicted, y, teacher_forcing_ratio)
        out, attention = self._decode(
            previous_values(last_value, y), known_future, memory, lookback, return_attention
        )
        return forecast_output(self.head(out)[0], attention)

    def _free_running(self, memory, last_value, known_future, lookback, return_attention):
        """Decode one step at a time, feeding back the point forecast, with cached keys and values.

        Shape:
            memory [B, L, D], last_value [B, C], known_future [B, H, K] -> y_hat [B, H, ...]
        """
        decoder = IncrementalDecoder(self.decoder, memory)
        previous = last_value.unsqueeze(1)  # [B, 1, C]
        forecasts, weights = [], []
        for h in range(known_future.shape[1]):
            token = self._tokens(previous, known_future[:, h : h + 1], lookback + h)  # [B, 1, D]
            out, attention = decoder.step(token, return_attention, self.attention == "mean")
            forecast, point = self.head(out)  # [B, 1, C(, Q)], [B, 1, C]
            forecasts.append(forecast)
            weights.append(attention)
            previous = point  # feed back the point forecast (the median for quantiles)
        attention = torch.cat(weights, dim=-2) if return_attention else None  # H x [B, (nhead,) 1, L]
        return forecast_output(torch.cat(forecasts, dim=1), attention)

    def _decode(
        self,
        values: torch.Tensor,
        calendar: torch.Tensor,
        memory: torch.Tensor,
        start: int,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the decoder over tokens at positions start.. under the causal mask.

        Shape:
            values [B, T, C], calendar [B, T, K], memory [B, L, D] -> out [B, T, D], attention [B, (nhead,) T, L]
        """
        tokens = self._tokens(values, calendar, start)
        length = tokens.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device, dtype=tokens.dtype)
        if not need_weights:
            # The normal path: nn.TransformerDecoder with its fused attention kernels.
            return self.decoder(tokens, memory, tgt_mask=mask, tgt_is_causal=True), None
        out = tokens
        for layer in self.decoder.layers[:-1]:
            out = layer(out, memory, tgt_mask=mask, tgt_is_causal=True)
        out, weights = self._last_layer_with_weights(self.decoder.layers[-1], out, memory, mask)
        return self.decoder.norm(out), weights

    def _last_layer_with_weights(self, layer, x, memory, mask):
        """nn.TransformerDecoderLayer.forward (post-norm) with the cross-attention weights kept.

        Only used when weights are asked for; a test checks it matches the fused path's output.
        """
        x = layer.norm1(x + layer._sa_block(x, mask, None, is_causal=True))
        attended, weights = layer.multihead_attn(
            x, memory, memory, need_weights=True, average_attn_weights=self.attention == "mean"
        )
        x = layer.norm2(x + layer.dropout2(attended))
        x = layer.norm3(x + layer._ff_block(x))
        return x, weights  # weights [B, T, L] or [B, nhead, T, L]

    def _tokens(self, values: torch.Tensor, calendar: torch.Tensor, start: int) -> torch.Tensor:
        """Decoder tokens at positions start..: target values + calendar + position.

        Shape: values [B, T, C], calendar [B, T, K] -> [B, T, D]
        """
        return self.dropout(self.positional(self._embed(self.target_embedding(values), calendar), start))

    def _embed(self, embedded: torch.Tensor, calendar: torch.Tensor) -> torch.Tensor:
        """Add the calendar embedding. Shape: embedded [B, T, D], calendar [B, T, K] -> [B, T, D]."""
        return embedded if self.calendar_embedding is None else embedded + self.calendar_embedding(calendar)
