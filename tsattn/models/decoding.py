"""Incremental (key/value-cached) decoding through the layers of an nn.TransformerDecoder.

Free-running inference adds one token per step. Re-running the decoder over the whole prefix costs O(H^2)
token computations, and nn.MultiheadAttention would also re-project the encoder memory at every step.
Here each layer projects the memory once, keeps the keys and values of the tokens it has seen, and
computes only the new token: O(H) work. The arithmetic is that of nn.TransformerDecoderLayer with
norm_first=False; a test checks it against the fused forward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _project(attention: nn.MultiheadAttention, x: torch.Tensor, which: int) -> torch.Tensor:
    """The query (0), key (1) or value (2) projection of `x`, split into heads.

    Shape:
        x [B, T, D] -> [B, nhead, T, D / nhead]
    """
    d = attention.embed_dim
    weight = attention.in_proj_weight[which * d : (which + 1) * d]
    bias = attention.in_proj_bias[which * d : (which + 1) * d] if attention.in_proj_bias is not None else None
    projected = F.linear(x, weight, bias)  # [B, T, D]
    return projected.unflatten(-1, (attention.num_heads, d // attention.num_heads)).transpose(1, 2)


def _attend(
    attention: nn.MultiheadAttention,
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    need_weights: bool,
    average_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention of one query step over cached keys, then the output projection.

    Shape:
        query [B, nhead, 1, d], keys, values [B, nhead, T, d] -> [B, 1, D], weights [B, (nhead,) 1, T]
    """
    dropout = attention.dropout if attention.training else 0.0
    weights = None
    if need_weights:
        scores = query @ keys.transpose(-2, -1) / math.sqrt(query.shape[-1])  # [B, nhead, 1, T]
        weights = torch.softmax(scores, dim=-1)
        mixed = F.dropout(weights, dropout, attention.training) @ values  # [B, nhead, 1, d]
        weights = weights.mean(dim=1) if average_weights else weights
    else:
        mixed = F.scaled_dot_product_attention(query, keys, values, dropout_p=dropout)
    merged = mixed.transpose(1, 2).flatten(2)  # [B, nhead, 1, d] -> [B, 1, D]
    return attention.out_proj(merged), weights


class IncrementalDecoder:
    """Step-by-step decoding state for one batch: cached keys and values per layer.

    Args:
        decoder: the nn.TransformerDecoder (post-norm layers) whose weights are used.
        memory: the encoder output. [B, L, D]
    """

    def __init__(self, decoder: nn.TransformerDecoder, memory: torch.Tensor) -> None:
        self.decoder = decoder
        # The memory's keys and values, projected once per layer instead of once per step.
        self.memory = [
            (_project(layer.multihead_attn, memory, 1), _project(layer.multihead_attn, memory, 2))
            for layer in decoder.layers
        ]
        self.keys: list[list[torch.Tensor]] = [[] for _ in decoder.layers]
        self.values: list[list[torch.Tensor]] = [[] for _ in decoder.layers]

    def step(
        self, x: torch.Tensor, need_weights: bool = False, average_weights: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode the next token.

        Shape:
            x [B, 1, D] (the embedded token) -> [B, 1, D] (after the decoder's final norm),
            cross-attention of the last layer [B, (nhead,) 1, L] when need_weights
        """
        weights = None
        for i, layer in enumerate(self.decoder.layers):
            self.keys[i].append(_project(layer.self_attn, x, 1))
            self.values[i].append(_project(layer.self_attn, x, 2))
            keys, values = torch.cat(self.keys[i], dim=2), torch.cat(self.values[i], dim=2)  # [B, nhead, t, d]
            # No mask: the cache holds only this token and those before it.
            attended, _ = _attend(layer.self_attn, _project(layer.self_attn, x, 0), keys, values, False, True)
            x = layer.norm1(x + layer.dropout1(attended))
            last = i == len(self.decoder.layers) - 1
            memory_keys, memory_values = self.memory[i]
            crossed, layer_weights = _attend(
                layer.multihead_attn,
                _project(layer.multihead_attn, x, 0),
                memory_keys,
                memory_values,
                need_weights and last,
                average_weights,
            )
            x = layer.norm2(x + layer.dropout2(crossed))
            x = layer.norm3(x + layer.dropout3(layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))))
            weights = layer_weights if last else weights
        norm = self.decoder.norm
        return (norm(x) if norm is not None else x), weights
