"""The future covariates a forecast reads over its horizon, from the user's future table (`--future`).

The table holds, for each series of the history, the time of each of the H steps after the series' last
row and the value of every future covariate there (the id column too, for a long model). Everything a user
can get wrong is one TsattnError naming the file, the series or the line, and the fix: a missing column or
row, an empty cell, a time that is not one of those steps, a repeated step, a series with no history.
Rows further ahead than H steps are ignored, so one long table serves any horizon.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tsattn.data.io import cells_as_read, numeric_column, parse_times, require_columns
from tsattn.data.series import SeriesCollection
from tsattn.errors import TsattnError
from tsattn.inference.windows import future_grid


def require_future_choice(schema: Mapping[str, Any], given: bool, option: str = "--future") -> None:
    """A model with future covariates needs their future values; a model without them refuses any."""
    names = schema.get("future_covariates") or []
    if names and not given:
        raise TsattnError(
            f"this model reads the future covariates {', '.join(names)} over its {schema['horizon']} forecast "
            f"steps: pass {option} with their values for the steps after each series' end"
        )
    if given and not names:
        raise TsattnError(f"this model was trained without future covariates: leave out {option}")


def future_from_frame(
    schema: Mapping[str, Any],
    history: SeriesCollection,
    frame: pd.DataFrame,
    name: str,
    skipped_ok: bool = False,
    lines: bool = True,
) -> np.ndarray:
    """The future covariates of the H steps after each series' end, in the order of `history.series`.

    Args:
        schema: the bundle's schema (columns, layout, frequency, horizon).
        history: the validated history; its series' last rows decide which times the table must hold.
        frame: the future table, cells as text (read from CSV) or typed.
        name: where the table came from, for messages.
        skipped_ok: rows of series that are not in `history` are ignored (series left out of the history
            on purpose, as --skip-short does) instead of refused.
        lines: name a row by its CSV line (the header is line 1); False: by its 0-based row (a DataFrame,
            a Parquet file).

    Returns:
        Real-unit values. Shape: [S, H, U].
    """
    columns, horizon = list(schema["future_covariates"]), int(schema["horizon"])
    time_col, id_col = schema["time_col"], schema["id_col"]
    if frame.empty:
        raise TsattnError(
            f"{name} has no rows; it needs the future covariates of the {horizon} steps after each series"
        )
    frame = cells_as_read(frame, name)  # typed numbers and times as they are, anything else as text
    require_columns(frame, [time_col], "the model's time column", name)
    if id_col is not None:
        require_columns(frame, [id_col], "the model's id column", name)
    require_columns(frame, columns, "the model's future covariates", name)
    where = _line if lines else _row
    times = parse_times(frame[time_col], time_col, name, schema.get("time_format")).to_numpy()
    ids = (
        frame[id_col].astype(str).str.strip().to_numpy()
        if id_col is not None
        else np.full(len(frame), history.series[0].id, dtype=object)
    )
    values = np.stack([numeric_column(frame[c], c, name) for c in columns], axis=1)  # [R, U]
    empty = np.isnan(values)
    if empty.any():
        row, col = np.argwhere(empty)[0]
        raise TsattnError(
            f"{name} {where(row)}: column {columns[col]!r} is empty; every future step needs a value "
            "(the model reads it as known)"
        )
    known = {s.id for s in history.series}
    stray = [i for i in dict.fromkeys(ids) if i not in known]
    if stray and not skipped_ok:
        raise TsattnError(
            f"{name}: series {stray[0]!r} has future values but no history; remove its rows or add its history"
        )
    freq = pd.tseries.frequencies.to_offset(schema["freq"])
    result = np.empty((len(history.series), horizon, len(columns)), dtype=np.float64)
    rows_of = pd.Series(np.arange(len(ids))).groupby(ids).indices
    for index, series in enumerate(history.series):
        rows = rows_of.get(series.id)
        steps = future_grid(series.time[-1:].to_numpy(), freq, horizon)[0]  # [H]
        if rows is None:
            raise TsattnError(
                f"{name}: series {series.id!r} has no future rows; give its {', '.join(columns)} for the "
                f"{horizon} steps from {pd.Timestamp(steps[0])} to {pd.Timestamp(steps[-1])}"
            )
        result[index] = _steps_of(series.id, steps, times[rows], values[rows], rows, where, freq, name)
    return result


def _steps_of(series_id, steps, times, values, rows, where, freq, name) -> np.ndarray:
    """The values at each of one series' H future steps. Shapes: steps [H], times [R], values [R, U] -> [H, U]."""
    ahead = future_grid(steps[-1:], freq, 1)[0, 0]  # on the grid beyond the horizon: ignored
    beyond = times >= ahead
    position = np.searchsorted(steps, times)
    on_grid = (position < len(steps)) & (steps[np.minimum(position, len(steps) - 1)] == times)
    wrong = ~on_grid & ~beyond
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        when = "at or before the history's end" if times[row] < steps[0] else "off the model's grid"
        raise TsattnError(
            f"{name} {where(rows[row])}: time {pd.Timestamp(times[row])} of series {series_id!r} is {when}; "
            f"its future rows are the steps from {pd.Timestamp(steps[0])} on, every {freq.freqstr}"
        )
    position, kept = position[on_grid], np.flatnonzero(on_grid)
    counts = np.bincount(position, minlength=len(steps))
    if (counts > 1).any():
        step = int(np.flatnonzero(counts > 1)[0])
        raise TsattnError(
            f"{name}: series {series_id!r} has {counts[step]} rows for {pd.Timestamp(steps[step])}; keep one per step"
        )
    if (counts == 0).any():
        step = int(np.flatnonzero(counts == 0)[0])
        raise TsattnError(
            f"{name}: series {series_id!r} has no row for {pd.Timestamp(steps[step])} (step {step + 1} of "
            f"{len(steps)}); the model needs the future covariates of every step up to its horizon"
        )
    out = np.empty((len(steps), values.shape[1]))
    out[position] = values[kept]
    return out


def _line(row: int) -> str:
    """A row named as its CSV line (the header is line 1)."""
    return f"line {int(row) + 2}"


def _row(row: int) -> str:
    """A row of a typed table, by its 0-based position."""
    return f"row {int(row)}"
