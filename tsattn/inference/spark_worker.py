"""The executors' side of tsattn.spark: a partition's history in, its series' forecasts out.

Runs in Spark's Python workers, which import it by name: the executors need tsattn installed. Each worker
loads the shipped bundle once, then validates and forecasts its series a chunk at a time, with the local
engine's own functions (history_from_frame, forecast).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tsattn.errors import TsattnError

# Rows of history an executor validates and forecasts together: whole series, many per forward pass.
CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class Job:
    """What the executors' functions need: small, plain values, pickled with them once per task."""

    bundle: str  # the SparkFiles name of the shipped bundle
    horizon: int | None
    source: str
    id_col: str | None
    columns: tuple[str, ...]
    output: tuple[str, ...]


def forecast_partition(job: Job, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """A partition's history, sorted by id and arriving in Arrow batches -> forecasts, CHUNK_ROWS at a time.

    A batch may end inside a series: its last series is carried into the next batch, so that every
    chunk holds whole series only.
    """
    pending: list[pd.DataFrame] = []  # whole series not forecast yet
    carried = None  # the last series of the batch before: it may go on in this one
    for batch in batches:
        if carried is not None:
            batch = pd.concat([carried, batch], ignore_index=True)
        if batch.empty:
            continue
        ids = batch[job.id_col]
        cut = len(batch) - int((ids == ids.iloc[-1]).sum())  # sorted: the last id's rows are the tail
        carried = batch.iloc[cut:]
        if cut:
            pending.append(batch.iloc[:cut])
        if sum(len(f) for f in pending) >= CHUNK_ROWS:
            yield forecast_chunk(job, pd.concat(pending, ignore_index=True))
            pending = []
    if carried is not None and len(carried):
        pending.append(carried)
    if pending:
        yield forecast_chunk(job, pd.concat(pending, ignore_index=True))


def forecast_chunk(job: Job, frame: pd.DataFrame) -> pd.DataFrame:
    """Whole series' history -> their forecasts, with the local engine's validation and forward pass.

    A TsattnError names the series at fault: the chunk is retried a series at a time to find it, since
    a line number would count rows of this chunk, not of the input.
    """
    from pyspark import SparkFiles

    _drop_order_note()
    bundle = _bundle_at(SparkFiles.get(job.bundle))
    try:
        return _forecast_rows(job, bundle, frame)
    except TsattnError as err:
        if job.id_col is None:
            raise TsattnError(_without_lines(str(err), job.source)) from None
        first = err
    for sid, rows in frame.groupby(job.id_col, sort=False):
        try:
            _forecast_rows(job, bundle, rows.reset_index(drop=True))
        except TsattnError as err:
            message = _without_lines(str(err), job.source)
            if f"series {sid!r}" not in message:
                message = re.sub(rf"^{re.escape(job.source)}:", f"{job.source}: series {sid!r}:", message)
            raise TsattnError(message) from None
    # Only the series together fail (they share no frequency): the message says why.
    raise TsattnError(_without_lines(str(first), job.source)) from None


def _forecast_rows(job: Job, bundle, frame: pd.DataFrame) -> pd.DataFrame:
    import numpy as np
    from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

    from tsattn.inference.forecast import forecast, history_from_frame

    frame = frame[list(job.columns)]
    text = [c for c in frame.columns if not (is_numeric_dtype(frame[c]) or is_datetime64_any_dtype(frame[c]))]
    # An empty CSV cell is null to Spark and "" to tsattn's reader, which then names the gap or fills it
    # as data.missing says.
    frame = frame.fillna({c: "" for c in text}) if text else frame
    history = history_from_frame(bundle, frame, name=job.source)
    rows = forecast(bundle, history, job.horizon)[list(job.output)]
    values = job.output[job.output.index("step") + 1 :]
    return rows.astype({"step": np.int32, **{c: np.float64 for c in values}})


def _without_lines(message: str, source: str) -> str:
    """A reader's message without its line numbers, which count rows of a chunk, not of the input."""
    message = re.sub(rf"^{re.escape(source)} (?:line|row) \d+:", f"{source}:", message)
    return re.sub(r" \(lines [\d, and]+\)", "", message)


class _ShuffledOrder(logging.Filter):
    """Drops the reader's note that rows were not in time order: Spark's shuffle never keeps the
    input's order, so the note would be about Spark, not about the user's file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "rows were not in time order" not in str(record.msg)


def _drop_order_note() -> None:
    log = logging.getLogger("tsattn.data.regularity")
    if not any(isinstance(f, _ShuffledOrder) for f in log.filters):
        log.addFilter(_ShuffledOrder())


def _bundle_at(path: str):
    weights = Path(path) / "weights.safetensors"
    if not weights.is_file():  # an ensemble: its manifest names its members by content
        weights = Path(path) / "ensemble.json"
    stat = weights.stat()
    return _load_bundle(path, stat.st_mtime_ns, stat.st_size)


# The one model cache: Spark reuses each Python worker for many tasks (a job has a few per core, and a
# session may run many jobs), so without it every task would reload and dry-run the network. Keyed by
# where the bundle lies and its weights' mtime and size, so a bundle replaced there is loaded again.
@functools.lru_cache(maxsize=4)
def _load_bundle(path: str, mtime_ns: int, size: int):
    from tsattn.inference.bundle import load_bundle

    return load_bundle(path, device="cpu")
