"""Defaults that carry: `model=<name>` alone gets the benchmarks' architecture and a schedule that trains.

The architecture left `auto` is decided from the data (tsattn/training/architecture.py); the learning rate
warms up and decays (tsattn/training/schedules.py); the bundled default run beats seasonal naive.
"""

from __future__ import annotations

import itertools
import math
import re

import pytest

from tsattn.config import compose
from tsattn.training.architecture import segment_length
from tsattn.training.schedules import LearningRate
from tsattn.training.train import Training

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "logger=none"]


@pytest.mark.parametrize(
    ("lookback", "season", "expected"),
    [
        (96, 24, 24),  # ETTh1's protocol: the experiments' segment
        (512, 24, 24),  # 24 does not divide 512: the oldest 8 steps go unread, no segment cuts a day
        (100, 24, 24),
        (36, 12, 6),  # monthly data, a lookback of 3 years: half-years leave the encoder 6 steps
        (156, 52, 26),  # a 52-step segment would leave the encoder 3 steps
        (10, 24, 2),  # 3, 4, 6, ... would leave fewer than 4 encoder steps
        (48, 1, 1),  # no season: the steps themselves
        (3, 24, 1),
    ],
)
def test_segment_length_is_one_season_or_a_divisor_of_it(lookback, season, expected):
    chosen = segment_length(lookback, season)
    assert chosen == expected
    assert max(season, 1) % chosen == 0 and (lookback // chosen >= 4 or chosen == 1)


def test_warm_up_rises_then_the_rate_decays_to_its_floor():
    schedule = LearningRate(kind="warmup_cosine", warmup_epochs=1.0, floor=0.05)
    shares = [schedule.multiplier(step, steps_per_epoch=10, total_steps=100) for step in range(100)]
    warmup, decay = shares[:10], shares[10:]
    assert all(a < b for a, b in itertools.pairwise(warmup)) and warmup[-1] < 1.0
    assert decay[0] == 1.0 and all(a >= b for a, b in itertools.pairwise(decay))
    assert math.isclose(schedule.multiplier(100, 10, 100), 0.05) and min(shares) >= 0.05
    assert schedule.multiplier(500, 10, None) == 1.0  # no known end (max_epochs=-1): the base rate
    with pytest.raises(ValueError, match="choose one of warmup_cosine, plateau"):
        LearningRate(kind="cosine")


def test_step_decay_gives_each_epoch_segrnns_rate():
    """SegRNN (utils/tools.py, lradj type3) sets the rate after epoch e (from 0) from e + 1: base while that
    is under 3, else base * 0.8 ** (e + 1 - 3); epoch 0 runs at base. step_decay, stepped per epoch, matches."""
    import torch

    base = 0.001
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=base)
    scheduler = LearningRate(kind="step_decay", hold_epochs=4, gamma=0.8).step_decay(optimizer)["scheduler"]
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()  # Lightning steps an epoch-interval scheduler after each training epoch
    segrnn = [base] + [base if k < 3 else base * 0.8 ** (k - 3) for k in range(1, 10)]
    assert rates == pytest.approx(segrnn, rel=1e-12)
    assert rates[:4] == [base] * 4 and rates[4] == pytest.approx(0.8 * base)


@pytest.mark.parametrize("model", ["lstm_seq2seq", "attention_seq2seq", "transformer"])
def test_model_alone_gets_channel_independence_revin_and_segments_from_the_data(model, tmp_path, etth1_path):
    cfg = compose(
        [
            "data=csv",
            f"data.path={etth1_path}",
            "data.time_col=date",
            "data.targets=[HUFL,HULL,OT]",
            "data.lookback=96",
            "data.horizon=48",
            f"model={model}",
            "train=false",
            "test=false",
            *QUIET,
            f"paths.log_dir={tmp_path}",
        ]
    )
    run = Training(cfg, track=False)
    options = run.model.hparams
    assert options.channel_independent and options.normalization == "revin"
    assert options.segment_len == 24  # hourly: a day
    assert run.cfg.model.segment_len == 24  # the run's config holds the number: logged and bundled as run
    assert cfg.model.segment_len == "auto"  # the caller's config is left as given
    assert run.model.net.n_targets == 24  # one channel of 24-step segments
    if model == "transformer":
        assert run.cfg.model.net.label_len == 2 and run.model.net.label_len == 2  # half of 4 encoder segments


def test_the_bundled_default_run_beats_seasonal_naive_and_says_so(tmp_path, caplog):
    """`make train` as shipped: LSTM seq2seq on the weekly Mauna Loa CO2 record, every default kept."""
    cfg = compose([*QUIET, f"paths.log_dir={tmp_path}"])
    assert cfg.data.name == "co2"
    with caplog.at_level("INFO", logger="tsattn.training.train"):
        run = Training(cfg, track=False)
        metrics = run.run()
    assert metrics["test/skill_snaive"] > 0.5, metrics  # measured +83% (README)
    assert metrics["test/mse"] < metrics["test/snaive_mse"] and metrics["test/mse"] < metrics["test/naive_mse"]
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("done: ")]
    assert re.search(r"skill vs seasonal naive \+\d+\.\d% \(beats it\)", line), line
    # The schedule did not stop training on its first epochs: the best weights come later.
    best = run.trainer.checkpoint_callback.best_model_path
    assert int(re.search(r"epoch(\d+)", best)[1]) >= 2, best
