"""Chronological splits: train, then validation, then test, never shuffled.

A split is a set of borders on a series' rows. Validation and test windows place their first target at or
after their border and take their lookback from the rows before it, so inputs may look back across a
border but no target ever crosses one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsattn.errors import TsattnError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Borders:
    """Row borders of one series: train [0, train_end), val [train_end, val_end), test [val_end, test_end)."""

    train_end: int
    val_end: int
    test_end: int

    def target_range(self, split: str, lookback: int) -> tuple[int, int]:
        """The rows [first, end) that the split's targets may occupy; the first leaves room for a lookback."""
        first, end = {
            "train": (0, self.train_end),
            "val": (self.train_end, self.val_end),
            "test": (self.val_end, self.test_end),
        }[split]
        return max(first, lookback), end

    def as_dict(self) -> dict[str, int]:
        return {"train_end": self.train_end, "val_end": self.val_end, "test_end": self.test_end}


SHORT_SERIES = ("tail", "keep")


class RatioSplit:
    """Split every series by fractions of its own length (the rest after train and val is test).

    Args:
        train: fraction of rows for training.
        val: fraction of rows for validation.
        short_series: what a run does when these fractions leave some series without a window in a split
            (many short series of different lengths): "tail" splits every series from its end instead
            (TailSplit, validation and test the last H rows each), "keep" keeps the fractions; either way the
            run says how many series gave no window in each split and why.
    """

    def __init__(self, train: float = 0.7, val: float = 0.1, short_series: str = "tail") -> None:
        if not (0 < train < 1 and 0 < val < 1 and train + val < 1):
            raise TsattnError(
                f"data.split: train={train} and val={val} must be fractions in (0, 1) that leave rows for test"
            )
        if short_series not in SHORT_SERIES:
            raise TsattnError(f"data.split.short_series={short_series!r}: choose tail or keep")
        self.train, self.val, self.short_series = train, val, short_series

    def borders(self, n_rows: int) -> Borders:
        train_end = int(n_rows * self.train)
        val_end = train_end + int(n_rows * self.val)
        return Borders(train_end, val_end, n_rows)


class RowSplit:
    """Split at explicit row numbers, the same for every series (the ETT protocol: 8640, 11520, 14400).

    Args:
        train_end: first row after the training rows.
        val_end: first row after the validation rows.
        test_end: first row after the test rows; None runs to the end of each series.
    """

    def __init__(self, train_end: int, val_end: int, test_end: int | None = None) -> None:
        if not 0 < train_end < val_end or (test_end is not None and test_end <= val_end):
            raise TsattnError(
                f"data.split: borders must increase (train_end={train_end}, val_end={val_end}, test_end={test_end})"
            )
        self.train_end, self.val_end, self.test_end = train_end, val_end, test_end

    def borders(self, n_rows: int) -> Borders:
        test_end = n_rows if self.test_end is None else self.test_end
        if test_end > n_rows:
            raise TsattnError(
                f"data.split: test_end={test_end} is past the end of a series with {n_rows} rows; lower the borders"
            )
        return Borders(self.train_end, self.val_end, test_end)


class TailSplit:
    """Split each series from its own end: the last `test` rows are test, the `val` rows before them
    validation, everything earlier training (M4's protocol: the 48 values after each history are test, and
    the last 48 of the history validate).

    Args:
        val: rows of validation at the end of each series' history.
        test: rows of test at the end of each series.
    """

    def __init__(self, val: int, test: int) -> None:
        if val < 1 or test < 1:
            raise TsattnError(f"data.split: val={val} and test={test} must be at least 1 row each")
        self.val, self.test = val, test

    def borders(self, n_rows: int) -> Borders:
        if n_rows <= self.val + self.test:
            raise TsattnError(
                f"data.split: a series of {n_rows} rows leaves no training rows before its last "
                f"{self.val} validation and {self.test} test rows; drop it or lower data.split.val"
            )
        return Borders(n_rows - self.val - self.test, n_rows - self.test, n_rows)


NAMED_SPLITS = ("ratio", "tail")


def resolve_split(
    split: RatioSplit | RowSplit | TailSplit | str | None, lengths: dict[str, int], lookback: int, horizon: int
) -> tuple[RatioSplit | RowSplit | TailSplit, str | None]:
    """The splitter a run uses, and a line saying why when it is not the one configured.

    `split` is a splitter, or a name: "ratio" (70/10/20 per series) or "tail" (validation and test the last
    H rows of each series: `data.split=tail`). A ratio split that would leave a series without a window in
    some split becomes a tail split when its short_series is "tail" and every series is long enough for one.

    Args:
        lengths: rows per series id.
    """
    if split is None or split == "ratio":
        split = RatioSplit()
    elif split == "tail":
        return TailSplit(val=horizon, test=horizon), None
    elif isinstance(split, str):
        raise TsattnError(
            f"data.split={split!r}: choose one of {', '.join(NAMED_SPLITS)}, or a splitter config with a _target_"
        )
    if not isinstance(split, RatioSplit) or split.short_series != "tail":
        return split, None
    windowless = windowless_series({sid: split.borders(n) for sid, n in lengths.items()}, lookback, horizon)
    short = {sid for ids in windowless.values() for sid in ids}
    if not short or min(lengths.values()) <= 2 * horizon:
        return split, None  # every series has its windows, or a tail split would leave some without training rows
    counts = ", ".join(f"{len(ids)} {name}" for name, ids in windowless.items() if ids)
    note = (
        f"data.split: {split.train:.0%} / {split.val:.0%} of each series' rows leave {len(short)} of {len(lengths)} "
        f"series without a window (of {counts}); splitting each series from its end instead (data.split=tail: "
        f"validation and test the last {horizon} rows each); data.split.short_series=keep keeps the ratio split"
    )
    return TailSplit(val=horizon, test=horizon), note


def windowless_series(borders: dict[str, Borders], lookback: int, horizon: int) -> dict[str, dict[str, str]]:
    """Per split, the series that give it no window, each with the reason (series id -> why)."""
    missing: dict[str, dict[str, str]] = {split: {} for split in SPLITS}
    for sid, b in borders.items():
        for split in SPLITS:
            first, end = b.target_range(split, lookback)
            if end - first >= horizon:
                continue
            own = {"train": b.train_end, "val": b.val_end - b.train_end, "test": b.test_end - b.val_end}[split]
            missing[split][sid] = (
                f"{own} {split} rows hold no lookback of {lookback} and horizon of {horizon}"
                if split == "train"
                else f"{own} {split} rows, fewer than the horizon of {horizon}"
                if own < horizon
                else f"{b.val_end if split == 'test' else b.train_end} rows before its {split} rows, fewer than "
                f"the lookback of {lookback}"
            )
    return missing


def window_starts(borders: Borders, split: str, lookback: int, horizon: int, stride: int = 1) -> np.ndarray:
    """Row where each window of a split begins; a window is `lookback` inputs then `horizon` targets.

    Shape:
        -> [W] int64; window w reads rows [s, s + lookback) and predicts rows [s + lookback, s + lookback + horizon).
    """
    first_target, end = borders.target_range(split, lookback)
    last_first_target = end - horizon  # the final window's targets end exactly on the border
    if last_first_target < first_target:
        return np.zeros(0, dtype=np.int64)
    return np.arange(first_target, last_first_target + 1, stride, dtype=np.int64) - lookback
