"""Calendar features from timestamps, as sin/cos pairs.

They depend on the timestamp alone, so they are known for future steps too: decoders read them over the
horizon. Which cycles are used follows from the sampling step (an hourly series gets hour of day, day of
week and day of year; a monthly one gets month of year).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from tsattn.errors import TsattnError

# Each feature is a phase in [0, 1) computed from the timestamps.
_PHASES: dict[str, Callable[[pd.DatetimeIndex], np.ndarray]] = {
    "minute_of_hour": lambda t: t.minute.to_numpy() / 60.0,
    "hour_of_day": lambda t: (t.hour.to_numpy() + t.minute.to_numpy() / 60.0) / 24.0,
    "day_of_week": lambda t: (t.dayofweek.to_numpy() + t.hour.to_numpy() / 24.0) / 7.0,
    "day_of_year": lambda t: (t.dayofyear.to_numpy() - 1 + t.hour.to_numpy() / 24.0) / 366.0,
    "month_of_year": lambda t: (t.month.to_numpy() - 1) / 12.0,
}

# (largest step, features): the first row whose step bound exceeds the data's step wins.
_BY_STEP = (
    (pd.Timedelta(hours=1), ("minute_of_hour", "hour_of_day", "day_of_week", "day_of_year")),
    (pd.Timedelta(days=1), ("hour_of_day", "day_of_week", "day_of_year")),
    (pd.Timedelta(days=7), ("day_of_week", "day_of_year")),
    (pd.Timedelta(days=28), ("day_of_year",)),
    (pd.Timedelta(days=365), ("month_of_year",)),
)


def feature_names(freq: pd.DateOffset, features: str | Sequence[str] | None = "auto") -> list[str]:
    """The cycles to encode: chosen from the frequency ("auto"), given by name, or none (None / "none")."""
    if features is None or features == "none":
        return []
    if features == "auto":
        step = _step(freq)
        for bound, names in _BY_STEP:
            if step < bound:
                return list(names)
        return []
    unknown = [f for f in features if f not in _PHASES]
    if unknown:
        raise TsattnError(f"data.calendar: unknown feature {unknown[0]!r}; choose from {', '.join(_PHASES)}")
    return list(features)


def calendar_features(time: pd.DatetimeIndex, names: Sequence[str]) -> np.ndarray:
    """Encode each named cycle as (sin, cos) of its phase.

    Shape:
        time [T] -> [T, 2 * len(names)], float32, columns ordered name by name (sin, cos).
    """
    columns = []
    for name in names:
        angle = 2.0 * np.pi * _PHASES[name](time)
        columns += [np.sin(angle), np.cos(angle)]
    if not columns:
        return np.zeros((len(time), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)


# (largest step, the cycles a seasonal-naive forecast may repeat): durations are turned into steps of the
# data's own length; plain numbers are steps. The first is the data's dominant season (season_length).
_SEASONS = (
    (pd.Timedelta(days=1), ("1D", "7D")),  # sub-daily: a day and a week (hourly: 24 and 168; 30 min: 48 and 336)
    (pd.Timedelta(days=7), ("7D", "365D")),  # daily: a week and a year
    (pd.Timedelta(days=28), (52,)),  # weekly: a year
    (pd.Timedelta(days=32), (12,)),  # months: 28 to 31 days
    (pd.Timedelta(days=100), (4,)),  # quarters: 90 to 92 days
)


def season_candidates(freq: pd.DateOffset) -> list[int]:
    """Every cycle, in steps, that a seasonal-naive forecast of data at this frequency is tried with.

    Sub-daily data: a day and a week; daily: a week and a year (365); business days: a working week (5);
    weekly: a year (52); monthly: 12; quarterly: 4; yearly and coarser: none. A cycle shorter than two steps,
    or not a whole number of them (a week of 2-day steps), is left out.
    """
    if isinstance(freq, pd.offsets.BusinessDay):
        return [5]  # a working week; its year has no whole number of steps
    step = _step(freq)
    for bound, seasons in _SEASONS:
        if step < bound:
            # A duration that is no whole number of steps (a week of 2-day steps) is no season of this data.
            whole = [s for s in seasons if not isinstance(s, str) or pd.Timedelta(s) % step == pd.Timedelta(0)]
            steps = [int(pd.Timedelta(s) / step) if isinstance(s, str) else s for s in whole]
            return [m for m in steps if m >= 2]
    return []


def season_length(freq: pd.DateOffset) -> int:
    """The dominant cycle in steps: a day for sub-daily data, a week for daily, a year for coarser data."""
    candidates = season_candidates(freq)
    return candidates[0] if candidates else 1


def season_offsets(horizon: int, season: int) -> np.ndarray:
    """Row offsets, from a forecast's first target, of the values a seasonal-naive forecast repeats.

    Step h takes row o + h - m * (1 + h // m): the last observed season, tiled over the horizon.

    Shape: -> [H], every offset in [-m, -1]
    """
    steps = np.arange(horizon)
    return steps - season * (1 + steps // season)


def _step(freq: pd.DateOffset) -> pd.Timedelta:
    """A typical step of the frequency, from two consecutive stamps of its own.

    Anchored offsets (W-SUN, MS, YS) land on their anchors first, so `ts + offset` would understate them.
    """
    stamps = pd.date_range("2001-01-01", periods=3, freq=freq)
    return stamps[2] - stamps[1]
