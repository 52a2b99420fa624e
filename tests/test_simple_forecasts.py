"""The strongest simple forecast: every candidate season scored, the validation windows choose, and the test
windows choose nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
