"""Every forecaster and baseline: shapes, causality, no peeking at targets, learning, round trips."""

from __future__ import annotations

import re

import pytest
import torch

from tsattn.data.datamodule import ForecastDataModule
from tsattn.data.split import RatioSplit
from tsattn.models.attention_seq2seq import AttentionSeq2Seq
from tsattn.models.baselines import DLinear, LastValue, RLinear, SeasonalNaive
from tsattn.models.layers import AttentionScore
from tsattn.models.lstm_seq2seq import LSTMSeq2Seq
from tsattn.models.segrnn import SegRNN
from tsattn.models.transformer import TransformerForecaster

LOOKBACK, HORIZON = 48, 12

NEURAL = {
    "lstm": lambda dims, **kw: LSTMSeq2Seq(**dims, hidden_size=32, **kw),
    "attention_dot": lambda dims, **kw: AttentionSeq2Seq(**dims, hidden_size=32, score="dot", **kw),
    "attention_general": lambda dims, **kw: AttentionSeq2Seq(**dims, hidden_size=32, score="general", **kw),
    "attention_additive": lambda dims, **kw: AttentionSeq2Seq(**dims, hidden_size=32, score="additive", **kw),
    "lstm_parallel": lambda dims, **kw: LSTMSeq2Seq(**dims, hidden_size=32, decoding="parallel", **kw),
    "attention_parallel": lambda dims, **kw: AttentionSeq2Seq(**dims, hidden_size=32, decoding="parallel", **kw),
    "gru": lambda dims, **kw: LSTMSeq2Seq(**dims, hidden_size=32, cell="gru", **kw),
    "gru_parallel": lambda dims, **kw: LSTMSeq2Seq(
        **dims, hidden_size=32, num_layers=2, dropout=0.1, cell="gru", decoding="parallel", **kw
    ),
    "transformer_ar": lambda dims, **kw: TransformerForecaster(**dims, d_model=32, dropout=0.0, **kw),
    "transformer_gen": lambda dims, **kw: TransformerForecaster(
        **dims, d_model=32, dropout=0.0, decoder_mode="generative", label_len=24, **kw
    ),
}
PARALLEL = ["lstm_parallel", "attention_parallel", "gru_parallel"]  # no forecast fed back: nothing to teacher-force
TEACHER_FORCED = [name for name in NEURAL if name != "transformer_gen" and name not in PARALLEL]
ATTENDING = [
    "attention_dot",
    "attention_general",
    "attention_additive",
    "attention_parallel",
    "transformer_ar",
    "transformer_gen",
]
BASELINES = {
    "last_value": lambda dims: LastValue(**dims),
    "seasonal_naive": lambda dims: SeasonalNaive(**dims, season_length=24),
    "linear": lambda dims: DLinear(**dims, lookback=LOOKBACK, horizon=HORIZON),
    "rlinear": lambda dims: RLinear(**dims, lookback=LOOKBACK, horizon=HORIZON),
    "segrnn": lambda dims: SegRNN(**dims, lookback=LOOKBACK, horizon=HORIZON, segment=12, hidden_size=32, dropout=0.0),
}


@pytest.fixture(scope="module")
def weather(weather_path):
    datamodule = ForecastDataModule(
        str(weather_path),
        targets=["temperature"],
        id_col="city",
        missing="interpolate",
        lookback=LOOKBACK,
        horizon=HORIZON,
        split=RatioSplit(0.7, 0.1),
    )
    datamodule.setup()
    train = datamodule.datasets["train"]
    # 64 windows spread over the training year: a small, real slice.
    return train[torch.linspace(0, len(train) - 1, 64).long()], datamodule.dims


def build(name, dims, seed=0, **kwargs):
    torch.manual_seed(seed)
    factory = NEURAL.get(name) or BASELINES[name]
    return factory(dims, **kwargs) if name in NEURAL else factory(dims)


@pytest.mark.parametrize("name", [*NEURAL, *BASELINES])
def test_point_shapes(weather, name):
    batch, dims = weather
    assert build(name, dims)(batch)["y_hat"].shape == (64, HORIZON, 1)


@pytest.mark.parametrize("name", NEURAL)
def test_quantile_shapes_never_cross_and_median_is_the_point(weather, name):
    batch, dims = weather
    net = build(name, dims, quantiles=[0.9, 0.1, 0.5])
    y_hat = net(batch)["y_hat"]
    assert y_hat.shape == (64, HORIZON, 1, 3)
    assert torch.all(y_hat[..., 1:] >= y_hat[..., :-1])
    assert net.quantiles == [0.1, 0.5, 0.9] and net.head.median_index == 1


@pytest.mark.parametrize("name", ATTENDING)
def test_attention_weights_are_distributions_over_the_lookback(weather, name):
    batch, dims = weather
    net = build(name, dims).eval()
    with torch.no_grad():
        out = net(batch, return_attention=True) if name.startswith("transformer") else net(batch)
    weights = out["attention"]
    assert weights.shape == (64, HORIZON, LOOKBACK)
    assert torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(64, HORIZON))


def test_transformer_per_head_attention_and_fused_path_agree(weather):
    batch, dims = weather
    net = build("transformer_ar", dims, attention="per_head").eval()
    with torch.no_grad():
        fused = net(batch)["y_hat"]
        with_weights = net(batch, return_attention=True)
        forced = net(batch, 1.0)["y_hat"]
        forced_weights = net(batch, 1.0, return_attention=True)
    assert with_weights["attention"].shape == (64, 4, HORIZON, LOOKBACK)
    # Asking for weights takes a slower path; the forecasts must not change with it.
    torch.testing.assert_close(with_weights["y_hat"], fused, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(forced_weights["y_hat"], forced, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [*NEURAL, *BASELINES])
def test_eval_never_reads_the_targets(weather, name):
    batch, dims = weather
    net = build(name, dims).eval()
    perturbed = dict(batch, y=batch["y"] + 100.0 * torch.randn_like(batch["y"]))
    with torch.no_grad():
        torch.testing.assert_close(net(batch)["y_hat"], net(perturbed)["y_hat"], rtol=0, atol=0)


@pytest.mark.parametrize("name", TEACHER_FORCED)
@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_teacher_forced_step_h_sees_only_truth_before_h(weather, name, ratio):
    batch, dims = weather
    net = build(name, dims).eval()
    k = 5
    perturbed_y = batch["y"].clone()
    perturbed_y[:, k:] += 10.0
    with torch.no_grad():
        torch.manual_seed(1)
        clean = net(batch, ratio)["y_hat"]
        torch.manual_seed(1)
        dirty = net(dict(batch, y=perturbed_y), ratio)["y_hat"]
    # Step h is fed y[h-1]: outputs up to and including step k cannot move (the mask is tested, not trusted)...
    torch.testing.assert_close(clean[:, : k + 1], dirty[:, : k + 1], rtol=1e-5, atol=1e-5)
    # ...and later ones do, so teacher forcing really reads y and the check above could fail.
    assert not torch.allclose(clean[:, k + 1 :], dirty[:, k + 1 :])


@pytest.mark.parametrize("name", PARALLEL)
def test_parallel_decoding_never_reads_the_targets_even_when_teacher_forced(weather, name):
    batch, dims = weather
    net = build(name, dims).eval()
    perturbed = dict(batch, y=batch["y"] + 100.0 * torch.randn_like(batch["y"]))
    with torch.no_grad():
        torch.testing.assert_close(net(batch, 1.0)["y_hat"], net(perturbed, 1.0)["y_hat"], rtol=0, atol=0)
        # Each step is decoded on its own, from the same encoder state: step h does not depend on the
        # other steps' calendar inputs, earlier or later (the recurrent decoders' later steps do).
        calendar = batch["known_future"].clone()
        calendar[:, 3] += 5.0
        clean, dirty = net(batch)["y_hat"], net(dict(batch, known_future=calendar))["y_hat"]
    changed = (clean - dirty).abs().amax(dim=(0, 2)) > 1e-6  # [H]
    assert changed.tolist() == [h == 3 for h in range(HORIZON)]
    assert not net.uses_teacher_forcing  # so the module neither schedules nor logs a ratio for it


@pytest.mark.parametrize("name", PARALLEL)
def test_parallel_decoding_keeps_windows_apart_and_reads_the_position(weather, name, monkeypatch):
    batch, dims = weather
    net = build(name, dims).eval()
    x = batch["x"].clone()
    x[0] += 3.0  # window 0 only: each window's steps must come from its own encoder state
    with torch.no_grad():
        clean, dirty = net(batch)["y_hat"], net(dict(batch, x=x))["y_hat"]
        assert not torch.allclose(clean[0], dirty[0])
        torch.testing.assert_close(clean[1:], dirty[1:], rtol=0, atol=1e-6)
        # With the same calendar at every step, only the position code tells the steps apart...
        flat = dict(batch, known_future=batch["known_future"][:, :1].expand_as(batch["known_future"]))
        assert not torch.allclose(net(flat)["y_hat"][:, 0], net(flat)["y_hat"][:, -1])
        # ...and without it every step would be the same forecast.
        monkeypatch.setattr(net.positions, "forward", lambda x, start=0: x)
        same = net(flat)["y_hat"]
        torch.testing.assert_close(same[:, 0], same[:, -1])


def test_unknown_decoding_is_refused_in_one_line(weather):
    from tsattn.errors import TsattnError

    with pytest.raises(TsattnError, match=re.escape("model.net.decoding='sideways' is not one of recurrent, parallel")):
        LSTMSeq2Seq(**weather[1], decoding="sideways")
    with pytest.raises(TsattnError, match=re.escape("model.net.cell='rnn' is not one of lstm, gru")):
        LSTMSeq2Seq(**weather[1], cell="rnn")


def test_parallel_decoder_past_its_position_code_names_itself_and_the_fix(weather):
    from tsattn.errors import TsattnError

    batch, dims = weather
    net = build("lstm_parallel", dims).eval()
    steps = net.positions.max_len + 1
    calendar = batch["known_future"][:1, :1].expand(1, steps, -1)  # [1, 4097, K]: one window, too long
    with pytest.raises(TsattnError) as caught, torch.no_grad():
        net(dict(batch, x=batch["x"][:1], known_future=calendar, y=batch["y"][:1, :1].expand(1, steps, -1)))
    line = str(caught.value)
    assert f"parallel decoder reads {steps} horizon steps" in line and "Transformer" not in line
    assert "model.segment_len or model.net.decoding=recurrent" in line and "\n" not in line


@pytest.mark.parametrize("name", NEURAL)
def test_future_decoder_inputs_never_reach_earlier_steps(weather, name):
    """Perturbing the decoder's calendar inputs at steps >= k leaves every output before k unchanged."""
    batch, dims = weather
    net = build(name, dims).eval()
    k = 4
    calendar = batch["known_future"].clone()
    calendar[:, k:] += 5.0
    with torch.no_grad():
        clean, dirty = net(batch)["y_hat"], net(dict(batch, known_future=calendar))["y_hat"]
    torch.testing.assert_close(clean[:, :k], dirty[:, :k], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(clean[:, k:], dirty[:, k:])


@pytest.mark.parametrize("name", ["transformer_ar", "transformer_gen"])
def test_positional_encoding_is_really_added(weather, name, monkeypatch):
    batch, dims = weather
    net = build(name, dims).eval()
    # Shuffle the early lookback steps, keeping the steps the decoder reads directly (the last ones) in place.
    order = torch.cat(
        [
            torch.randperm(LOOKBACK - 24, generator=torch.Generator().manual_seed(0)),
            torch.arange(LOOKBACK - 24, LOOKBACK),
        ]
    )
    shuffled = dict(batch, x=batch["x"][:, order])
    with torch.no_grad():
        assert not torch.allclose(net(batch)["y_hat"], net(shuffled)["y_hat"], atol=1e-4)
        # A no-op encoding would make the encoder blind to order: the check above would then fail.
        monkeypatch.setattr(net.positional, "forward", lambda x, start=0: x)
        torch.testing.assert_close(net(batch)["y_hat"], net(shuffled)["y_hat"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [*NEURAL, "linear", "rlinear", "segrnn"])
def test_overfits_a_small_real_slice(weather, name):
    batch, dims = weather
    net = build(name, dims)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2 if name not in ("linear", "rlinear") else 3e-2)
    losses = []

    def free_running() -> float:  # the path forecasts use
        with torch.no_grad():
            loss = torch.mean((net.eval()(batch)["y_hat"] - batch["y"]) ** 2).item()
        net.train()
        return loss

    for step in range(250):  # at most 250 steps: done early once both bars below are met with room to spare
        optimizer.zero_grad()
        loss = torch.mean((net(batch, 1.0)["y_hat"] - batch["y"]) ** 2)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 25 == 24 and max(losses[-10:]) < losses[0] / 20 and free_running() < losses[0] / 10:
            break
    assert min(losses[-10:]) < losses[0] / 10, (losses[0], losses[-1])
    # The free-running forecast of the same windows improved too.
    assert free_running() < losses[0] / 5


def test_baselines_forecast_what_they_say(weather):
    batch, dims = weather
    x = batch["x"][..., :1]
    torch.testing.assert_close(build("last_value", dims)(batch)["y_hat"], x[:, -1:].expand(-1, HORIZON, -1))
    torch.testing.assert_close(
        build("seasonal_naive", dims)(batch)["y_hat"], x[:, LOOKBACK - 24 : LOOKBACK - 24 + HORIZON]
    )


@pytest.mark.parametrize("score", ["general", "additive"])
def test_attention_finds_the_step_to_copy(score):
    """Future step h is a copy of input step 10 + h: after training, step h's weights peak there."""
    torch.manual_seed(0)
    lookback, horizon, source = 24, 4, 10
    net = AttentionSeq2Seq(n_features=1, n_targets=1, n_known=0, hidden_size=32, score=score)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)

    def batch(n=256):
        x = torch.randn(n, lookback, 1)
        return {"x": x, "y": x[:, source : source + horizon], "known_future": torch.zeros(n, horizon, 0)}

    for _ in range(400):
        b = batch()
        optimizer.zero_grad()
        torch.mean((net(b, 1.0)["y_hat"] - b["y"]) ** 2).backward()
        optimizer.step()
    with torch.no_grad():
        weights = net.eval()(batch(512))["attention"].mean(dim=0)  # [H, L]
    copied = torch.arange(horizon) + source
    assert weights.argmax(dim=-1).tolist() == copied.tolist()
    assert weights[torch.arange(horizon), copied].mean() > 0.4


@pytest.mark.parametrize("name", TEACHER_FORCED)
def test_free_running_equals_teacher_forcing_on_its_own_forecasts(weather, name):
    """Feeding the model its own forecasts as 'truth' must reproduce them: one decoder, two code paths."""
    batch, dims = weather
    net = build(name, dims).eval()
    with torch.no_grad():
        free = net(batch)["y_hat"]
        forced = net(dict(batch, y=free), 1.0)["y_hat"]
    torch.testing.assert_close(forced, free, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", AttentionScore.KINDS)
def test_attention_scores_match_their_definitions(kind):
    """Scores from keys projected once per batch equal the textbook formulas."""
    torch.manual_seed(0)
    score = AttentionScore(kind, hidden_size=16)
    queries, keys = torch.randn(4, 3, 16), torch.randn(4, 10, 16)  # [B, H, D], [B, L, D]
    if kind == "dot":
        expected = torch.einsum("bhd,bld->bhl", queries, keys)  # s . h
    elif kind == "general":
        expected = torch.einsum("bhd,de,ble->bhl", queries, score.key_proj.weight, keys)  # s . W h
    else:
        w_s, w_h = score.query_proj.weight, score.key_proj.weight
        query_side = torch.einsum("de,bhe->bhd", w_s, queries)  # W_s s, [B, H, D]
        key_side = keys @ w_h.T + score.key_proj.bias  # W_h h, [B, L, D]
        mixed = query_side.unsqueeze(2) + key_side.unsqueeze(1)  # [B, H, L, D]
        expected = (torch.tanh(mixed) @ score.v.weight.T).squeeze(-1)  # v . tanh(W_s s + W_h h)
    expected = torch.softmax(expected, dim=-1)
    torch.testing.assert_close(score(queries, keys), expected)
    torch.testing.assert_close(score(queries, keys, score.project_keys(keys)), expected)


def test_quantile_levels_must_make_intervals_with_whole_percent_names():
    """Test metrics name intervals test/coverage_<percent>: a 97.5% interval or a repeated level is refused
    when the network is built, not after training."""
    from tsattn.models.layers import ForecastHead

    head = ForecastHead(8, 1, [0.975, 0.025, 0.1, 0.5, 0.9])  # 95% and 80% intervals
    assert head.quantiles == [0.025, 0.1, 0.5, 0.9, 0.975]
    with pytest.raises(ValueError, match=r"levels 0\.0125 and 0\.9875 make a 97\.5% interval"):
        ForecastHead(8, 1, [0.0125, 0.5, 0.9875])
    with pytest.raises(ValueError, match="a level is given twice"):
        ForecastHead(8, 1, [0.1, 0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="every level must lie in"):
        ForecastHead(8, 1, [0.0, 0.5])


def test_segrnn_keeps_windows_and_channels_apart_and_starts_from_the_last_value():
    """Each channel of each window is its own series (the rows of every reshape line up): changing one
    channel's lookback moves that channel's forecast only; a flat lookback forecasts its level plus what
    the network adds to zero; segments need not tile L or H."""
    from tsattn.errors import TsattnError

    torch.manual_seed(0)
    net = SegRNN(n_features=4, n_targets=3, lookback=48, horizon=24, n_known=1, segment=12, hidden_size=16).eval()
    x = torch.randn(5, 48, 4)
    batch = {"x": x, "known_future": torch.randn(5, 24, 1)}
    changed = x.clone()
    changed[2, :30, 1] += 5.0  # window 2, channel 1, before its last value
    with torch.no_grad():
        before, after = net(batch)["y_hat"], net(dict(batch, x=changed))["y_hat"]
        moved = (after - before).abs().amax(dim=1)  # [B, C]
        assert moved[2, 1] > 1e-3 and moved.sum() == moved[2, 1]
        known = net(dict(batch, x=x.clone().index_fill_(2, torch.tensor([3]), 9.0)))["y_hat"]  # the known channel
        torch.testing.assert_close(known, before, rtol=0, atol=0)
        flat = torch.zeros(2, 48, 4)
        shift = net({"x": flat + 7.0, "known_future": torch.zeros(2, 24, 1)})["y_hat"]
        torch.testing.assert_close(shift - 7.0, net({"x": flat, "known_future": torch.zeros(2, 24, 1)})["y_hat"])
        # Segments need not tile L or H: the oldest L mod W steps are left out, the last segment cut at H.
        odd = SegRNN(n_features=4, n_targets=3, lookback=50, horizon=20, n_known=1, segment=12, hidden_size=16).eval()
        longer = torch.cat([torch.randn(5, 2, 4), x], dim=1)  # [5, 50, 4]: two older steps in front
        assert odd({"x": longer, "known_future": torch.zeros(5, 20, 1)})["y_hat"].shape == (5, 20, 3)
        older = longer.clone()
        older[:, :2] += 100.0
        torch.testing.assert_close(odd({"x": older, "known_future": torch.zeros(5, 20, 1)})["y_hat"],
                                   odd({"x": longer, "known_future": torch.zeros(5, 20, 1)})["y_hat"])
    with pytest.raises(TsattnError, match=r"segrnn reads segments of 24 steps: data\.lookback=12 must hold one"):
        SegRNN(n_features=1, n_targets=1, lookback=12, horizon=36)


def test_segrnn_equals_a_loop_over_each_series_and_output_segment():
    """The batched forward against the model written out one window, channel and output segment at a time:
    any row of the (window, channel, segment) reshapes out of place would give another forecast."""
    torch.manual_seed(1)
    net = SegRNN(n_features=3, n_targets=2, lookback=40, horizon=30, segment=12, hidden_size=8).eval()
    x = torch.randn(3, 40, 3)
    with torch.no_grad():
        batched = net({"x": x, "known_future": torch.zeros(3, 30, 0)})["y_hat"]  # [B, H, C]
        looped = torch.zeros(3, 36, 2)
        for b in range(3):
            for c in range(2):
                series = x[b, :, c]
                recent = (series - series[-1])[-36:].reshape(1, 3, 12)  # the last 3 whole segments
                _, state = net.gru(net.embed(recent))  # [1, 1, D]
                for m in range(3):  # each output segment: one GRU step from the final state
                    query = torch.cat([net.position[m], net.channel[c]]).reshape(1, 1, -1)
                    _, step = net.gru(query, state)
                    looped[b, 12 * m : 12 * (m + 1), c] = net.head(step[0, 0]) + series[-1]
    torch.testing.assert_close(batched, looped[:, :30])
