"""The parallel decoders' shared-state step equals nn.LSTM and nn.GRU run on repeated states, values and
gradients, and is what the LSTM seq2seq's parallel decoder and SegRNN compute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tsattn.models.recurrent_step import step_from_state


def _repeated(rnn, inputs, state):
    """The reference: every step its own sequence of length 1 from a copy of the state, through the module.

    Shape: inputs [N, M, I], state parts [layers, N, D] -> [N, M, D]
    """
    n, m = inputs.shape[:2]
    if isinstance(state, tuple):
        start = tuple(part.repeat_interleave(m, dim=1) for part in state)
    else:
        start = state.repeat_interleave(m, dim=1)
    out, _ = rnn(inputs.reshape(n * m, 1, -1), start)  # batch_first
    return out.view(n, m, -1)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_the_module_on_repeated_states_values_and_gradients(kind, layers, bias):
    """Outputs, and the gradients of the weights, of the inputs and of the starting state (the encoder's)."""
    torch.manual_seed(0)
    cls = nn.LSTM if kind == "lstm" else nn.GRU
    rnn = cls(5, 16, layers, batch_first=True, bias=bias)
    inputs = torch.randn(4, 7, 5, requires_grad=True)  # [N, M, I]
    parts = [torch.randn(layers, 4, 16, requires_grad=True) for _ in range(2 if kind == "lstm" else 1)]
    state = tuple(parts) if kind == "lstm" else parts[0]
    leaves = [("inputs", inputs), *[(f"state {i}", part) for i, part in enumerate(parts)]]
    leaves += list(rnn.named_parameters())

    def gradients(output):
        for _, leaf in leaves:
            leaf.grad = None
        output.square().sum().backward()
        return {name: leaf.grad.clone() for name, leaf in leaves}

    expected = _repeated(rnn, inputs, state)
    expected_grads = gradients(expected)
    got = step_from_state(rnn, inputs, state)
    torch.testing.assert_close(got, expected)
    for name, grad in gradients(got).items():
        torch.testing.assert_close(grad, expected_grads[name], msg=name)


def test_inputs_shared_by_many_sequences_broadcast():
    """SegRNN's case: the same queries for every window, a state per window and channel."""
    torch.manual_seed(1)
    rnn = nn.GRU(8, 8, batch_first=True)
    queries = torch.randn(3, 4, 8)  # [C, M, I]
    state = torch.randn(1, 2, 3, 8)  # [layers, B, C, D]
    got = step_from_state(rnn, queries, state)  # [B, C, M, D]
    expected = _repeated(rnn, queries.expand(2, -1, -1, -1).reshape(6, 4, 8), state.reshape(1, 6, 8))
    torch.testing.assert_close(got, expected.view(2, 3, 4, 8))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropout_between_layers_only_in_training(kind, monkeypatch):
    """As in nn.LSTM and nn.GRU: on each layer's outputs but the last's, never on the inputs, only in training."""
    import tsattn.models.recurrent_step as module

    torch.manual_seed(2)
    rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(5, 16, 3, batch_first=True, dropout=0.5)
    inputs, h = torch.randn(4, 7, 5), torch.randn(3, 4, 16)
    state = (h, torch.randn(3, 4, 16)) if kind == "lstm" else h
    dropped, dropout = [], module.F.dropout

    def recorded(x, p, training):
        dropped.append((tuple(x.shape), p, training))
        return dropout(x, p, training)

    monkeypatch.setattr(module.F, "dropout", recorded)
    with torch.no_grad():
        evaluated = step_from_state(rnn.eval(), inputs, state)
        assert dropped == []
        torch.testing.assert_close(evaluated, _repeated(rnn, inputs, state))
        trained = step_from_state(rnn.train(), inputs, state)
    assert dropped == [((4, 7, 16), 0.5, True)] * 2  # the outputs of layers 0 and 1, the inputs of 1 and 2
    assert not torch.allclose(trained, evaluated)


def test_gates_in_float32_under_mixed_precision():
    """Autocast runs the products in bf16; the gates and the cell state stay in float32, as in the fused kernels."""
    torch.manual_seed(4)
    rnn = nn.LSTM(5, 16, 2, batch_first=True)
    inputs, state = torch.randn(4, 7, 5), (torch.randn(2, 4, 16), torch.randn(2, 4, 16))
    with torch.no_grad():
        exact = step_from_state(rnn, inputs, state)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = step_from_state(rnn, inputs, state)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, rtol=0, atol=0.05)


def test_refuses_what_it_does_not_compute():
    for rnn in (nn.LSTM(3, 4, bidirectional=True), nn.LSTM(3, 4, proj_size=2), nn.RNN(3, 4)):
        with pytest.raises(ValueError, match="unidirectional nn.LSTM or nn.GRU layers without projections"):
            step_from_state(rnn, torch.randn(1, 2, 3), (torch.zeros(1, 1, 4), torch.zeros(1, 1, 4)))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_parallel_decoder_equals_its_steps_run_through_the_module(cell):
    """LSTMSeq2Seq(decoding="parallel"): each horizon step one decoder step from the encoder's final state."""
    from tsattn.models.lstm_seq2seq import POSITION_SIZE, LSTMSeq2Seq

    torch.manual_seed(3)
    net = LSTMSeq2Seq(n_features=3, n_targets=2, n_known=1, hidden_size=8, num_layers=2, decoding="parallel",
                      cell=cell).eval()
    batch = {"x": torch.randn(4, 10, 3), "known_future": torch.randn(4, 6, 1)}
    with torch.no_grad():
        got = net(batch)["y_hat"]
        _, state = net.encode(batch["x"])
        position = net.positions(torch.zeros(1, 6, POSITION_SIZE)).expand(4, -1, -1)
        decoded = _repeated(net.decoder, torch.cat([position, batch["known_future"]], dim=-1), state)
        expected = net.head(net.dropout(decoded))[0]
    torch.testing.assert_close(got, expected)
