"""Calendar features: chosen from the frequency, with the right phase at known timestamps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.tseries.frequencies import to_offset

from tsattn.data.calendar import calendar_features, feature_names
from tsattn.errors import TsattnError


@pytest.mark.parametrize(
    "freq, expected",
    [
        ("15min", ["minute_of_hour", "hour_of_day", "day_of_week", "day_of_year"]),
        ("h", ["hour_of_day", "day_of_week", "day_of_year"]),
        ("D", ["day_of_week", "day_of_year"]),
        ("W", ["day_of_year"]),
        ("MS", ["month_of_year"]),
        ("YS", []),
    ],
)
def test_features_follow_the_frequency(freq, expected):
    assert feature_names(to_offset(freq)) == expected


def test_hour_of_day_phase():
    time = pd.DatetimeIndex(["2010-01-04 00:00", "2010-01-04 06:00", "2010-01-04 12:00"])  # a Monday
    features = calendar_features(time, ["hour_of_day", "day_of_week"])
    np.testing.assert_allclose(features[:, 0], [0.0, 1.0, 0.0], atol=1e-6)  # sin(2 pi h / 24)
    np.testing.assert_allclose(features[:, 1], [1.0, 0.0, -1.0], atol=1e-6)  # cos
    assert features[0, 2] == pytest.approx(0.0) and features[0, 3] == pytest.approx(1.0)  # Monday 00:00


def test_same_timestamp_same_features_whatever_the_series():
    a = calendar_features(pd.date_range("2010-03-01", periods=48, freq="h"), ["hour_of_day"])
    assert np.allclose(a[:24], a[24:], atol=1e-6)  # a daily cycle repeats exactly


def test_unknown_feature_is_a_user_error():
    with pytest.raises(TsattnError, match="unknown feature 'fortnight'"):
        feature_names(to_offset("h"), ["fortnight"])


@pytest.mark.parametrize(
    "freq, season", [("15min", 96), ("h", 24), ("D", 7), ("W", 52), ("MS", 12), ("QS", 4), ("YS", 1)]
)
def test_season_length_follows_the_frequency(freq, season):
    from tsattn.data.calendar import season_length

    assert season_length(to_offset(freq)) == season


@pytest.mark.parametrize(
    "freq, seasons",
    [
        ("15min", [96, 672]),
        ("30min", [48, 336]),
        ("h", [24, 168]),
        ("D", [7, 365]),
        ("2h", [12, 84]),
        ("2D", []),
        ("B", [5]),
        ("W", [52]),
        ("MS", [12]),
        ("QS", [4]),
        ("YS", []),
    ],
)
def test_season_candidates_are_a_day_and_a_week_or_a_year(freq, seasons):
    """docs/data.md lists the same table: every season the strongest simple forecast is chosen among."""
    from tsattn.data.calendar import season_candidates

    assert season_candidates(to_offset(freq)) == seasons
