"""Put parsed rows on a regular time grid: order, duplicates, frequency, gaps and empty values.

Models read windows by row offset, so a missing hour silently shifts every later window by one step.
Gaps are therefore an error unless the user chooses a fill policy, and every fill is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from tsattn.data.series import Series
from tsattn.errors import TsattnError

log = logging.getLogger(__name__)

MISSING_POLICIES = ("error", "interpolate", "ffill")
_FILL_HINT = "set data.missing=interpolate (or ffill) to fill them"


def regularise(
    table: pd.DataFrame, columns: Sequence[str], name: str, missing: str, freq: str | None
) -> tuple[list[Series], pd.DateOffset]:
    """Turn a table of (id, time, line, *columns) rows into regular series.

    Args:
        table: one row per observation; `line` is the row's line in the source file, for messages.
        columns: the value columns, in the order the series keep them.
        name: the source file, for messages.
        missing: "error", "interpolate" or "ffill".
        freq: a pandas frequency alias, or None to infer it.

    Returns:
        The series sorted by id, and the frequency they share.
    """
    table = _sorted_by_time(table, name)
    _reject_duplicates(table, name)
    offset = _frequency(table, name, freq)

    series, filled_times, filled_values = [], 0, 0
    for series_id, rows in table.groupby("id", sort=True):
        time = pd.DatetimeIndex(rows["time"])
        grid = pd.date_range(time[0], time[-1], freq=offset)
        off_grid = ~time.isin(grid)
        if off_grid.any():
            i = int(np.flatnonzero(off_grid)[0])
            raise TsattnError(
                f"{name} line {rows['line'].iloc[i]}: timestamp {time[i]} of series {series_id!r} is off the "
                f"regular {offset.freqstr} grid that starts at {time[0]}; resample the file to one frequency "
                "or set data.freq"
            )
        frame = rows.set_index("time")[list(columns)]
        gaps = len(grid) - len(time)
        empties = int(frame.isna().to_numpy().sum())
        if missing == "error":
            _reject_gaps(frame, grid, rows, gaps, series_id, offset, name)
        if gaps or empties:
            frame = _fill(frame.reindex(grid), missing, series_id, name)
            filled_times += gaps
            filled_values += empties
        series.append(Series(id=str(series_id), time=grid, values=frame.to_numpy(dtype=np.float32)))

    if filled_times or filled_values:
        log.warning(
            "%s: filled %d missing timestamps and %d empty values (data.missing=%s)",
            name,
            filled_times,
            filled_values,
            missing,
        )
    return series, offset


def _sorted_by_time(table: pd.DataFrame, name: str) -> pd.DataFrame:
    backwards = table.groupby("id", sort=False)["time"].diff() < pd.Timedelta(0)
    if backwards.any():
        first = table.loc[backwards.idxmax()]
        log.warning(
            "%s: rows were not in time order (first at line %d, series %r); sorted them by time",
            name,
            first["line"],
            first["id"],
        )
    return table.sort_values(["id", "time"], kind="stable").reset_index(drop=True)


def _reject_duplicates(table: pd.DataFrame, name: str) -> None:
    duplicated = table.duplicated(["id", "time"], keep=False)
    if duplicated.any():
        first = table[duplicated].iloc[0]
        twins = table[duplicated & (table["id"] == first["id"]) & (table["time"] == first["time"])]
        lines = " and ".join(str(line) for line in sorted(twins["line"])[:2])
        raise TsattnError(
            f"{name}: series {first['id']!r} has duplicate timestamp {first['time']} (lines {lines}); "
            "keep one row per timestamp (aggregate or drop the duplicates)"
        )


def _frequency(table: pd.DataFrame, name: str, freq: str | None) -> pd.DateOffset:
    if freq is not None:
        try:
            return to_offset(freq)
        except ValueError:
            raise TsattnError(f"data.freq={freq!r} is not a pandas frequency; use e.g. h, 15min, D, W, MS") from None
    steps = table.groupby("id", sort=False)["time"].diff().dropna()
    if steps.empty:
        raise TsattnError(f"{name}: every series has a single row, so no frequency can be inferred; add history")
    # Try pandas' own inference on the first regular-looking series: it knows month and business-day
    # calendars that a fixed step cannot express. Fall back to the most common step.
    for _, rows in table.groupby("id", sort=False):
        if len(rows) >= 3:
            inferred = pd.infer_freq(pd.DatetimeIndex(rows["time"]))
            if inferred is not None:
                return to_offset(inferred)
            break
    return to_offset(steps.mode().iloc[0])


def _reject_gaps(
    frame: pd.DataFrame,
    grid: pd.DatetimeIndex,
    rows: pd.DataFrame,
    gaps: int,
    series_id: str,
    offset: pd.DateOffset,
    name: str,
) -> None:
    if gaps:
        first_gap = grid[~grid.isin(frame.index)][0]
        raise TsattnError(
            f"{name}: series {series_id!r} is missing {gaps} timestamp{'s' * (gaps != 1)} of its {offset.freqstr} grid "
            f"(first: {first_gap}); add the rows, or {_FILL_HINT}"
        )
    empty = frame.isna()
    if empty.to_numpy().any():
        column = empty.any().idxmax()
        line = rows["line"].iloc[int(np.flatnonzero(empty[column].to_numpy())[0])]
        raise TsattnError(
            f"{name} line {line}: empty value in column {column!r} of series {series_id!r} "
            f"({int(empty.to_numpy().sum())} in all); fill them in the file, or {_FILL_HINT}"
        )


def _fill(frame: pd.DataFrame, missing: str, series_id: str, name: str) -> pd.DataFrame:
    hollow = frame.columns[frame.isna().all()]
    if len(hollow):
        raise TsattnError(f"{name}: column {hollow[0]!r} of series {series_id!r} has no values at all; remove it")
    if missing == "interpolate":
        # Linear in time on a regular grid; the edges take the nearest observed value.
        return frame.interpolate(method="linear", limit_direction="both")
    return frame.ffill().bfill()
