"""Standard scaling per series and channel, fit on training rows only.

The statistics come from rows [0, train_end) of each series, so nothing after the training border can leak
into the inputs through the scaler. They are plain numbers, saved as JSON beside a trained model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

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


class SeriesStatistics(Mapping):
    """Series id -> {"mean": [F], "std": [F]}: read-only views into a scaler's [S, F] arrays."""

    def __init__(self, rows: Mapping[str, int], mean: np.ndarray, std: np.ndarray) -> None:
        self._rows, self._mean, self._std = rows, mean, std

    def __getitem__(self, series_id: str) -> dict[str, np.ndarray]:
        row = self._rows[series_id]
        return {"mean": self._mean[row], "std": self._std[row]}

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, series_id: object) -> bool:
        return series_id in self._rows


class StatisticPairs(SeriesStatistics):
    """Series id -> (mean [F], std [F]): the same views as pairs, as the forecast paths read them."""

    def __getitem__(self, series_id: str) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        row = self._rows[series_id]
        return self._mean[row], self._std[row]


class StandardScaler:
    """z = (value - mean) / std, with statistics per (series, channel).

    The statistics are two [S, F] arrays and a row per series id: a million series cost 16 bytes per
    channel each and one dictionary entry, not two small arrays apiece.

    Args:
        columns: channel names, targets first.
        stats: series id -> {"mean": [F], "std": [F]}.
    """

    def __init__(self, columns: Sequence[str], stats: Mapping[str, Mapping[str, Sequence[float]]]) -> None:
        self.columns = list(columns)
        width = len(self.columns)
        self._rows = {sid: row for row, sid in enumerate(stats)}
        self._mean = np.empty((len(stats), width), dtype=np.float64)  # [S, F]
        self._std = np.empty((len(stats), width), dtype=np.float64)
        for row, entry in enumerate(stats.values()):
            self._mean[row], self._std[row] = entry["mean"], entry["std"]
        self._mean.flags.writeable = self._std.flags.writeable = False

    @property
    def stats(self) -> SeriesStatistics:
        """Series id -> {"mean": [F], "std": [F]} (read-only views)."""
        return SeriesStatistics(self._rows, self._mean, self._std)

    @property
    def pairs(self) -> StatisticPairs:
        """Series id -> (mean [F], std [F]) (read-only views)."""
        return StatisticPairs(self._rows, self._mean, self._std)

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
        row = self._rows[series_id]
        return ((values - self._mean[row]) / self._std[row]).astype(np.float32)

    def inverse_transform(self, series_id: str, values: np.ndarray) -> np.ndarray:
        """Back to real units; the last dim may hold the first C channels only (the targets).

        Shape: [..., C] -> [..., C].
        """
        row, n = self._rows[series_id], values.shape[-1]
        return (values * self._std[row, :n] + self._mean[row, :n]).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "columns": self.columns,
            "stats": {
                sid: {"mean": self._mean[row].tolist(), "std": self._std[row].tolist()}
                for sid, row in self._rows.items()
            },
        }

    @classmethod
    def from_dict(cls, state: Mapping) -> StandardScaler:
        return cls(state["columns"], state["stats"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> StandardScaler:
        return cls.from_dict(json.loads(text))
