"""Batch forecasts on Spark: every series of a Spark DataFrame forecast on the executors.

    import tsattn.spark
    future = tsattn.spark.forecast(spark_df, "runs:/<run id>", tracking_uri="sqlite:///mlflow.db")
    rows = tsattn.spark.to_pandas(future)       # or: with tsattn.spark.user_errors(): future.write.parquet(...)

The same validation, windows and forward pass as `tsattn forecast` and `Model.forecast`, run on the
executors: the history is partitioned by the id column (each series whole in one partition), and each
executor's Python worker loads the bundle once and forecasts its partitions' series many at a time. A
wide-layout model (one series, no id column) forecasts the whole frame as one group
(`groupBy().applyInPandas`), on one executor. Needs the `spark` extra (pyspark) and Java 17; the
executors need tsattn installed.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import numbers
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tsattn.errors import TsattnError

PYSPARK_MISSING = "the Spark engine needs pyspark: pip install 'tsattn[spark]' (and Java 17)"
# A TsattnError raised in a Python worker reaches the driver as the worker's traceback inside Spark's
# exception; its last line is "tsattn.errors.TsattnError: <message>".
_EXECUTOR_ERROR = re.compile(r"TsattnError: (.+)")


def forecast(
    spark_df: Any, model: str | Path, horizon: int | None = None, tracking_uri: str | None = None, source: str = "input"
) -> Any:
    """The `horizon` steps after each series' last row, as a lazy Spark DataFrame.

    Args:
        spark_df: the history in the training file's layout: its time column, its id column for a long
            model, its targets and covariates (text or typed); other columns are ignored.
        model: a bundle directory, `runs:/<run id>[/path]` or `models:/<name>/<version|alias>`, resolved
            here on the driver (against `tracking_uri`) and shipped to the executors with addFile.
        horizon: steps to forecast, 1 to the trained horizon (default: the trained horizon).
        source: what the input is called in error messages (the CLI passes the INPUT path).

    Returns:
        The columns of the local engine's output, in its order: the id column (string, long models),
        the time column (timestamp without time zone), `step` (int), one double per target and per
        `<target>_q<level>`. Nothing runs until an action; run it inside `user_errors()` (or use
        `to_pandas`) so that a bad cell is one TsattnError line rather than a Spark stack.
    """
    _pyspark()
    from tsattn.inference.model_source import bundle_directory

    with bundle_directory(str(model), tracking_uri) as directory:
        return forecast_directory(spark_df, directory, horizon, source)


def forecast_directory(spark_df: Any, directory: Path, horizon: int | None, source: str = "input") -> Any:
    """forecast() with the model already a local bundle directory (the CLI resolves it once for both)."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    from tsattn.inference.api import Model
    from tsattn.inference.forecast import check_horizon
    from tsattn.inference.spark_worker import Job, forecast_chunk, forecast_partition

    if not isinstance(spark_df, DataFrame):
        raise TsattnError(f"spark_df must be a pyspark DataFrame, not {type(spark_df).__name__}")
    model = Model.from_directory(directory)  # a corrupt bundle fails here, once, not in every executor
    schema = model.schema
    if schema["future_covariates"] or schema["static"]:
        raise TsattnError(
            "this model reads future or static covariates, which the Spark engine does not take yet: forecast "
            "it with --engine local (--future FUTURE.csv), or tsattn.load(...).forecast(history, future=...)"
        )
    if horizon is not None:
        if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral):
            raise TsattnError(f"horizon={horizon!r}: give a whole number of steps")
        horizon = int(horizon)
        check_horizon(model.bundle, horizon)
    id_col, time_col = schema["id_col"], schema["time_col"]
    roles = [("data.time_col", time_col), ("data.id_col", id_col)]
    roles += [("data.targets", c) for c in schema["targets"]] + [("data.covariates", c) for c in schema["covariates"]]
    columns = [column for _, column in roles if column is not None]
    for role, column in roles:
        if column is not None and column not in spark_df.columns:
            raise TsattnError(
                f"{source} has no column {column!r} (the model's {role}); columns are: {', '.join(spark_df.columns)}"
            )
    job = Job(
        bundle=_ship(spark_df.sparkSession, Path(directory)),
        horizon=horizon,
        source=source,
        id_col=id_col,
        columns=tuple(columns),
        output=tuple(output_columns(schema)),
    )

    history = spark_df.select(*columns)
    result = output_schema(schema)
    if id_col is None:  # a wide model's file is one series: the whole frame is one group, one worker's

        def whole(frame):  # a plain function: pyspark inspects it, and warns about a functools.partial
            return forecast_chunk(job, frame)

        return history.groupBy().applyInPandas(whole, result)

    def partition(batches):
        return forecast_partition(job, batches)

    # Ids are text to the local engine (stripped of any whitespace, as str.strip does; an empty cell is ""):
    # 7 and "7\t" are one series there, and here.
    stripped = F.regexp_replace(F.col(id_col).cast("string"), r"^\s+|\s+$", "")
    history = history.withColumn(id_col, F.coalesce(stripped, F.lit("")))
    # Each series whole in one partition, its rows together: a worker validates and forecasts many series
    # per call, as the local engine does. (groupBy(id).applyInPandas, one call per series, spends a pandas
    # validation and a batch-of-one forward pass on each: measured on M4 hourly, about 60 ms of executor
    # time per series against 2 ms here.) The partition count is explicit, a few tasks per core: adaptive
    # execution would pack a few MB of history into one task, and a forecast is compute, not bytes.
    partitions = 3 * spark_df.sparkSession.sparkContext.defaultParallelism
    history = history.repartition(partitions, id_col).sortWithinPartitions(id_col)
    return history.mapInPandas(partition, result)


def to_pandas(forecast_df: Any) -> pd.DataFrame:
    """Run the forecast and collect it on the driver; errors in the executors come back as one TsattnError."""
    with user_errors():
        return forecast_df.toPandas()


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Wrap a Spark action: a TsattnError raised in an executor is re-raised here as itself, one line.

    Spark reports a failed task as its own exception holding the worker's traceback and a Java stack;
    what the user can fix is the last "TsattnError: ..." line in it. Anything else is raised unchanged.
    """
    try:
        with warnings.catch_warnings():
            # pyspark's note that Arrow failed mid-way before the very error translated below
            warnings.filterwarnings("ignore", message="toPandas attempted Arrow optimization")
            yield
    except TsattnError:
        raise
    except Exception as err:
        message = executor_error(err)
        if message is None:
            raise
        raise TsattnError(message) from None


def executor_error(err: BaseException) -> str | None:
    """The TsattnError message inside a Spark job failure (PythonException, Py4JJavaError), if there is one."""
    if not _is_spark_error(err):
        return None
    found = _EXECUTOR_ERROR.findall(str(err))
    return found[-1].strip() if found else None


def output_columns(schema: dict[str, Any]) -> list[str]:
    """The local engine's output columns, in its order (tsattn.inference.forecast.forecast_rows)."""
    targets = schema["targets"]
    columns = [schema["id_col"]] if schema["layout"] == "long" else []
    columns += [schema["time_col"] or "time", "step", *targets]
    for level in schema.get("quantiles") or []:
        columns += [f"{target}_q{level:g}" for target in targets]
    return columns


def output_schema(schema: dict[str, Any]) -> Any:
    """The Spark schema of the output. Times carry no zone (TimestampNTZ), as in the local engine: a
    session time zone would otherwise shift them, or skip a daylight-saving hour."""
    from pyspark.sql import types as T

    kinds = {schema["id_col"]: T.StringType(), schema["time_col"] or "time": T.TimestampNTZType()}
    kinds["step"] = T.IntegerType()
    fields = [T.StructField(c, kinds.get(c, T.DoubleType()), nullable=False) for c in output_columns(schema)]
    return T.StructType(fields)


def _pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise TsattnError(PYSPARK_MISSING) from None


def _is_spark_error(err: BaseException) -> bool:
    with contextlib.suppress(ImportError):
        from pyspark.errors import PySparkException

        if isinstance(err, PySparkException):
            return True
    with contextlib.suppress(ImportError):
        from py4j.protocol import Py4JJavaError

        if isinstance(err, Py4JJavaError):
            return True
    return False


# ---------------------------------------------------------------------------------------------- driver side


def _ship(spark, directory: Path) -> str:
    """Send the bundle to every executor (SparkFiles) under a name unique to its content; return the name.

    A copy named by its digest, because SparkFiles has one flat namespace: two bundles both called
    `bundle` would collide, and a runs:/ download is deleted before the executors fetch it.
    """
    from tsattn.inference.ensemble import loaded_files

    digest = hashlib.sha256()
    # Only what loading reads (a bundle's three files, or an ensemble's manifest and its members' files):
    # nothing else in the directory (links, config.yaml) travels to the executors.
    files = [directory / name for name in loaded_files(directory)]
    missing = [p.name for p in files if not p.is_file() or p.is_symlink()]
    if missing:
        raise TsattnError(f"{directory} is not a model bundle: {missing[0]} is missing or not a plain file")
    for path in files:
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    name = f"tsattn-bundle-{digest.hexdigest()[:20]}"
    staged = _staging_root() / name
    if not staged.is_dir():
        partial = Path(tempfile.mkdtemp(dir=_staging_root(), prefix=f".{name}."))
        for path in files:
            copy = partial / path.relative_to(directory)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
        os.replace(partial, staged)
    spark.sparkContext.addFile(str(staged), recursive=True)  # the same path again is a no-op
    return name


@functools.cache
def _staging_root() -> Path:
    """This process's directory of shipped bundles; the driver serves them from there until it exits."""
    root = Path(tempfile.mkdtemp(prefix="tsattn-spark-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root
