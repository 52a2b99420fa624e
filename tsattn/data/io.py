"""Read a CSV of time series into validated, regular series (float64 values, scaled to float32 later).

Three layouts are accepted:
- wide: a time column plus value columns; the whole file is one (multivariate) series, like ETTh1;
- long: an id column, a time column and value columns; one series per id;
- rows (`layout="rows"`): one row per series, its id then its values, no timestamps (M4's files), turned
  into the long layout by tsattn.data.rows with every series starting at `start`.

Every problem a user can cause is raised as a one-line `TsattnError` that names the file, the column or
line, and the fix. Line numbers are the file's own (the header is line 1).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsattn.data.regularity import MISSING_POLICIES, regularise
from tsattn.data.series import Series, SeriesCollection
from tsattn.data.static import read_static
from tsattn.errors import TsattnError, one_line

log = logging.getLogger(__name__)

# Column names tried, case-insensitively, when the time column is not given.
TIME_COLUMN_NAMES = ("time", "timestamp", "datetime", "date", "ds")


# The data config's settings that decide how a file is read (the rest shape windows and batches).
READ_SETTINGS = (
    "targets",
    "covariates",
    "future_covariates",
    "static_covariates",
    "static_levels",
    "time_col",
    "time_format",
    "id_col",
    "missing",
    "freq",
    "sep",
    "layout",
    "start",
)


def read_series(
    path: str | Path,
    targets: Sequence[str] | None = None,
    covariates: Sequence[str] = (),
    time_col: str | None = None,
    id_col: str | None = None,
    missing: str = "error",
    freq: str | None = None,
    sep: str = ",",
    fill: bool = True,
    future_covariates: Sequence[str] = (),
    static_covariates: Sequence[str] = (),
    time_format: str | None = None,
    static_levels: Sequence[str] = (),
    layout: str = "auto",
    start: str | None = None,
) -> SeriesCollection:
    """Read, validate and regularise the series in a CSV file.

    Args:
        path: the CSV file.
        targets: the columns to forecast; None takes every column that is not time, id or covariate.
        covariates: past covariates, known up to the forecast origin only.
        future_covariates: columns known ahead of time, read over the horizon as well as the lookback.
        static_covariates: columns of a long file that hold one value per series (tsattn.data.static).
        static_levels: static covariates read as levels (categorical) even when every value is a number:
            codes such as "001" keep their text.
        time_col: the timestamp column; detected from its name or content when None.
        time_format: the time column's strftime format ("%d/%m/%Y %H:%M"); None infers it (ISO, or
            month first where it is ambiguous: day-first dates are refused with the format to set).
        id_col: the series id column of a long file; None reads the file as one wide series.
        missing: what to do with missing timestamps and empty values: "error", "interpolate" or "ffill".
        freq: a pandas frequency alias ("h", "D", "MS"...) when it cannot be inferred from the data.
        sep: the field separator.
        fill: fill gaps now, from the whole series; False leaves them NaN for a split-aware fill
            (tsattn.data.regularity.fill_within_borders).
        layout: "auto" (wide, or long when id_col is set) or "rows" (tsattn.data.rows: one row per series).
        start: with layout="rows", the first time of every series.

    Returns:
        The series, sorted by id, each on a regular grid (with no missing values when `fill`).
    """
    from tsattn.data.rows import LAYOUTS, TIME_COLUMN, rows_to_long

    path = Path(path)
    if layout not in LAYOUTS:
        raise TsattnError(f"data.layout={layout!r}: choose auto (wide or long, by data.id_col) or rows")
    frame = read_frame(path, sep=sep)
    if layout == "rows":
        if covariates or future_covariates or static_covariates or (targets is not None and len(targets) != 1):
            raise TsattnError(
                f"{path}: the row-per-series layout holds one value per step; leave out covariates, and name at "
                "most one target (data.targets=[value])"
            )
        frame = rows_to_long(frame, str(path), start, freq, value_name=targets[0] if targets else "value")
        id_col, time_col, time_format = str(frame.columns[0]), TIME_COLUMN, None
    return series_from_frame(
        frame,
        str(path),
        path.stem,
        targets,
        covariates,
        time_col,
        id_col,
        missing,
        freq,
        fill=fill,
        future_covariates=future_covariates,
        static_covariates=static_covariates,
        static_kinds=dict.fromkeys(static_levels or (), "categorical"),
        time_format=time_format,
    )


def read_configured(settings: Mapping[str, Any]) -> SeriesCollection:
    """The file a data config names, read with the config's settings and checked for one whole window.

    Pandas only: training calls it before torch and Lightning are imported, so a bad CSV is refused in
    about a second. Gaps are left for the datamodule to fill within the split borders.
    """
    collection = read_series(
        settings["path"], fill=False, **{key: settings[key] for key in READ_SETTINGS if key in settings}
    )
    lookback, horizon = settings.get("lookback", 1), settings.get("horizon", 1)
    require_length(collection, lookback + horizon, f"one window (lookback {lookback} + horizon {horizon})")
    return collection


def series_from_frame(
    frame: pd.DataFrame,
    name: str,
    default_id: str,
    targets: Sequence[str] | None = None,
    covariates: Sequence[str] = (),
    time_col: str | None = None,
    id_col: str | None = None,
    missing: str = "error",
    freq: str | None = None,
    reject_constant: bool = True,
    fill: bool = True,
    future_covariates: Sequence[str] = (),
    static_covariates: Sequence[str] = (),
    static_kinds: Mapping[str, str] | None = None,
    time_format: str | None = None,
    trained: bool = False,
) -> SeriesCollection:
    """Validate and regularise series held in a DataFrame (read from `name`; see read_series).

    Args:
        frame: the table; cells may be text (as read from a CSV) or already typed.
        name: where the table came from, for messages.
        default_id: the series id of a wide table.
        reject_constant: refuse a column that never changes (right for training, wrong for a short history).
        fill: fill gaps and empty values now (see read_series).
        static_kinds: static column -> "numeric" or "categorical", as a trained model read them (or as
            data.static_levels names levels); a column not named is decided from the table itself.
        time_format: the time column's strftime format, or None to infer it (see read_series).
        trained: the table is a history for a trained model, whose settings are fixed: messages suggest
            retraining rather than a data.* setting.
    """
    if missing not in MISSING_POLICIES:
        raise TsattnError(f"data.missing={missing!r} is not a policy; use one of: {', '.join(MISSING_POLICIES)}")
    if frame.empty:
        raise TsattnError(f"{name} has no rows; it needs the history of every series to forecast")
    frame = cells_as_read(frame, name)
    time_col = time_col if time_col is not None else _detect_time_column(frame, name)
    for role, column in (("data.time_col", time_col), ("data.id_col", id_col)):
        if column is not None:
            require_columns(frame, [column], role, name)
    covariates, future_covariates = list(covariates or []), list(future_covariates or [])
    static_covariates = list(static_covariates or [])
    require_columns(frame, covariates, "data.covariates", name)
    require_columns(frame, future_covariates, "data.future_covariates", name)
    require_columns(frame, static_covariates, "data.static_covariates", name)
    if unknown := [c for c in static_kinds or {} if c not in static_covariates]:
        raise TsattnError(
            f"{name}: data.static_levels names {unknown[0]!r}, which is not among data.static_covariates "
            f"({', '.join(static_covariates) or 'none'}); add it there, or leave it out of data.static_levels"
        )
    if static_covariates and id_col is None:
        raise TsattnError(
            f"{name}: data.static_covariates describe the series of a long file; set data.id_col (a wide file "
            "is one series, whose constants carry nothing)"
        )
    if targets is None:
        reserved = {time_col, id_col, *covariates, *future_covariates, *static_covariates}
        targets = [c for c in frame.columns if c not in reserved]
        if not targets:
            raise TsattnError(f"{name} has no value columns besides time and id; add the series to forecast")
    targets = list(targets)
    require_columns(frame, targets, "data.targets", name)
    roles = {
        "data.targets": targets,
        "data.covariates": covariates,
        "data.future_covariates": future_covariates,
        "data.static_covariates": static_covariates,
    }
    _require_one_role(roles, name)

    columns = [*targets, *covariates, *future_covariates]
    values = {c: numeric_column(frame[c], c, name, ids_possible=id_col is None) for c in columns}
    for column, numbers in values.items():
        if np.isnan(numbers).all():
            raise TsattnError(
                f"{name}: column {column!r} is empty in every row; delete it from the file or leave it out "
                f"({_without(column, roles)}); filling gaps cannot invent a whole column"
            )
    times = parse_times(frame[time_col], time_col, name, time_format, trained)
    ids = frame[id_col].astype(str).str.strip() if id_col is not None else pd.Series(default_id, index=frame.index)
    static = read_static(frame, ids, static_covariates, name, static_kinds)
    table = pd.DataFrame({"id": ids, "time": times, **values})
    table["line"] = frame.index + 2  # header is line 1

    series, offset = regularise(table, columns, name, missing, freq, fill=fill, trained=trained)
    if reject_constant:
        # A future covariate may stay put in a series (a holiday flag that never fires there): the scaler
        # divides it by 1, and RevIN only centres it.
        for s in series:
            _reject_constant_columns(s, columns[: len(targets) + len(covariates)], name)
    return SeriesCollection(
        source=name,
        series=series,
        targets=targets,
        covariates=covariates,
        freq=offset,
        time_col=time_col,
        id_col=id_col,
        future_covariates=future_covariates,
        static_covariates=static_covariates,
        static=static,
        time_format=time_format,
    )


def cells_as_read(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """A table whose columns are numbers, times or text, ready to be checked cell by cell.

    Numbers and times that arrive typed (Parquet, a DataFrame from Python) are checked as they are; any
    other column (objects, decimals, categories, durations) is read as text, "" for a missing cell, so a bad
    cell is named in one line rather than failing deep inside pandas. Column labels must be unique.
    """
    labels = [str(c) for c in frame.columns]
    repeated = sorted({c for c in labels if labels.count(c) > 1})
    if repeated:
        raise TsattnError(f"{name}: column {repeated[0]!r} appears more than once; give each column its own name")
    typed = [
        c
        for c in frame.columns
        if not isinstance(frame[c].dtype, pd.StringDtype)
        and not pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_datetime64_any_dtype(frame[c])
    ]
    if typed:
        frame = frame.copy()
        for column in typed:
            frame[column] = frame[column].astype(str).where(frame[column].notna(), "")
    return frame.reset_index(drop=True)


def _require_one_role(roles: Mapping[str, Sequence[str]], name: str) -> None:
    """Each column is a target, a past covariate or a future covariate, never two of them (nor twice one)."""
    seen: dict[str, str] = {}
    for role, columns in roles.items():
        for column in columns:
            if column in seen:
                where = role if seen[column] == role else f"{seen[column]} and {role}"
                raise TsattnError(f"{name}: column {column!r} is listed twice ({where}); keep each column in one list")
            seen[column] = role


def _without(column: str, roles: Mapping[str, Sequence[str]]) -> str:
    """The setting that leaves `column` out, spelled for the command line."""
    for role, columns in roles.items():
        if column in columns and role != "data.targets":
            return f"{role}=[" + ",".join(c for c in columns if c != column) + "]"
    kept = [c for c in roles["data.targets"] if c != column]
    return "data.targets=[" + ",".join(kept) + "]" if kept else "choose other data.targets"


def require_length(collection: SeriesCollection, min_rows: int, reason: str) -> None:
    """Raise when any series is shorter than `min_rows`; `reason` says what needs that many rows."""
    for s in collection.series:
        if len(s.time) < min_rows:
            raise TsattnError(
                f"{collection.source}: series {s.id!r} has {len(s.time)} rows but {reason} needs at least "
                f"{min_rows}; supply more history or shorten data.lookback / data.horizon"
            )


# Characters that cannot separate fields: line ends split records, and the quote character opens quoted cells.
NOT_SEPARATORS = ("\r", "\n", '"')


def check_separator(sep, option: str) -> None:
    """One line for a separator no CSV reader can use: not one character, or a line end or the quote."""
    if not isinstance(sep, str) or len(sep) != 1:
        raise TsattnError(f"{option}={sep!r}: the separator must be one character, such as , or ;")
    if sep in NOT_SEPARATORS:
        raise TsattnError(
            f"{option}={sep!r}: a line end or the quote character cannot separate fields; use , ; | or a tab"
        )


def read_frame(path: Path, option: str = "data.path", sep: str = ",", sep_option: str = "data.sep") -> pd.DataFrame:
    """A CSV file as a table of text cells, with one-line errors for files that are not CSV at all.

    Args:
        path: the file.
        option: the setting that named the file, for the message when it does not exist.
        sep: the field separator.
        sep_option: the setting that chooses the separator, for the message when it looks wrong.
    """
    if path.is_dir():
        raise TsattnError(f"{path} is a directory; give the CSV file itself ({option})")
    if not path.is_file():
        raise TsattnError(f"{path}: no such file; check {option}")
    check_separator(sep, sep_option)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise TsattnError(
            f"{path} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); re-save it as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise TsattnError(f"{path} is empty; it needs a header line and at least one data row")
    # Everything as text first: numbers and timestamps are parsed per column below, so a bad cell can be
    # reported by line instead of silently turning a column into strings. pyarrow's reader is 5x faster on
    # large files; anything it refuses goes through pandas' own reader, whose errors are reported below.
    header = _header(text, sep)
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        positions = [i + 1 for i, name in enumerate(header) if name == duplicated[0]]
        raise TsattnError(
            f"{path}: column {duplicated[0]!r} appears {len(positions)} times in the header (columns "
            f"{', '.join(map(str, positions))}); give each column its own name"
        )
    frame = _read_with_pyarrow(raw, sep)
    if frame is None:
        if ragged := _ragged_record(text, sep):
            line, fields, width = ragged
            raise TsattnError(
                f"{path} is not a well-formed CSV (line {line} has {fields} field{'s' * (fields != 1)}, the header "
                f"{width}); check the delimiter ({sep_option}) and quoting"
            )
        try:
            frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
        except pd.errors.ParserError as err:
            detail = str(err).strip().splitlines()[-1].replace("C error: ", "")
            raise TsattnError(
                f"{path} is not a well-formed CSV ({detail}); check the delimiter ({sep_option}) and quoting"
            ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame.columns) == 1:
        _reject_other_separator(path, frame.columns[0], sep, sep_option)
    if frame.empty:
        raise TsattnError(f"{path} has a header but no data rows; add the observations below the header")
    return frame


def _header(text: str, sep: str) -> list[str]:
    """The header's column names, as the file writes them."""
    import csv

    first = next(csv.reader(io.StringIO(text.lstrip("\n")), delimiter=sep), [])
    return [name.strip() for name in first]


def _ragged_record(text: str, sep: str) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first record whose field count differs from the header's.

    pandas alone would read a short row as empty cells and refuse only a long one; a ragged row is refused
    either way, as the Spark engine refuses it, so the same file gives the same answer on both engines.
    Blank records are skipped, as pandas skips them; a file the csv module cannot split at all (a line end
    it does not know, a cell over its size limit) is left to pandas, which reports it. The line is the
    record's last, for a record whose quoted cells hold line breaks.
    """
    import csv

    body = text.lstrip("\r\n")
    skipped = text[: len(text) - len(body)].count("\n")
    reader = csv.reader(io.StringIO(body), delimiter=sep, skipinitialspace=True)
    width = None
    try:
        for record in reader:
            if not any(field.strip() for field in record):
                continue
            if width is None:
                width = len(record)
            elif len(record) != width:
                return reader.line_num + skipped, len(record), width
    except csv.Error:
        return None
    return None


def _reject_other_separator(path: Path, column: str, sep: str, sep_option: str) -> None:
    """A file that reads as one column whose name holds another separator was split on the wrong one."""
    for candidate in (";", "\t", "|", ","):
        if candidate != sep and candidate in column:
            raise TsattnError(
                f"{path} reads as a single column {column[:60]!r}: its fields look separated by {candidate!r}, "
                f"not {sep!r}; set {sep_option}{' ' if sep_option.startswith('--') else '='}{candidate!r}"
            )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes: ties a run and its bundle to the exact data they were trained on."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_with_pyarrow(raw: bytes, sep: str) -> pd.DataFrame | None:
    """The file through pyarrow's reader, 5x faster on large files; None for anything it refuses."""
    import pyarrow as pa

    try:
        return pd.read_csv(io.BytesIO(raw), sep=sep, dtype=str, keep_default_na=False, engine="pyarrow")
    except (pa.ArrowException, ValueError):
        # Ragged rows, quoting it cannot follow and the like: pandas' own reader then reports them by line.
        return None


def require_columns(frame: pd.DataFrame, wanted: Sequence[str], role: str, name: str) -> None:
    for column in wanted:
        if column not in frame.columns:
            raise TsattnError(
                f"{name} has no column {column!r} (from {role}); columns are: {', '.join(map(str, frame.columns))}"
            )


def _detect_time_column(frame: pd.DataFrame, name: str) -> str:
    by_name = {str(c).lower(): c for c in frame.columns}
    for candidate in TIME_COLUMN_NAMES:
        if candidate in by_name:
            return by_name[candidate]
    for column in frame.columns:
        sample = frame[column].head(20)
        # Plain numbers would parse as epoch offsets; a time column must not be numeric.
        if pd.to_numeric(sample, errors="coerce").notna().all():
            continue
        if pd.to_datetime(sample, errors="coerce", format="mixed").notna().all():
            return column
    raise TsattnError(
        f"{name}: no time column found; name it with data.time_col (columns are: {', '.join(frame.columns)})"
    )


# Numeric dates with a separator (13/01/2024, 01.02.24, 2/3/2024 05:00): day first or month first is a guess.
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{2}|\d{4})(?:[ T](\d{1,2}:\d{2}(?::\d{2})?))?\s*$")


def parse_times(
    column: pd.Series, col_name: str, name: str, time_format: str | None = None, trained: bool = False
) -> pd.Series:
    """The time column as datetime64[ns], wall-clock times: by `time_format` (data.time_format) when given,
    else inferred (ISO and the usual text forms; numeric dates written day first are refused with the
    data.time_format to set, since inference would read 01/02 as January 2)."""
    if pd.api.types.is_datetime64_any_dtype(column):  # a DataFrame from Python or Parquet: already times
        missing = column.isna()
        if missing.any():
            raise TsattnError(f"{name} row {int(missing.to_numpy().argmax())}: empty timestamp in column {col_name!r}")
        if getattr(column.dt, "tz", None) is not None:
            # As for text: the wall-clock time when the UTC offset never changes, else UTC, which keeps a
            # daylight-saving switch on a regular grid.
            wall, utc = column.dt.tz_localize(None), column.dt.tz_convert("UTC").dt.tz_localize(None)
            column = wall if (wall - utc).nunique() <= 1 else utc
        return column.astype("datetime64[ns]")
    if not (pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column)):
        raise TsattnError(f"{name}: column {col_name!r} holds {column.dtype} values, not timestamps")
    column = column.astype(str) if not pd.api.types.is_string_dtype(column) else column
    text = column.str.strip()
    empty = text.isna() | (text == "")
    if empty.any():
        line = int(empty.idxmax()) + 2
        raise TsattnError(f"{name} line {line}: empty timestamp in column {col_name!r}; every row needs a time")
    if time_format is not None:
        try:
            parsed = pd.to_datetime(text, errors="coerce", format=time_format)
        except (ValueError, TypeError) as err:  # a directive pandas does not know, or offsets it cannot mix
            detail = one_line(err, 120)
            raise TsattnError(
                f"{name}: data.time_format={time_format!r} cannot read column {col_name!r} ({detail}); give a "
                "strftime format such as '%d/%m/%Y %H:%M'"
            ) from None
        hint = f" with data.time_format={time_format!r}; fix the value or the format"
    else:
        _refuse_day_first(text, col_name, name, trained)
        hint = "; fix the value, use ISO format (2024-01-31 13:00), or give its format as data.time_format"
        try:
            # Fast path: one format, inferred from the first row. Rows in another format come back NaT, so
            # retry those files element by element before calling any value unparseable.
            parsed = pd.to_datetime(text, errors="coerce")
            if parsed.isna().any():
                parsed = pd.to_datetime(text, errors="coerce", format="mixed")
        except ValueError:  # UTC offsets that change within the column (daylight saving): pandas refuses to mix
            parsed = _parse_changing_offsets(text, col_name, name)
    bad = parsed.isna()
    if bad.any():
        row = int(bad.idxmax())
        raise TsattnError(
            f"{name} line {row + 2}: cannot parse {column[row]!r} in column {col_name!r} as a timestamp{hint}"
        )
    if getattr(parsed.dt, "tz", None) is not None:
        # Calendar features use the wall-clock time the file states; the zone itself is dropped.
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _refuse_day_first(text: pd.Series, col_name: str, name: str, trained: bool = False) -> None:
    """Numeric dates written day first, which pandas would read month first (01/02 as January 2), mixing two
    calendars or stretching hours into months: one line instead, naming the data.time_format that reads them.

    Day first is certain where a first field goes above 12. Where every field is at most 12, the column is
    read both ways and day first is refused only if it alone gives rows in time order on a regular grid.
    """
    if not text.head(1000).str.match(_NUMERIC_DATE).all():  # cheap exit for ISO and named-month files
        return
    fields = text.str.extract(_NUMERIC_DATE)
    if fields[0].isna().any():  # not every value is a numeric date: nothing to decide here
        return
    first, second = fields[0].astype(int), fields[2].astype(int)
    if (second > 12).any():  # month first, certainly
        return
    separator, year = fields[1].iloc[0], "%Y" if len(fields[3].iloc[0]) == 4 else "%y"
    clock = fields[4].iloc[0]
    clock_format = "" if not isinstance(clock, str) else (" %H:%M:%S" if clock.count(":") == 2 else " %H:%M")
    day_first = f"%d{separator}%m{separator}{year}{clock_format}"
    if (first > 12).any():
        row = int((first > 12).to_numpy().argmax())
        reason = f"{text.iloc[row]!r} in column {col_name!r} is written day first ({first.iloc[row]} is not a month)"
        line = row + 2
    else:
        month_first = f"%m{separator}%d{separator}{year}{clock_format}"
        if _disorder(text, day_first) >= _disorder(text, month_first):
            return
        reason = f"the dates in column {col_name!r} are in time order on a regular grid only when read day first"
        line = 2
    fix = (
        f"the model reads times as its training file wrote them: write them so (ISO: 2024-01-31 13:00), or "
        f"retrain with data.time_format='{day_first}'"
        if trained
        else f"set data.time_format='{day_first}' so every date is read that way"
    )
    raise TsattnError(f"{name} line {line}: {reason}; {fix}")


def _disorder(text: pd.Series, time_format: str) -> tuple[int, int]:
    """How far from a time-ordered regular column `text` reads with `time_format`: (steps backwards, 1 when
    its distinct times fit no pandas frequency); a value the format cannot read counts as the worst."""
    parsed = pd.to_datetime(text, errors="coerce", format=time_format)
    if parsed.isna().any():
        return (len(text), 1)
    backwards = int((parsed.diff() < pd.Timedelta(0)).sum())
    distinct = pd.DatetimeIndex(parsed.drop_duplicates().sort_values())
    regular = len(distinct) >= 3 and pd.infer_freq(distinct) is not None
    return (backwards, 0 if regular else 1)


_UTC_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"


def _parse_changing_offsets(text: pd.Series, col_name: str, name: str) -> pd.Series:
    """Timestamps whose UTC offset changes (a daylight-saving switch) as UTC, which keeps the grid regular.

    A column that mixes stamps with and without an offset cannot be put on one clock: that is an error.
    """
    with_offset = text.str.contains(_UTC_OFFSET, regex=True)
    if not with_offset.all():
        line = int((~with_offset).to_numpy().argmax()) + 2
        raise TsattnError(
            f"{name} line {line}: column {col_name!r} mixes timestamps with and without a UTC offset "
            f"({text.iloc[line - 2]!r}); write every timestamp with its offset, or none"
        )
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    log.info(
        "%s: the UTC offsets in column %r change (daylight saving): read as UTC, and calendar features follow UTC",
        name,
        col_name,
    )
    return parsed.dt.tz_localize(None)


def numeric_column(column: pd.Series, col_name: str, name: str, ids_possible: bool = False) -> np.ndarray:
    """A value column as float64, NaN for empty cells; one line for the first cell that is not a number.

    Args:
        ids_possible: the file has no id column yet, so a text column whose values repeat is more likely a
            long file's series ids than a broken value column: the message suggests data.id_col.
    """
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        raise TsattnError(f"{name}: column {col_name!r} holds {column.dtype} values, not numbers")
    if pd.api.types.is_numeric_dtype(column):  # typed already: only infinities to refuse
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            row = int(np.flatnonzero(np.isinf(values))[0])
            raise TsattnError(f"{name} row {row}: infinite value in column {col_name!r}; replace it")
        return values
    text = column.str.strip()
    empty = text.isna() | text.isin(["", "nan", "NaN", "NA", "null", "None"])  # a missing cell of a string column
    numbers = pd.to_numeric(text.where(~empty), errors="coerce")
    bad = numbers.isna() & ~empty
    if ids_possible and bad.any() and bad[~empty].all() and text[~empty].nunique() <= max(1, len(text) // 2):
        raise TsattnError(
            f"{name}: column {col_name!r} holds text that repeats ({text[bad].iloc[0]!r}...), not numbers: if it "
            f"names the series of a long file, set data.id_col={col_name}; otherwise leave it out of data.targets"
        )
    if bad.any():
        row = int(bad.idxmax())
        raise TsattnError(
            f"{name} line {row + 2}: {column[row]!r} in column {col_name!r} is not a number; "
            "fix the value or leave the cell empty to mark it missing"
        )
    values = numbers.to_numpy(dtype=np.float64)
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise TsattnError(f"{name} line {row + 2}: infinite value in column {col_name!r}; replace it")
    return values


def _reject_constant_columns(series: Series, columns: Sequence[str], name: str) -> None:
    """Refuse a constant column among `columns`, the leading value columns (targets and past covariates)."""
    span = np.ptp(series.values[:, : len(columns)], axis=0)  # [C + P]
    for column, width in zip(columns, span, strict=True):
        if width == 0:
            value = series.values[0, columns.index(column)]
            raise TsattnError(
                f"{name}: column {column!r} of series {series.id!r} is constant (every value is {value:g}); "
                "it carries no signal, remove it from data.targets / data.covariates / data.future_covariates"
            )
