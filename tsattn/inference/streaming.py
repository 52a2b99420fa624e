"""`tsattn forecast` over a long-layout file of any size, in memory bounded by a block of rows.

The file is read in blocks of typed columns (pyarrow: CSV or Parquet). A series is complete when the id
changes; each complete series is checked (a regular grid at the model's frequency, in time order, every
value present and finite), its last L rows are kept, and once `batch_size` series are waiting they are
forecast and written. Memory holds one block, the rows of the series being read, and one batch.

Series may come in any order, but each series' rows must be together and in time order, with no gaps or
empty cells. Anything else (a series split over the file, gaps to fill, a frequency with steps of varying
length, a wide file, cells pyarrow cannot type) raises NeedsWholeFile before anything is kept: the caller
then reads the whole file into memory and validates it as before, which fills what the model's
`data.missing` policy allows and names each mistake by its line. A reason found late in the file (an empty
cell in its last series) discards what was written and starts again from the beginning.

Streamed output keeps the input's series order; the whole-file path writes series sorted by id.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tsattn.data.scaling import run_mean_and_std
from tsattn.inference.forecast import forecast_rows
from tsattn.inference.output import TableWriter, reads_as_parquet
from tsattn.inference.windows import WindowSpec, predict, tail_windows

# Bytes of CSV per block: large enough for pyarrow's threads to pay off, small beside the model.
BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = 500_000


class NeedsWholeFile(Exception):
    """The input is outside what streaming handles; the message says why, the caller reads it whole.

    `about_the_model`: the model itself rules streaming out (a wide layout, a calendar frequency), so
    reading whole is the normal path and not worth a word on stderr.
    """

    def __init__(self, reason: str, about_the_model: bool = False) -> None:
        super().__init__(reason)
        self.about_the_model = about_the_model


@dataclass
class StreamReport:
    """What a streamed forecast did, and where its time went (seconds by stage)."""

    series: int = 0
    rows_read: int = 0
    short: list[str] = field(default_factory=list)  # series with fewer than L rows: never forecast
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("reading", "validation", "windows", "forward", "writing"), 0.0)
    )


def stream_forecast(
    bundle,
    path: Path,
    writer: TableWriter,
    horizon: int,
    batch_size: int = 1024,
    sep: str = ",",
    on_series: Callable[[int], None] | None = None,
) -> StreamReport:
    """Forecast the `horizon` steps after every series in `path`, writing each batch to `writer`.

    Raises:
        NeedsWholeFile: the file is not one streaming can take (see the module's docstring); nothing was
            forecast that the caller must keep.
    """
    schema = bundle.schema
    if schema["layout"] != "long":
        raise NeedsWholeFile("a wide file holds one series", about_the_model=True)
    if schema.get("static") or schema.get("future_covariates"):
        raise NeedsWholeFile("the model reads static or future covariates", about_the_model=True)
    if schema.get("time_format"):  # Arrow's reader parses ISO times only
        raise NeedsWholeFile(f"the model reads times written as {schema['time_format']}", about_the_model=True)
    freq = pd.tseries.frequencies.to_offset(schema["freq"])
    step_ns = fixed_step_ns(freq)
    if step_ns is None:
        raise NeedsWholeFile(f"steps of {freq.freqstr} vary in length", about_the_model=True)
    if len(sep) != 1:
        raise NeedsWholeFile(f"the separator {sep!r} is not one character")
    parquet = reads_as_parquet(path)
    if not path.is_file() and not parquet:
        raise NeedsWholeFile(f"{path} is not a file")
    columns = [schema["id_col"], schema["time_col"], *schema["targets"], *schema["covariates"]]
    state = _State(bundle, WindowSpec.of(bundle), writer, horizon, batch_size, step_ns, on_series)
    blocks = _parquet_blocks(path, columns) if parquet else _csv_blocks(path, columns, sep)
    carry = None
    clock = time.perf_counter()
    for block in blocks:
        state.report.seconds["reading"] += time.perf_counter() - clock
        state.report.rows_read += len(block.times)
        carry = state.take(block if carry is None else carry.joined(block), final=False)
        clock = time.perf_counter()
    state.report.seconds["reading"] += time.perf_counter() - clock
    if carry is None or not len(carry.times):
        raise NeedsWholeFile(f"{path} has no rows")
    state.take(carry, final=True)
    state.flush(everything=True)
    return state.report


def fixed_step_ns(freq: pd.DateOffset) -> int | None:
    """The step in nanoseconds of a frequency whose steps never vary (hours, minutes, days on naive
    times); None for months, business days and the like."""
    if isinstance(freq, pd.offsets.Tick | pd.offsets.Day):  # pandas 3 no longer counts Day as a Tick
        return int(pd.Timedelta(freq).value)
    return None


@dataclass
class _Block:
    ids: pa.Array  # [n] string
    times: np.ndarray  # [n] int64 nanoseconds
    values: np.ndarray  # [n, F] float32

    def joined(self, other: _Block) -> _Block:
        return _Block(
            pa.concat_arrays([self.ids, other.ids]),
            np.concatenate([self.times, other.times]),
            np.concatenate([self.values, other.values]),
        )

    def rows(self, begin: int, end: int | None = None) -> _Block:
        end = len(self.times) if end is None else end
        return _Block(self.ids.slice(begin, end - begin), self.times[begin:end], self.values[begin:end])


class _State:
    """Series checked and waiting for a forward pass, the ids already seen, and the report."""

    def __init__(self, bundle, spec: WindowSpec, writer, horizon: int, batch_size: int, step_ns: int, on_series):
        self.bundle, self.spec, self.writer = bundle, spec, writer
        self.horizon, self.batch_size, self.step_ns, self.on_series = horizon, batch_size, step_ns, on_series
        self.seen: set[str] = set()
        self.waiting: list[tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.n_waiting = 0
        self.report = StreamReport()

    def take(self, block: _Block, final: bool) -> _Block | None:
        """Check and queue every complete series of `block`; returns the rows of the last, unfinished one."""
        clock = time.perf_counter()
        n = len(block.times)
        if n > 1:
            change = pc.not_equal(block.ids.slice(1), block.ids.slice(0, n - 1)).to_numpy(zero_copy_only=False)
            starts = np.concatenate([[0], np.flatnonzero(change) + 1])
        else:
            starts = np.zeros(1, dtype=np.int64)
        cut = n if final else int(starts[-1])  # the last series may go on in the next block
        complete = starts if final else starts[:-1]
        if len(complete):
            self._queue(block.rows(0, cut), complete)
        self.report.seconds["validation"] += time.perf_counter() - clock
        self.flush()
        return None if final else block.rows(cut)

    def _queue(self, block: _Block, starts: np.ndarray) -> None:
        ids = block.ids.take(pa.array(starts)).to_pylist()
        for series_id in ids:
            if series_id in self.seen:
                raise NeedsWholeFile(f"the rows of series {series_id!r} are not all together")
            self.seen.add(series_id)
        steps = np.diff(block.times)  # [n - 1]; step i joins rows i and i + 1
        inside = np.ones(len(steps), dtype=bool)
        inside[starts[1:] - 1] = False  # the step from one series to the next is not a step
        off_grid = inside & (steps != self.step_ns)
        if off_grid.any():
            row = int(np.flatnonzero(off_grid)[0])
            series_id = ids[int(np.searchsorted(starts, row, side="right")) - 1]
            raise NeedsWholeFile(f"series {series_id!r} has a gap, a repeat or a step off the model's grid")
        if not np.isfinite(block.values).all():
            raise NeedsWholeFile("some cells are empty or not finite")

        ends = np.append(starts[1:], len(block.times))
        lengths = ends - starts
        long_enough = lengths >= self.spec.lookback
        self.report.short += [i for i, keep in zip(ids, long_enough, strict=True) if not keep]
        if not long_enough.any():
            return
        mean, std = run_mean_and_std(block.values, starts)  # [R, F]: a new series' own statistics
        kept = np.flatnonzero(long_enough)
        kept_ids = [ids[i] for i in kept]
        mean, std = mean[kept], std[kept]
        for row, series_id in enumerate(kept_ids):
            known = self.spec.known(series_id)
            if known is not None:  # a series the model was trained on: its training statistics
                mean[row], std[row] = known
        rows = ends[kept][:, None] + np.arange(-self.spec.lookback, 0)  # [R, L]
        times = block.times[rows].view("datetime64[ns]")
        self.waiting.append((kept_ids, block.values[rows], times, mean, std))
        self.n_waiting += len(kept_ids)

    def flush(self, everything: bool = False) -> None:
        """Forecast and write full batches of waiting series (and the last, short one at the end)."""
        if not self.waiting or (self.n_waiting < self.batch_size and not everything):
            return
        ids = [i for part in self.waiting for i in part[0]]
        values, times, mean, std = (np.concatenate([part[k] for part in self.waiting]) for k in range(1, 5))
        self.waiting, self.n_waiting = [], 0
        whole = len(ids) if everything else len(ids) - len(ids) % self.batch_size
        for begin in range(0, whole, self.batch_size):
            chosen = slice(begin, min(begin + self.batch_size, whole))
            self._forecast(ids[chosen], values[chosen], times[chosen], mean[chosen], std[chosen])
        if whole < len(ids):  # fewer than a batch left: they wait for more
            rest = slice(whole, None)
            self.waiting = [(ids[rest], values[rest], times[rest], mean[rest], std[rest])]
            self.n_waiting = len(ids) - whole

    def _forecast(self, ids, values, times, mean, std) -> None:
        seconds = self.report.seconds
        clock = time.perf_counter()
        windows = tail_windows(self.spec, values, times, mean, std)
        seconds["windows"] += time.perf_counter() - clock
        clock = time.perf_counter()
        y_hat = predict(self.bundle.forecaster, windows, self.batch_size)  # [B, H, C(, Q)], scaled
        seconds["forward"] += time.perf_counter() - clock
        clock = time.perf_counter()
        self.writer.write(forecast_rows(self.bundle, ids, windows, y_hat, self.horizon))
        seconds["writing"] += time.perf_counter() - clock
        self.report.series += len(ids)
        if self.on_series is not None:
            self.on_series(self.report.series)


def _csv_blocks(path: Path, columns: list[str], sep: str) -> Iterator[_Block]:
    """The file cut into blocks of whole lines, each parsed on its own (after the header line).

    Arrow's own streaming reader reads ahead of the parser without bound (the whole file, measured),
    so the file is cut here. Like Arrow's default, a newline always ends a row: values hold none.
    """
    import pyarrow.csv as pcsv

    types = {columns[0]: pa.string(), columns[1]: pa.timestamp("ns"), **{c: pa.float64() for c in columns[2:]}}
    options = {
        "parse_options": pcsv.ParseOptions(delimiter=sep),
        "convert_options": pcsv.ConvertOptions(include_columns=columns, column_types=types),
    }
    with open(path, "rb") as handle:
        header = handle.readline().removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not a name
        names = next(csv.reader([header.decode("utf-8", "replace")], delimiter=sep), [])
        if len({n.strip() for n in names}) != len(names):
            raise NeedsWholeFile("a column name appears twice in the header")
        rest = b""
        while True:
            data = handle.read(BLOCK_BYTES)
            chunk = rest + data
            if not chunk:
                return
            cut = chunk.rfind(b"\n") + 1 if data else len(chunk)
            if cut == 0:  # one line longer than a block: read on
                rest = chunk
                continue
            chunk, rest = chunk[:cut], chunk[cut:]
            try:
                table = pcsv.read_csv(pa.py_buffer(header + chunk), **options)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, KeyError) as err:
                raise NeedsWholeFile(_first_line(err)) from None
            for batch in table.combine_chunks().to_batches():  # one batch per block: less work per row
                yield _typed(batch, columns)


def _parquet_blocks(path: Path, columns: list[str]) -> Iterator[_Block]:
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(str(path), format="parquet")
        missing = [c for c in columns if c not in dataset.schema.names]
        if missing:
            raise NeedsWholeFile(f"no column {missing[0]!r}")
        time_type = dataset.schema.field(columns[1]).type
        if pa.types.is_timestamp(time_type) and time_type.tz is not None:
            raise NeedsWholeFile("times carry a zone")
        for batch in dataset.to_batches(columns=columns, batch_size=PARQUET_BATCH_ROWS):
            arrays = [
                pc.cast(batch.column(0), pa.string()),
                pc.cast(batch.column(1), pa.timestamp("ns")),
                *(pc.cast(batch.column(i), pa.float64()) for i in range(2, len(columns))),
            ]
            yield _typed(pa.RecordBatch.from_arrays(arrays, names=columns), columns)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as err:
        raise NeedsWholeFile(_first_line(err)) from None


def _typed(batch: pa.RecordBatch, columns: list[str]) -> _Block:
    ids, times = batch.column(0), batch.column(1)
    if ids.null_count or times.null_count:
        raise NeedsWholeFile("some ids or times are empty")
    values = np.column_stack([batch.column(i).to_numpy(zero_copy_only=False) for i in range(2, len(columns))]).astype(
        np.float64, copy=False
    )  # [n, F]; an empty cell is NaN
    return _Block(pc.utf8_trim_whitespace(ids), times.cast(pa.int64()).to_numpy(), values)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
