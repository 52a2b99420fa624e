"""The row-per-series layout: a header, then one row per series holding its id and then its values in time order
(M4's and the UCR archive's files: `V1,V2,...` then `H1,605,586,...`). Series may differ in length: a row ends
at its last non-empty cell. The file has no timestamps, so each series starts at `start` on the grid of
`freq`; it is turned into the long layout (id, time, value) that the rest of tsattn reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsattn.errors import TsattnError

LAYOUTS = ("auto", "rows")
TIME_COLUMN = "time"


def rows_to_long(
    frame: pd.DataFrame,
    source: str,
    start: str | None,
    freq: str | None,
    value_name: str = "value",
    id_name: str | None = None,
    time_name: str = TIME_COLUMN,
    option: str = "data",
) -> pd.DataFrame:
    """One row per series -> the long layout: [id, time, value] with one row per value, times from `start`.

    Args:
        frame: the file as text cells (tsattn.data.io.read_frame), header included as column names.
        source: the file, for messages.
        start: the first time of every series (`data.start`, e.g. "2000-01-01").
        freq: the pandas frequency of the grid (`data.freq`, e.g. "h").
        value_name, id_name, time_name: the long table's column names (the id column keeps the file's
            header unless `id_name` is given).
        option: how the settings are named in messages ("data" for training, "--rows-*" for the commands).
    """
    settings = ("data.start", "data.freq") if option == "data" else ("--rows-start", "the model's frequency")
    if not start or not freq:
        raise TsattnError(
            f"{source}: the row-per-series layout has no timestamps; set {settings[0]} (the first time of every "
            f"series, e.g. 2000-01-01) and {settings[1]} (e.g. h)"
        )
    try:
        first = pd.Timestamp(start)
        offset = pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError):
        raise TsattnError(f"{source}: {settings[0]}={start!r} with frequency {freq!r} is not a time and a frequency")
    if frame.shape[1] < 2:
        raise TsattnError(f"{source}: the row-per-series layout needs an id column and at least one value column")
    id_column = str(frame.columns[0])
    ids = frame.iloc[:, 0].astype(str).str.strip()
    if (ids == "").any() or frame.iloc[:, 0].isna().any():
        line = int(np.flatnonzero(((ids == "") | frame.iloc[:, 0].isna()).to_numpy())[0]) + 2
        raise TsattnError(f"{source}, line {line}: a series row without an id in its first column")
    if ids.duplicated().any():
        line = int(np.flatnonzero(ids.duplicated().to_numpy())[0]) + 2
        raise TsattnError(f"{source}, line {line}: series {ids.iloc[line - 2]!r} has a second row; give each one row")
    cells = frame.iloc[:, 1:].astype(object)
    text = cells.where(cells.notna(), "").astype(str).apply(lambda column: column.str.strip())
    numbers = pd.DataFrame(
        {c: pd.to_numeric(text[c].where(text[c] != "", None), errors="coerce") for c in text.columns}
    ).to_numpy(dtype=float)
    empty = (text == "").to_numpy()
    bad = np.isnan(numbers) & ~empty
    if bad.any():
        row, column = (int(i[0]) for i in np.nonzero(bad))
        raise TsattnError(
            f"{source}, line {row + 2}: {text.iat[row, column]!r} in column {text.columns[column]!r} of series "
            f"{ids.iloc[row]!r} is not a number"
        )
    filled = ~empty
    lengths = np.where(filled.any(axis=1), filled.shape[1] - np.argmax(filled[:, ::-1], axis=1), 0)  # to the last value
    if (lengths == 0).any():
        line = int(np.flatnonzero(lengths == 0)[0]) + 2
        raise TsattnError(f"{source}, line {line}: series {ids.iloc[line - 2]!r} has no values")
    grid = pd.date_range(first, periods=int(lengths.max()), freq=offset)
    keep = np.arange(filled.shape[1])[None, :] < lengths[:, None]  # [S, T]: each series up to its last value
    rows, steps = np.nonzero(keep)
    return pd.DataFrame(
        {
            id_name or id_column: ids.to_numpy()[rows],
            time_name: grid[steps].strftime("%Y-%m-%d %H:%M:%S"),
            value_name: numbers[rows, steps],  # an empty cell inside a series stays NaN: data.missing decides
        }
    )
