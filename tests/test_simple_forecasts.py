"""The strongest simple forecast: every candidate season scored, the validation windows choose, and the test
windows choose nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tsattn.data.datamodule import ForecastDataModule
from tsattn.data.naive import choose, naive_seasons, rule_key, rule_label, rule_season
from tsattn.training.train import summary

WEEK = 336  # half-hours


def half_hourly_demand(weeks: int = 10, seed: int = 0) -> pd.DataFrame:
    """A half-hourly load with a daily shape, and weekends at a lower level than weekdays: a weekly cycle that
    repeating yesterday misses on Mondays and Saturdays."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2024-01-01", periods=weeks * WEEK, freq="30min")  # a Monday
    daily = np.sin(2 * np.pi * np.arange(len(time)) / 48)
    weekend = np.where(time.dayofweek >= 5, -2.0, 0.0)
    load = 10.0 + daily + weekend + 0.05 * rng.standard_normal(len(time))
    return pd.DataFrame({"time": time.strftime("%Y-%m-%d %H:%M"), "load": load})


def datamodule(path, lookback: int) -> ForecastDataModule:
    data = ForecastDataModule(str(path), lookback=lookback, horizon=48, calendar="none")
    data.setup()
    return data


@pytest.fixture(scope="module")
def demand_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("demand") / "demand.csv"
    half_hourly_demand().to_csv(path, index=False)
    return path


def test_a_week_of_lookback_chooses_last_weeks_values(demand_csv):
    data = datamodule(demand_csv, lookback=WEEK)
    assert data.season_candidates == [48, WEEK]
    errors = data.naive_errors["val"]
    assert set(errors) == {1, 48, WEEK}
    assert errors[WEEK] < errors[48] < errors[1]  # the week beats the day, which beats the last value
    assert data.best_naive_season == WEEK
    batch = data.datasets["test"][[0, 5]]
    np.testing.assert_array_equal(batch["best_naive"], batch["x"][:, :48, :1])  # a week ago: the lookback's start


def test_a_rule_longer_than_the_lookback_is_not_tried(demand_csv):
    data = datamodule(demand_csv, lookback=100)
    assert set(data.naive_errors["val"]) == {1, 48}  # a week does not fit in 100 steps
    assert data.best_naive_season == 48


def test_the_test_split_chooses_nothing(demand_csv, tmp_path):
    """Rewriting every row after the validation border to a pattern that favours the last value changes the
    test scores of the rules but neither their validation scores nor the choice."""
    frame = pd.read_csv(demand_csv)
    val_end = int(len(frame) * 0.8)
    frame.loc[val_end:, "load"] = 10.0 + 0.001 * np.arange(len(frame) - val_end)  # a slow ramp, no cycle
    changed = tmp_path / "changed.csv"
    frame.to_csv(changed, index=False)
    before, after = datamodule(demand_csv, WEEK), datamodule(changed, WEEK)
    assert after.naive_errors["val"] == pytest.approx(before.naive_errors["val"])
    assert after.best_naive_season == before.best_naive_season == WEEK
    assert choose(after.naive_errors["test"]) == 1  # on the ramp the last value wins, and is not chosen
    assert after.naive_errors["test"][1] < after.naive_errors["test"][WEEK]


def test_rule_names_round_trip_and_the_summary_names_the_rule():
    assert naive_seasons([48, 336, 672], 336) == [1, 48, 336]
    for season in (1, 48, 336):
        assert rule_season(rule_key(season)) == season
    assert rule_season("seasonal_naive_x") is None and rule_season("last") is None
    assert choose({1: 0.5, 24: 0.5, 168: 0.7}) == 1  # a tie goes to the simpler rule
    metrics = {"test/mse": 0.02, "test/best_naive_mse": 0.04, "test/skill_best_naive": 0.5}
    line = summary(metrics, rule_label(336))
    assert "skill vs the strongest simple forecast (seasonal naive at 336 steps, chosen on validation) +50.0%" in line


def weekly_hours(weeks: int = 12, seed: int = 0) -> pd.DataFrame:
    """Hourly values with a day shape and a level per weekday (weekends low, Mondays ramping): yesterday's
    same hour misses every change of weekday, last week's same hour misses only the noise."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2024-01-01", periods=weeks * 168, freq="h")
    level = np.array([1.0, 2.0, 2.0, 2.0, 1.5, -1.5, -2.0])[time.dayofweek]
    value = 10.0 + level + np.sin(2 * np.pi * time.hour / 24) + 0.1 * rng.standard_normal(len(time))
    return pd.DataFrame({"time": time.strftime("%Y-%m-%d %H:%M"), "value": value})


@pytest.mark.parametrize("model", ["lstm_seq2seq", "attention_seq2seq", "transformer"])
def test_each_forecaster_learns_a_weekly_cycle_with_a_week_of_lookback(model, tmp_path, caplog):
    """With its defaults (linear path, training length in steps) and a short schedule: it beats the daily
    seasonal naive forecast by far and matches last week's values within 10%, and its summary names that rule."""
    from tsattn.config import compose
    from tsattn.training.train import Training

    path = tmp_path / "weekly.csv"
    weekly_hours().to_csv(path, index=False)
    overrides = [
        "data=csv",
        f"data.path={path}",
        "data.lookback=168",
        "data.horizon=24",
        f"model={model}",
        "training_length.epochs=3",
        "training_length.min_steps=60",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=none",
        f"paths.log_dir={tmp_path}",
    ]
    with caplog.at_level("INFO", logger="tsattn.training.train"):
        metrics = Training(compose(overrides), track=False).run()
    daily, weekly = metrics["test/seasonal_naive_24_mse"], metrics["test/seasonal_naive_168_mse"]
    assert weekly < daily / 5  # the data: a week ahead is the rule to learn
    assert metrics["test/best_naive_mse"] == pytest.approx(weekly)  # validation chose it
    assert metrics["test/mse"] < daily / 3, metrics
    assert metrics["test/mse"] < 1.1 * weekly, metrics
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("done: ")]
    assert "the strongest simple forecast (seasonal naive at 168 steps, chosen on validation)" in line


def _weather_run(tmp_path, *overrides: str):
    from tsattn.config import compose
    from tsattn.training.train import Training

    settings = [
        "data=weather",
        "data.lookback=48",
        "data.horizon=12",
        "trainer.max_epochs=2",
        "+trainer.limit_train_batches=3",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=none",
        f"paths.log_dir={tmp_path}",
        *overrides,
    ]
    training = Training(compose(settings), track=False)
    return training, training.run()


@pytest.mark.parametrize("kept", [True, False])
def test_the_fitted_start_is_kept_unless_an_epoch_beats_it_on_validation(tmp_path, caplog, monkeypatch, kept):
    """The ridge start is scored by the validation loop every epoch uses (it equals the ridge fit's own
    validation MSE) and stays the run's model unless an epoch scores below it. At a zero learning rate every
    epoch ties with the start, which stays (its head still at zero), also when the run is resumed with
    ckpt_path=last; against a start scored worse than any epoch, the best epoch is the model and the start's
    files are gone."""
    import tsattn.training.start as start_module

    if not kept:
        monkeypatch.setattr(start_module, "validate_start", lambda *args: 1e9)
    overrides = ["model.optimizer.lr=0.0"] if kept else []
    with caplog.at_level("INFO", logger="tsattn.training.train"):
        _, metrics = _weather_run(tmp_path, *overrides)
    start = metrics["val/loss_start"]
    assert metrics["val/start_kept"] == float(kept)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("no epoch beat the linear path's")]
    assert len(said) == kept
    saved = list(tmp_path.glob("checkpoints/*/*/start.*"))
    if not kept:
        assert start == 1e9 and metrics["val/loss_best"] < 1.0 and saved == []
        return
    assert start == pytest.approx(metrics["linear_path/val_mse"], rel=1e-3)
    assert metrics["val/loss_best"] == start
    (checkpoint,) = [p for p in saved if p.suffix == ".ckpt"]
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert not state["forecaster.net.head.linear.weight"].any()  # the start: the path alone
    assert state["forecaster.net.linear_path.weight"].abs().sum() > 0
    tested = [r.getMessage() for r in caplog.records if r.getMessage().startswith("testing the best checkpoint")]
    assert tested[-1].endswith("start.ckpt")
    _, resumed = _weather_run(tmp_path, *overrides, "ckpt_path=last")
    assert resumed["val/start_kept"] == 1.0 and resumed["test/mse"] == pytest.approx(metrics["test/mse"])
