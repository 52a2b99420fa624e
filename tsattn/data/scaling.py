"""Standard scaling per series and channel, fit on training rows only.

The statistics come from rows [0, train_end) of each series, so nothing after the training border can leak
into the inputs through the scaler. They are plain numbers, saved as JSON beside a trained model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np

from tsattn.data.series import SeriesCollection

# A channel that barely moves in the training rows is divided by 1 instead of by ~0.
MIN_STD = 1e-8


def mean_and_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of [T, F] values; a channel that barely moves gets std 1."""
    values = values.astype(np.float64)
    std = values.std(axis=0)
    return values.mean(axis=0), np.where(std < MIN_STD, 1.0, std)


def expanding_mean_and_std(values: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mean_and_std of the rows before each end: statistics a forecast made at row `end` could know.

    Shape:
        values [T, F], ends [N] (each in 1..T) -> mean [N, F], std [N, F]
    """
    # Sums of deviations from the first row keep the variance exact when the level dwarfs the spread.
    centred = values.astype(np.float64) - values[:1].astype(np.float64)  # [T, F]
    zero = np.zeros((1, values.shape[1]))
    sums = np.concatenate([zero, np.cumsum(centred, axis=0)])[ends]  # [N, F]
    squares = np.concatenate([zero, np.cumsum(centred**2, axis=0)])[ends]
    count = ends[:, None].astype(np.float64)
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return mean + values[0].astype(np.float64), np.where(std < MIN_STD, 1.0, std)


def run_mean_and_std(values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mean_and_std of each run of rows: runs begin at `starts` and end where the next begins (the last at T).

    Shape:
        values [T, F], starts [R] (increasing, starts[0] == 0) -> mean [R, F], std [R, F]
    """
    values = values.astype(np.float64)
    lengths = np.diff(np.append(starts, len(values)))[:, None].astype(np.float64)  # [R, 1]
    first = values[starts]  # [R, F]: deviations from each run's first row keep the variance exact
    centred = values - np.repeat(first, lengths[:, 0].astype(np.int64), axis=0)
    mean = np.add.reduceat(centred, starts, axis=0) / lengths
    std = np.sqrt(np.maximum(np.add.reduceat(centred**2, starts, axis=0) / lengths - mean**2, 0.0))
    return mean + first, np.where(std < MIN_STD, 1.0, std)


class StandardScaler:
    """z = (value - mean) / std, with statistics per (series, channel).

    Args:
        columns: channel names, targets first.
        stats: series id -> {"mean": [F], "std": [F]}.
    """

    def __init__(self, columns: Sequence[str], stats: Mapping[str, Mapping[str, Sequence[float]]]) -> None:
        self.columns = list(columns)
        self.stats = {
            sid: {"mean": np.asarray(s["mean"], dtype=np.float64), "std": np.asarray(s["std"], dtype=np.float64)}
            for sid, s in stats.items()
        }

    @classmethod
    def fit(cls, collection: SeriesCollection, train_ends: Mapping[str, int]) -> StandardScaler:
        """Fit on each series' rows before its training border."""
        stats = {}
        for s in collection.series:
            train = s.values[: train_ends[s.id]].astype(np.float64)  # [T_train, F]
            mean, std = mean_and_std(train)
            stats[s.id] = {"mean": mean, "std": std}
        return cls(collection.columns, stats)

    def transform(self, series_id: str, values: np.ndarray) -> np.ndarray:
        """Scale a series' values. Shape: [T, F] -> [T, F], float32."""
        s = self.stats[series_id]
        return ((values - s["mean"]) / s["std"]).astype(np.float32)

    def inverse_transform(self, series_id: str, values: np.ndarray) -> np.ndarray:
        """Back to real units; the last dim may hold the first C channels only (the targets).

        Shape: [..., C] -> [..., C].
        """
        s = self.stats[series_id]
        n = values.shape[-1]
        return (values * s["std"][:n] + s["mean"][:n]).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "columns": self.columns,
            "stats": {sid: {k: v.tolist() for k, v in s.items()} for sid, s in self.stats.items()},
        }

    @classmethod
    def from_dict(cls, state: Mapping) -> StandardScaler:
        return cls(state["columns"], state["stats"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> StandardScaler:
        return cls.from_dict(json.loads(text))
