"""ForecastModule: schedules, RevIN, quantiles, validation and test metrics, checkpoints, and learning."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from tsattn.config import compose
from tsattn.metrics import pinball
from tsattn.models.lstm_seq2seq import LSTMSeq2Seq
from tsattn.training.module import ForecastModule
from tsattn.training.schedules import TeacherForcing
from tsattn.training.train import build_components, train

SHORT = [
    "data=weather",
    "data.lookback=48",
    "data.horizon=12",
    "data.batch_size=128",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=none",
]


def _cfg(tmp_path, *overrides):
    return compose([*SHORT, f"paths.log_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}", *overrides])


def test_teacher_forcing_schedules():
    assert [TeacherForcing("constant", start=0.7)(e) for e in (0, 5)] == [0.7, 0.7]
    linear = TeacherForcing("linear", start=1.0, end=0.2, epochs=4)
    assert [round(linear(e), 6) for e in (0, 1, 2, 4, 9)] == [1.0, 0.8, 0.6, 0.2, 0.2]
    exponential = TeacherForcing("exponential", start=1.0, end=0.3, gamma=0.5)
    assert [exponential(e) for e in (0, 1, 2, 3)] == [1.0, 0.5, 0.3, 0.3]


@pytest.fixture(scope="module")
def weather_module_batch(weather_temperature):
    test = weather_temperature.datasets["test"]
    return test[list(range(0, len(test), 20))], weather_temperature.dims


@pytest.mark.parametrize("normalization", ["revin", "last_value", "none"])
def test_normalisation_makes_forecasts_follow_the_window_level_and_scale(weather_module_batch, normalization):
    batch, dims = weather_module_batch
    torch.manual_seed(0)
    module = ForecastModule(LSTMSeq2Seq(**dims, hidden_size=16), normalization=normalization).eval()

    def follows(scale: float, shift: float) -> bool:
        x = batch["x"].clone()
        x[..., :1] = x[..., :1] * scale + shift  # the value channel; calendar channels stay as they are
        with torch.no_grad():
            base, moved = module(batch)["y_hat"], module(dict(batch, x=x))["y_hat"]
        return torch.allclose(moved, base * scale + shift, rtol=1e-4, atol=1e-4)

    # RevIN: a shifted and scaled window gives the same forecast, shifted and scaled. The last value
    # subtracted: shifted only. Without normalisation: neither.
    assert (follows(1.0, 5.0), follows(3.0, 5.0)) == {
        "revin": (True, True),
        "last_value": (True, False),
        "none": (False, False),
    }[normalization]


def test_quantile_training_with_pinball_covers_the_truth(weather_module_batch):
    batch, dims = weather_module_batch
    # Noise the network cannot predict keeps the quantiles apart: on the bare batch the LSTM all but interpolates
    # the 175 windows, its three quantiles collapse onto the truth, and the share under each swung between 0.03
    # and 0.47 from one step to the next (one CPU's rounding passed a bound another's failed).
    noisy = dict(batch, y=batch["y"] + 0.5 * torch.randn(batch["y"].shape, generator=torch.Generator().manual_seed(0)))
    torch.manual_seed(0)
    module = ForecastModule(LSTMSeq2Seq(**dims, hidden_size=32, quantiles=[0.1, 0.5, 0.9]))
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    steps = 200
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)  # settles at the pinball optimum
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one summation order: `make test JOBS=0` (two threads) trains the same weights
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = module.loss(module(noisy, 1.0)["y_hat"], noisy["y"], noisy)
            loss.backward()
            optimizer.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        # The path the pinball loss trained (teacher-forced): at its optimum each quantile has its level's share of
        # the targets under it (0.098 / 0.500 / 0.901 measured); a loss that ignored the levels would put each near
        # 0.5, and levels swapped between outputs would reverse the order.
        y_hat = module.eval()(noisy, 1.0)["y_hat"]  # [B, H, 1, 3]
    below = (noisy["y"].unsqueeze(-1) <= y_hat).float().mean(dim=(0, 1, 2))  # share under each quantile
    torch.testing.assert_close(below, torch.tensor([0.1, 0.5, 0.9]), atol=0.04, rtol=0.0)
    torch.testing.assert_close(module.point(y_hat), y_hat[..., 1])


class _Recorder(L.Callback):
    def __init__(self):
        self.epochs = []

    def on_train_epoch_end(self, trainer, pl_module):
        # Runs after the epoch's validation, once the epoch's training logs are aggregated.
        self.epochs.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def test_both_validation_losses_and_the_schedule_are_logged_every_epoch(tmp_path):
    cfg = _cfg(
        tmp_path,
        "trainer.max_epochs=3",
        "+trainer.limit_train_batches=3",
        "+trainer.limit_val_batches=2",
        "model.segment_len=1",  # one decoder step per timestep: teacher forcing feeds the steps after the first
        "model.teacher_forcing.kind=linear",
        "model.teacher_forcing.start=1.0",
        "model.teacher_forcing.epochs=2",
        "model.teacher_forced_validation=true",
        "callbacks=none",
    )
    datamodule, model, trainer = build_components(cfg)
    recorder = _Recorder()
    trainer.callbacks.append(recorder)
    trainer.fit(model, datamodule=datamodule)
    assert len(recorder.epochs) == 3
    for epoch in recorder.epochs:
        assert {"val/loss", "val/loss_tf", "val/mse", "val/mae"} <= set(epoch)
        assert epoch["val/loss"] != epoch["val/loss_tf"]  # free-running and teacher-forced differ
    assert [e["train/teacher_forcing_ratio"] for e in recorder.epochs] == [1.0, 0.5, 0.0]
    # 3 epochs of 3 steps: a one-epoch warm-up from 1/4 of the rate, then a cosine from the rate to 5% of it
    # (half way down at the third epoch's first step: 0.05 + 0.95 / 2).
    rates = [e["train/lr"] / cfg.model.optimizer.lr for e in recorder.epochs]
    assert rates == pytest.approx([0.25, 1.0, 0.525])


def test_pinball_is_the_quantile_loss_written_out():
    y = torch.tensor([[[1.0], [3.0]]])  # [B=1, H=2, C=1]
    y_hat = torch.tensor([[[[0.0, 1.0, 4.0]], [[2.0, 3.0, 5.0]]]])  # [1, 2, 1, Q=3], levels 0.1, 0.5, 0.9
    levels = [0.1, 0.5, 0.9]
    terms = []
    for h, truth in enumerate([1.0, 3.0]):
        for qi, q in enumerate(levels):
            error = truth - float(y_hat[0, h, 0, qi])
            terms.append(q * error if error >= 0 else (q - 1) * error)  # under-forecasts cost q, over 1 - q
    assert float(pinball(y_hat, y, levels)) == pytest.approx(sum(terms) / len(terms))
    module = ForecastModule(LSTMSeq2Seq(n_features=1, n_targets=1, hidden_size=4, quantiles=levels))
    assert float(module.loss(y_hat, y, {})) == pytest.approx(sum(terms) / len(terms))  # quantile nets train on it


def test_test_metrics_and_both_baselines_equal_a_hand_computation(tmp_path):
    """A trained DLinear on the weather test split: its scores, the last value's and the same hour
    yesterday's, per step and overall, recomputed here window by window from the scaled series."""
    from tsattn.training.train import Training

    cfg = _cfg(tmp_path, "model=linear", "trainer.max_epochs=1", "+trainer.limit_train_batches=5", "callbacks=none")
    run = Training(cfg, track=False)
    metrics = run.run()
    datamodule = run.datamodule
    dataset = datamodule.datasets["test"]
    batch = dataset[torch.arange(len(dataset))]
    with torch.no_grad():
        model = run.model.eval()(batch)["y_hat"].double()[..., 0].numpy()  # [W, H]
    truth, last, yesterday = np.empty_like(model), np.empty_like(model), np.empty_like(model)
    for w in range(len(dataset)):
        series = datamodule.collection.series[int(batch["series"][w])]
        scaled = datamodule.scaler.transform(series.id, series.values)[:, 0].astype(np.float64)
        first = int(batch["first_target"][w])
        truth[w] = scaled[first : first + 12]
        last[w] = scaled[first - 1]
        yesterday[w] = scaled[first - 24 : first - 12]  # H=12 < 24: each step's value a day earlier
    hand = {}  # each forecast's MSE, recomputed here: the skills are checked against these, not the logged ones
    for name, forecast in (("", model), ("naive_", last), ("snaive_", yesterday)):
        per_step = ((forecast - truth) ** 2).mean(axis=0)
        hand[name] = per_step.mean()
        for h in range(12):
            assert metrics[f"test/{name}mse_h{h + 1}"] == pytest.approx(per_step[h], rel=1e-5)
        assert metrics[f"test/{name}mse"] == pytest.approx(per_step.mean(), rel=1e-5)
        assert metrics[f"test/{name}mae"] == pytest.approx(np.abs(forecast - truth).mean(), rel=1e-5)
    assert metrics["test/skill_mse"] == pytest.approx(1 - hand[""] / hand["naive_"], rel=1e-5)
    assert metrics["test/skill_snaive"] == pytest.approx(1 - hand[""] / hand["snaive_"], rel=1e-5)
    # Three different forecasts, so the checks above could not pass by comparing one with itself.
    assert len({round(metrics[k], 6) for k in ("test/mse", "test/naive_mse", "test/snaive_mse")}) == 3
    assert "test/mse_h13" not in metrics
    # A point forecast's CRPS is its MAE, logged under the name quantile runs are compared on.
    assert metrics["test/crps"] == pytest.approx(np.abs(model - truth).mean(), rel=1e-5)
    assert metrics["test/crps_h12"] == pytest.approx(np.abs(model - truth)[:, 11].mean(), rel=1e-5)
    assert not any(key.startswith(("test/coverage", "test/width")) for key in metrics)


def test_interval_pairs_are_the_mirrored_levels():
    from tsattn.intervals import interval_pairs

    assert interval_pairs([0.05, 0.1, 0.5, 0.9, 0.95]) == [(0, 4, 90), (1, 3, 80)]
    assert interval_pairs([0.25, 0.5, 0.75]) == [(0, 2, 50)]
    assert interval_pairs([0.1, 0.5, 0.8]) == []  # 0.1 without 0.9: no central interval


def test_quantile_runs_log_crps_coverage_and_width_equal_to_a_hand_computation(tmp_path):
    """A quantile LSTM on the weather test split: CRPS (tsattn.metrics.crps, checked against closed forms in
    test_crps.py), the 80% and 90% intervals' coverage and width, overall and per step, recomputed here from
    the test windows' forecasts."""
    from tsattn.metrics import crps
    from tsattn.training.train import Training

    levels = [0.05, 0.1, 0.5, 0.9, 0.95]
    cfg = _cfg(
        tmp_path,
        "model=lstm_seq2seq",
        "model.net.hidden_size=8",
        f"model.net.quantiles=[{','.join(map(str, levels))}]",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=5",
        "callbacks=none",
    )
    run = Training(cfg, track=False)
    metrics = run.run()
    dataset = run.datamodule.datasets["test"]
    batch = dataset[torch.arange(len(dataset))]
    with torch.no_grad():
        y_hat = run.model.eval()(batch)["y_hat"].double().numpy()  # [W, H, 1, Q]
    y = batch["y"].double().numpy()  # [W, H, 1]
    assert metrics["test/crps"] == pytest.approx(crps(y, y_hat, levels), rel=1e-5)
    assert metrics["test/crps_h1"] == pytest.approx(crps(y[:, 0], y_hat[:, 0], levels), rel=1e-5)
    q = np.array(levels)
    error = y[..., None] - y_hat
    mean_pinball = (2 * np.maximum(q * error, (q - 1) * error)).mean()  # what was logged before the integral
    assert metrics["test/crps"] != pytest.approx(mean_pinball, rel=1e-3)
    for percent, (lower, upper) in ((80, (1, 3)), (90, (0, 4))):
        inside = (y >= y_hat[..., lower]) & (y <= y_hat[..., upper])
        width = y_hat[..., upper] - y_hat[..., lower]
        assert metrics[f"test/coverage_{percent}"] == pytest.approx(inside.mean(), rel=1e-6)
        assert metrics[f"test/coverage_{percent}_h12"] == pytest.approx(inside[:, 11].mean(), rel=1e-6)
        assert metrics[f"test/width_{percent}"] == pytest.approx(width.mean(), rel=1e-5)
        assert metrics[f"test/width_{percent}_h12"] == pytest.approx(width[:, 11].mean(), rel=1e-5)
    assert 0 < metrics["test/coverage_80"] < metrics["test/coverage_90"] <= 1  # wider interval, more covered
    assert metrics["test/width_80"] < metrics["test/width_90"]
    assert metrics["test/crps"] != pytest.approx(metrics["test/mae"])  # not the point forecast's MAE


@pytest.mark.parametrize("model", ["lstm_seq2seq", "attention_seq2seq", "transformer", "linear"])
def test_checkpoint_round_trip_gives_identical_forecasts(tmp_path, model):
    overrides = [
        f"model={model}",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
    ]
    cfg = _cfg(tmp_path, *overrides)
    datamodule, trained, trainer = build_components(cfg)
    trainer.fit(trained, datamodule=datamodule)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    _, fresh, _ = build_components(_cfg(tmp_path, *overrides, "seed=99"))  # other initial weights
    fresh.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    batch = datamodule.datasets["test"][list(range(64))]
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(batch)["y_hat"], trained.eval()(batch)["y_hat"], rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ["model=lstm_seq2seq"],
        ["model=attention_seq2seq"],
        # One epoch: the Transformers' steps cost the most, and 25 of them already beat the last value by far
        # (skill 0.91 autoregressive, 0.93 generative, measured).
        ["model=transformer", "model.net.decoder_mode=autoregressive", "trainer.max_epochs=1"],
        ["model=transformer", "model.net.decoder_mode=generative", "trainer.max_epochs=1"],  # auto segments
        ["model=linear"],
    ],
    ids=["lstm", "attention", "transformer_ar", "transformer_gen", "linear"],
)
def test_short_training_beats_the_last_value(tmp_path, overrides):
    cfg = _cfg(
        tmp_path,
        "trainer.max_epochs=2",
        *overrides,
        "+trainer.limit_train_batches=25",
        "+trainer.limit_val_batches=3",
        "+trainer.limit_test_batches=2",  # 2,048 of the 3,482 test windows: a held-back slice
    )
    metrics = train(cfg)
    assert metrics["test/skill_mse"] > 0.0, metrics["test/mse"]


@pytest.mark.parametrize("lr, warned", [(0.005, True), (0.0, False)])
def test_a_run_whose_last_epoch_is_its_best_says_it_may_be_undertrained(tmp_path, caplog, lr, warned):
    """Two epochs that keep improving validation end with the advice to train longer; at lr=0 the second epoch
    only ties the first (early stopping counts it as no improvement), so the best is not the last."""
    from tsattn.training.train import Training

    cfg = _cfg(
        tmp_path, "model=linear", "trainer.max_epochs=2", "+trainer.limit_train_batches=5", f"model.optimizer.lr={lr}"
    )
    with caplog.at_level("WARNING", logger="tsattn.training.train"):
        metrics = Training(cfg, track=False).run()
    advice = (
        "the best validation loss came at the last of the 2 epochs: the model may be undertrained; "
        "train longer with trainer.max_epochs=4"
    )
    assert (advice in caplog.text) is warned
    assert metrics.get("val/best_is_last") == (1.0 if warned else None)
