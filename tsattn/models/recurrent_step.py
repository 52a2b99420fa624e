"""One recurrent step from one shared state for many inputs: the parallel decoders' step, computed cheaply.

A parallel decoder (SegRNN's, and the LSTM and attention seq2seq with `decoding=parallel`) runs every
horizon step as one more step of the recurrent cell from the encoder's final state, each with its own
input (its position, its channel, its known features). Run through nn.LSTM or nn.GRU, the state is
repeated once per step and its recurrent projection (W_hh h, a D x 4D product for an LSTM of width D) is
recomputed for every copy, although every copy is the same: at width 512 and 30 output segments that is
nearly all of the model's arithmetic. Here the projection is computed once per sequence and broadcast over
the steps; only the input projections (and, in stacked layers above the first, the layer inputs) differ
per step. The weights are the module's own, so checkpoints are unchanged, and the arithmetic is
nn.LSTM's and nn.GRU's gate for gate (tests compare the two).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # a GRU's h, or an LSTM's (h, c)


def step_from_state(rnn: nn.LSTM | nn.GRU, inputs: torch.Tensor, state: State) -> torch.Tensor:
    """One step of `rnn` from `state` for each of M inputs per sequence; the outputs of its last layer.

    `inputs` may broadcast over the sequences' leading dimensions (SegRNN's queries are the same for every
    window), so an input projection shared by many sequences is computed once too.

    Args:
        rnn: a unidirectional nn.LSTM (without proj_size) or nn.GRU; batch_first or not, the state is
            [layers, *S, D] either way.
        inputs: each step's input. [*S', M, I], with S' broadcastable to S
        state: the state every step starts from: h, or (h, c), each [layers, *S, D]

    Shape:
        -> [*S, M, D]
    """
    if not isinstance(rnn, (nn.LSTM, nn.GRU)) or rnn.bidirectional or getattr(rnn, "proj_size", 0):
        raise ValueError("step_from_state takes unidirectional nn.LSTM or nn.GRU layers without projections")
    lstm = isinstance(rnn, nn.LSTM)
    hidden, cell = state if lstm else (state, None)
    x = inputs
    for layer in range(rnn.num_layers):
        if layer > 0 and rnn.dropout and rnn.training:
            x = F.dropout(x, rnn.dropout, training=True)  # between stacked layers, as nn.LSTM and nn.GRU do
        h0 = hidden[layer].unsqueeze(-2)  # [*S, 1, D]: the same for all M steps of a sequence
        from_input = F.linear(x, getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"bias_ih_l{layer}", None))
        from_state = F.linear(h0, getattr(rnn, f"weight_hh_l{layer}"), getattr(rnn, f"bias_hh_l{layer}", None))
        # The gates and the cell state in at least float32, as the fused kernels keep them under mixed precision
        # (autocast runs the products above in bf16 or fp16).
        precision = torch.promote_types(from_input.dtype, torch.float32)
        from_input, from_state, h0 = from_input.to(precision), from_state.to(precision), h0.to(precision)
        if lstm:
            gates = from_input + from_state  # [*S, M, 4D]: input, forget, cell and output gates
            i, f, g, o = gates.chunk(4, dim=-1)
            c1 = torch.sigmoid(f) * cell[layer].unsqueeze(-2).to(precision) + torch.sigmoid(i) * torch.tanh(g)
            x = torch.sigmoid(o) * torch.tanh(c1)  # [*S, M, D]
        else:
            input_r, input_z, input_n = from_input.chunk(3, dim=-1)
            state_r, state_z, state_n = from_state.chunk(3, dim=-1)
            reset, update = torch.sigmoid(input_r + state_r), torch.sigmoid(input_z + state_z)
            candidate = torch.tanh(input_n + reset * state_n)
            x = (1 - update) * candidate + update * h0  # [*S, M, D]
    return x
