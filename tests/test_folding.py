"""Channel independence and segments: reshapes around an unchanged network that must not change what it means."""

from __future__ import annotations

import pytest
import torch

from tsattn.data.datamodule import ForecastDataModule
from tsattn.errors import TsattnError
from tsattn.models.attention_seq2seq import AttentionSeq2Seq
from tsattn.models.folding import (
    fold_channels,
    fold_segments,
    network_sizes,
    spread_segment_attention,
    unfold_channels,
    unfold_segments,
)
from tsattn.models.lstm_seq2seq import LSTMSeq2Seq
from tsattn.models.transformer import TransformerForecaster
from tsattn.training.module import ForecastModule

LOOKBACK, HORIZON, SEGMENT = 48, 24, 12

NETS = {
    "lstm": lambda sizes: LSTMSeq2Seq(**sizes, hidden_size=16),
    "attention": lambda sizes: AttentionSeq2Seq(**sizes, hidden_size=16),
    "transformer": lambda sizes: TransformerForecaster(
        **sizes, d_model=16, dropout=0.0, decoder_mode="generative", label_len=2
    ),
}


@pytest.fixture(scope="module")
def etth1(etth1_path):
    """64 real ETTh1 training windows: 7 target channels, 8 calendar channels."""
    datamodule = ForecastDataModule(str(etth1_path), time_col="date", lookback=LOOKBACK, horizon=HORIZON)
    datamodule.setup()
    train = datamodule.datasets["train"]
    return train[torch.linspace(0, len(train) - 1, 64).long()], datamodule.dims


# The decoders whose step counts and positions segments change most, for the ragged-segment tests.
RAGGED_NETS = {
    **NETS,
    "lstm_parallel": lambda sizes: LSTMSeq2Seq(**sizes, hidden_size=16, decoding="parallel"),
    "lstm_quantiles": lambda sizes: LSTMSeq2Seq(**sizes, hidden_size=16, quantiles=[0.1, 0.5, 0.9]),
    "transformer_autoregressive": lambda sizes: TransformerForecaster(
        **sizes, d_model=16, dropout=0.0, decoder_mode="autoregressive"
    ),
}


def _module(name, dims, channel_independent, segment_len, seed=0, channel_identity=False, normalization="revin"):
    sizes = network_sizes(dims, LOOKBACK, HORIZON, channel_independent, segment_len, channel_identity)
    torch.manual_seed(seed)
    net = RAGGED_NETS[name](sizes)
    module = ForecastModule(
        net,
        normalization=normalization,
        channel_independent=channel_independent,
        segment_len=segment_len,
        n_targets=dims["n_targets"],
        channel_identity=channel_identity,
    )
    return module.eval()


def test_folds_are_exact_inverses_and_keep_each_value_in_place(etth1):
    batch, dims = etth1
    c, k = dims["n_targets"], dims["n_known"]
    per_channel = fold_channels(batch, c)
    assert per_channel["x"].shape == (64 * c, LOOKBACK, 1 + k)
    # Window b's channel j is folded window b * C + j, its calendar unchanged.
    torch.testing.assert_close(per_channel["x"][2 * c + 3, :, 0], batch["x"][2, :, 3], rtol=0, atol=0)
    torch.testing.assert_close(per_channel["x"][2 * c + 3, :, 1:], batch["x"][2, :, c:], rtol=0, atol=0)
    torch.testing.assert_close(unfold_channels({"y_hat": per_channel["y"]}, c)["y_hat"], batch["y"], rtol=0, atol=0)

    segments = fold_segments(batch, c, SEGMENT)
    assert segments["x"].shape == (64, LOOKBACK // SEGMENT, SEGMENT * (c + k))
    # Targets first (step-major inside the segment), calendar last, as the networks expect.
    torch.testing.assert_close(segments["x"][:, 1, c : 2 * c], batch["x"][:, SEGMENT + 1, :c], rtol=0, atol=0)
    torch.testing.assert_close(segments["x"][:, 1, SEGMENT * c : SEGMENT * c + k], batch["x"][:, SEGMENT, c:])
    unfolded = unfold_segments({"y_hat": segments["y"]}, SEGMENT, HORIZON)["y_hat"]
    torch.testing.assert_close(unfolded, batch["y"], rtol=0, atol=0)


def test_segments_that_do_not_divide_the_window_drop_the_oldest_steps_and_round_the_horizon_up(etth1):
    """L=46, H=20, S=12: 3 encoder segments from steps 10..45, 2 decoder segments cut back to 20 steps."""
    full, dims = etth1
    c, k = dims["n_targets"], dims["n_known"]
    batch = {"x": full["x"][:, 2:], "known_future": full["known_future"][:, :20], "y": full["y"][:, :20]}
    segments = fold_segments(batch, c, SEGMENT)
    assert segments["x"].shape == (64, 3, SEGMENT * (c + k))
    assert segments["known_future"].shape == (64, 2, SEGMENT * k) and segments["y"].shape == (64, 2, SEGMENT * c)
    torch.testing.assert_close(segments["x"][:, 0, :c], batch["x"][:, 10, :c], rtol=0, atol=0)  # oldest 10 unread
    torch.testing.assert_close(segments["x"][:, -1, -k:], batch["x"][:, -1, c:], rtol=0, atol=0)  # ends at step L
    padded = segments["known_future"][:, 1].unflatten(-1, (SEGMENT, k))  # steps 12..23, of which 20..23 added
    torch.testing.assert_close(padded[:, 8:], batch["known_future"][:, -1:].expand(-1, 4, -1), rtol=0, atol=0)
    unfolded = unfold_segments({"y_hat": segments["y"]}, SEGMENT, 20)["y_hat"]
    torch.testing.assert_close(unfolded, batch["y"], rtol=0, atol=0)
    per_segment = torch.softmax(torch.randn(64, 2, 3), dim=-1)  # [B, H'/S, L'/S]
    weights = spread_segment_attention(per_segment, SEGMENT, 46, 20)
    assert weights.shape == (64, 20, 46) and not weights[..., :10].any()  # unread steps get no weight
    torch.testing.assert_close(weights.sum(-1), torch.ones(64, 20))
    # Step 19 is in horizon segment 1, step 11 in segment 0; lookback steps 10..21 form segment 0.
    torch.testing.assert_close(weights[:, 19, 10:22], per_segment[:, 1, :1].expand(-1, 12) / SEGMENT)
    torch.testing.assert_close(weights[:, 11, 34:46], per_segment[:, 0, 2:].expand(-1, 12) / SEGMENT)


def _ragged(full):
    """L=46, H=20 windows from the L=48, H=24 ones: with S=12, 10 lookback steps unread, 4 horizon steps added."""
    return {"x": full["x"][:, 2:], "known_future": full["known_future"][:, :20], "y": full["y"][:, :20]}


@pytest.mark.parametrize("name", list(RAGGED_NETS))
def test_ragged_segments_forecast_every_step_and_never_read_the_targets_or_a_later_segment(etth1, name):
    full, dims = etth1
    batch = _ragged(full)
    module = _module(name, dims, channel_independent=True, segment_len=SEGMENT)
    calendar = batch["known_future"].clone()
    calendar[:, SEGMENT:] += 5.0  # the second segment's calendar (the last 8 steps)
    with torch.no_grad():
        clean = module(batch)["y_hat"]
        expected = (*batch["y"].shape, 3) if name == "lstm_quantiles" else batch["y"].shape
        assert clean.shape == expected and torch.isfinite(clean).all()
        torch.testing.assert_close(clean, module(dict(batch, y=batch["y"] + 100.0))["y_hat"], rtol=0, atol=0)
        dirty = module(dict(batch, known_future=calendar))["y_hat"]
    torch.testing.assert_close(clean[:, :SEGMENT], dirty[:, :SEGMENT], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(clean[:, SEGMENT:], dirty[:, SEGMENT:])


@pytest.mark.parametrize("name", ["lstm", "transformer_autoregressive"])
@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_teacher_forcing_over_ragged_segments_reads_only_earlier_segments(etth1, name, ratio):
    """The truth of the last segment (real steps 12..19 and the 4 added) never reaches segment 0's forecast."""
    full, dims = etth1
    batch = _ragged(full)
    module = _module(name, dims, channel_independent=True, segment_len=SEGMENT)
    later = batch["y"].clone()
    later[:, SEGMENT:] += 50.0
    with torch.no_grad():
        torch.manual_seed(1)  # ratio 0.5 mixes truth and forecasts by a random draw per window
        clean = module(batch, ratio)["y_hat"]
        torch.manual_seed(1)
        dirty = module(dict(batch, y=later), ratio)["y_hat"]
        earlier = batch["y"].clone()
        earlier[:, :SEGMENT] += 50.0
        torch.manual_seed(1)
        moved = module(dict(batch, y=earlier), ratio)["y_hat"]
    torch.testing.assert_close(clean, dirty, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(clean[:, SEGMENT:], moved[:, SEGMENT:])  # segment 0's truth is read by segment 1


def test_the_steps_a_ragged_segment_leaves_out_are_read_by_revin_alone(etth1):
    full, dims = etth1
    batch = _ragged(full)
    older = dict(batch, x=torch.cat([batch["x"][:, :10] + 1.0, batch["x"][:, 10:]], dim=1))
    with torch.no_grad():
        for unread_by in ("none", "last_value"):  # the last value is in the last segment
            plain = _module("lstm", dims, channel_independent=True, segment_len=SEGMENT, normalization=unread_by)
            torch.testing.assert_close(plain(batch)["y_hat"], plain(older)["y_hat"], rtol=0, atol=0)
        normalised = _module("lstm", dims, channel_independent=True, segment_len=SEGMENT)
        assert not torch.allclose(normalised(batch)["y_hat"], normalised(older)["y_hat"])


def test_the_channel_identity_rides_with_the_calendar_of_each_folded_window(etth1):
    batch, dims = etth1
    c, k = dims["n_targets"], dims["n_known"]
    plain, coded = fold_channels(batch, c), fold_channels(batch, c, identity=True)
    assert coded["x"].shape == (64 * c, LOOKBACK, 1 + c + k) and coded["known_future"].shape == (
        64 * c,
        HORIZON,
        c + k,
    )
    # Window b * C + j: its own target and calendar as before, channel j's one-hot code between them.
    window = 5 * c + 3
    torch.testing.assert_close(coded["x"][window, :, 0], batch["x"][5, :, 3], rtol=0, atol=0)
    torch.testing.assert_close(coded["x"][window, :, 1 + c :], plain["x"][window, :, 1:], rtol=0, atol=0)
    assert torch.equal(coded["x"][window, :, 1 : 1 + c], torch.eye(c)[3].expand(LOOKBACK, c))
    assert torch.equal(coded["known_future"][window, :, :c], torch.eye(c)[3].expand(HORIZON, c))
    torch.testing.assert_close(
        coded["known_future"][window, :, c:], plain["known_future"][window], rtol=0, atol=0
    )
    torch.testing.assert_close(coded["y"], plain["y"], rtol=0, atol=0)
    sizes = network_sizes(dims, LOOKBACK, HORIZON, True, SEGMENT, channel_identity=True)
    assert sizes == {"n_features": SEGMENT * (1 + c + k), "n_targets": SEGMENT, "n_known": SEGMENT * (c + k)}
    with pytest.raises(TsattnError, match=r"model\.channel_identity=true .* set model\.channel_independent=true"):
        network_sizes(dims, LOOKBACK, HORIZON, False, SEGMENT, channel_identity=True)


@pytest.mark.parametrize("name", list(NETS))
def test_the_channel_identity_tells_identical_channels_apart(etth1, name):
    """Two channels with the same history get the same forecast from a shared network, and different ones
    once each carries its identity; each forecast still reads its own channel only."""
    batch, dims = etth1
    twins = batch["x"].clone()
    twins[..., 1] = twins[..., 0]
    twin_batch = dict(batch, x=twins)
    blind = _module(name, dims, channel_independent=True, segment_len=SEGMENT)
    coded = _module(name, dims, channel_independent=True, segment_len=SEGMENT, channel_identity=True)
    with torch.no_grad():
        same = blind(twin_batch)["y_hat"]
        told = coded(twin_batch)["y_hat"]
        disturbed = twins.clone()
        disturbed[..., 2:7] += torch.randn_like(disturbed[..., 2:7])
        still = coded(dict(batch, x=disturbed))["y_hat"]
    torch.testing.assert_close(same[..., 0], same[..., 1], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(told[..., 0], told[..., 1])
    torch.testing.assert_close(still[..., :2], told[..., :2], rtol=1e-5, atol=1e-5)


def test_the_network_reads_the_channel_codes_exactly_as_they_are_never_normalised(etth1):
    """RevIN standardises the values of each window, not its codes: the network sees exact one-hot columns."""
    batch, dims = etth1
    c = dims["n_targets"]
    module = _module("lstm", dims, channel_independent=True, segment_len=1, channel_identity=True)
    seen = []
    module.net.register_forward_hook(lambda net, args, output: seen.append(args[0]))
    with torch.no_grad():
        module(batch)
    codes = torch.eye(c).repeat(64, 1)  # [B * C, C]
    assert torch.equal(seen[0]["x"][..., 1 : 1 + c], codes.unsqueeze(1).expand(-1, LOOKBACK, -1))
    assert torch.equal(seen[0]["known_future"][..., :c], codes.unsqueeze(1).expand(-1, HORIZON, -1))
    assert not torch.equal(seen[0]["x"][..., 0], fold_channels(batch, c)["x"][..., 0])  # the values were standardised


@pytest.mark.parametrize("name", list(NETS))
def test_channel_independent_forecast_of_a_channel_depends_on_that_channel_only(etth1, name):
    batch, dims = etth1
    module = _module(name, dims, channel_independent=True, segment_len=SEGMENT)
    disturbed = batch["x"].clone()
    disturbed[..., 1:7] += torch.randn_like(disturbed[..., 1:7])  # every target channel but the first
    with torch.no_grad():
        clean, dirty = module(batch)["y_hat"], module(dict(batch, x=disturbed))["y_hat"]
    torch.testing.assert_close(clean[..., 0], dirty[..., 0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(clean[..., 1:], dirty[..., 1:])
    # A channel-mixing module of the same kind does mix: the check above could fail.
    mixing = _module(name, dims, channel_independent=False, segment_len=SEGMENT)
    with torch.no_grad():
        assert not torch.allclose(mixing(batch)["y_hat"][..., 0], mixing(dict(batch, x=disturbed))["y_hat"][..., 0])


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("channel_independent", [True, False])
def test_folded_models_never_read_the_targets_or_a_later_calendar_step(etth1, name, channel_independent):
    batch, dims = etth1
    module = _module(name, dims, channel_independent, SEGMENT)
    calendar = batch["known_future"].clone()
    calendar[:, SEGMENT:] += 5.0  # the second segment's calendar onwards
    with torch.no_grad():
        clean = module(batch)["y_hat"]
        assert clean.shape == batch["y"].shape
        torch.testing.assert_close(clean, module(dict(batch, y=batch["y"] + 100.0))["y_hat"], rtol=0, atol=0)
        dirty = module(dict(batch, known_future=calendar))["y_hat"]
    torch.testing.assert_close(clean[:, :SEGMENT], dirty[:, :SEGMENT], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(clean[:, SEGMENT:], dirty[:, SEGMENT:])


def test_attention_maps_keep_their_meaning_through_both_folds(etth1):
    batch, dims = etth1
    module = _module("attention", dims, channel_independent=True, segment_len=SEGMENT)
    with torch.no_grad():
        weights = module(batch)["attention"]
    assert weights.shape == (64, HORIZON, LOOKBACK)
    torch.testing.assert_close(weights.sum(-1), torch.ones(64, HORIZON))


def test_attention_is_the_channel_mean_of_segment_weights_spread_evenly_over_steps(etth1):
    """By hand: the network's [B*C, H/S, L/S] weights, averaged over channels, each cell shared by S x S steps."""
    batch, dims = etth1
    module = _module("attention", dims, channel_independent=True, segment_len=SEGMENT)
    seen = []
    module.net.register_forward_hook(lambda net, args, output: seen.append(output["attention"]))
    with torch.no_grad():
        weights = module(batch)["attention"]  # [B, H, L]
    per_segment = seen[0].unflatten(0, (-1, dims["n_targets"])).mean(dim=1)  # [B, H/S, L/S]
    segment_of_step = torch.arange(HORIZON) // SEGMENT, torch.arange(LOOKBACK) // SEGMENT
    expected = per_segment[:, segment_of_step[0]][:, :, segment_of_step[1]] / SEGMENT  # [B, H, L]
    torch.testing.assert_close(weights, expected)


def test_a_segment_longer_than_the_lookback_is_one_clear_error():
    dims = {"n_features": 15, "n_targets": 7, "n_known": 8}
    with pytest.raises(TsattnError, match=r"segment_len=49 must be between 1 and data\.lookback=48"):
        network_sizes(dims, LOOKBACK, HORIZON, False, 49)
    assert network_sizes(dims, LOOKBACK, HORIZON, False, 10)["n_features"] == 150  # need not divide L or H
    assert network_sizes(dims, LOOKBACK, HORIZON, True, 12) == {"n_features": 108, "n_targets": 12, "n_known": 96}


@pytest.mark.parametrize(("identity", "lookback", "horizon"), [(False, 48, 24), (True, 48, 24), (False, 46, 20)])
def test_a_folded_model_survives_the_bundle_round_trip(tmp_path, etth1_path, identity, lookback, horizon):
    """The bundle rebuilds the folds from its config: the loaded model forecasts exactly as the trained one."""
    from tsattn.config import compose
    from tsattn.inference.bundle import load_bundle, save_bundle
    from tsattn.training.train import Training

    overrides = [
        "experiment=etth1_attention_seq2seq",
        f"data.path={etth1_path}",
        f"data.lookback={lookback}",
        f"data.horizon={horizon}",
        f"model.segment_len={SEGMENT}",
        "model.net.hidden_size=16",
        "logger=none",
        "callbacks=none",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3",
        "+trainer.limit_val_batches=1",
        "test=false",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.log_dir={tmp_path}",
        f"model.channel_identity={str(identity).lower()}",
    ]
    run = Training(compose(overrides), track=False)
    run.run()
    assert run.model.hparams.channel_independent and run.model.hparams.segment_len == SEGMENT
    assert run.model.hparams.channel_identity == identity
    directory = save_bundle(
        tmp_path / "bundle", run.model, run.datamodule, run.cfg, "attention_seq2seq", run.net_options
    )
    loaded = load_bundle(directory).forecaster
    batch = run.datamodule.datasets["test"][list(range(32))]
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)["y_hat"], run.model.eval()(batch)["y_hat"], rtol=0, atol=0)
