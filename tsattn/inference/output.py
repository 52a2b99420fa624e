"""Tables written batch by batch as CSV or Parquet (chosen by the output's extension), one writer for all.

The forecast command writes each batch as soon as it is forecast, so memory holds one batch of output,
never the whole table. CSV times are written in full, without a fraction when they have none
(`2024-01-31 00:00:00`, also for daily data), floats in their shortest round-trip form; Parquet keeps types.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa

PARQUET_SUFFIXES = (".parquet", ".pq")
# A cell holding one of these needs CSV quoting; anything else is written bare, as pandas writes it.
_NEEDS_QUOTES = re.compile(r'[",\r\n;\t|]')
# A text cell starting with one of these (after spaces; their full-width forms too) is run as a formula by
# spreadsheets (`=1+2`, `@SUM(1)`, `-2+3`, ` =1`): OWASP's CSV injection rule writes it with a leading '
# instead, which spreadsheets show as text. Plain decimal numbers (-1.5, +3, 1e-5) are left as they are; the
# patterns are also Java regular expressions, so the Spark engine applies the very same rule.
FORMULA_START = r"^\s*[=+\-@\uFF1D\uFF0B\uFF0D\uFF20]|^[\t\r]"
PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_FORMULA_START, _PLAIN_NUMBER = re.compile(FORMULA_START), re.compile(PLAIN_NUMBER)


def formula_safe_text(value: str) -> str:
    """`value` with a leading ' when a spreadsheet would run it as a formula; plain numbers (-1.5) and a lone
    sign or dash (`-`, which tables print for a missing value) stay as they are."""
    if len(value) < 2 or not _FORMULA_START.match(value) or _PLAIN_NUMBER.match(value):
        return value
    return "'" + value


def formula_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell (ids, names) made formula-safe (formula_safe_text); numbers and times
    are never touched. Returns the frame itself when no cell needs it."""
    changed = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            unique = pd.Series(column.dropna().unique())  # ids repeat H times: look at each once
            safe = {v: formula_safe_text(v) for v in unique if isinstance(v, str) and formula_safe_text(v) != v}
            if safe:
                changed[name] = column.map(lambda v, safe=safe: safe.get(v, v) if isinstance(v, str) else v)
    return frame.assign(**changed) if changed else frame


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def reads_as_parquet(path: Path) -> bool:
    """An input read as Parquet: a .parquet (.pq) file, or a directory of .parquet files (as Spark writes)."""
    return is_parquet(path) or (path.is_dir() and any(path.glob("*.parquet")))


class TableWriter:
    """Appends DataFrames with the same columns to `path` (CSV, or Parquet when it ends in .parquet/.pq).

    Use as a context manager; on an error the file is left as it is for the caller (who writes to a
    temporary file and renames it only on success) to delete.
    """

    def __init__(self, path: Path, parquet: bool | None = None, formula_guard: bool = True) -> None:
        self.path = Path(path)
        self.parquet = is_parquet(self.path) if parquet is None else parquet
        self.formula_guard = formula_guard and not self.parquet  # Parquet keeps types: no spreadsheet runs it
        self.rows = 0
        self._writer = None
        self._handle = None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(self, frame: pd.DataFrame) -> None:
        if self.formula_guard:
            frame = formula_safe(frame)
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        if self.parquet:
            import pyarrow.parquet as pq

            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self.path), table.schema)
            self._writer.write_table(table.cast(self._writer.schema))
        else:
            import pyarrow.csv as pcsv

            if self._handle is None:
                self._handle = open(self.path, "wb")
                header = io.StringIO()
                names = [formula_safe_text(str(c)) if self.formula_guard else c for c in frame.columns]
                csv.writer(header, lineterminator="\n").writerow(names)
                self._handle.write(header.getvalue().encode())
            quoting = "needed" if _has_special_text(frame) else "none"
            options = pcsv.WriteOptions(include_header=False, quoting_style=quoting)
            pcsv.write_csv(_times_in_whole_seconds(table), self._handle, options)
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _times_in_whole_seconds(table: pa.Table) -> pa.Table:
    """Time columns written without a fraction when none has one (`2024-01-31 13:00:00`, midnights
    included): the format then never changes from one batch of a file to the next."""
    import pyarrow.compute as pc

    for index, column_type in enumerate(table.schema.types):
        if not pa.types.is_timestamp(column_type):
            continue
        column = table.column(index)
        ticks = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)
        per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[column_type.unit]
        if (ticks % per_second == 0).all():
            table = table.set_column(index, table.schema.field(index).name, pc.cast(column, pa.timestamp("s")))
    return table


def _has_special_text(frame: pd.DataFrame) -> bool:
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            if pd.Series(column.unique()).astype(str).str.contains(_NEEDS_QUOTES).any():  # ids repeat H times
                return True
    return False
