"""`tsattn forecast --engine spark`: read INPUT with Spark, forecast on its executors, write OUTPUT safely.

INPUT is a CSV file (read as text, parsed by tsattn as the local engine parses it) or Parquet (a .parquet
or .pq file, or a directory of them). OUTPUT is a Parquet directory when it ends in .parquet or .pq or has
no extension, else one CSV file; either appears only once complete.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tsattn.data.io import check_separator
from tsattn.errors import TsattnError, one_line
from tsattn.inference.publish import check_output_parent, output_parent, publish

JAVA_MISSING = "the Spark engine needs Java 17: install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
PARQUET_SUFFIXES = (".parquet", ".pq")  # as the local engine reads them (tsattn.inference.output)
# The local engine's CSV writes times as pandas does; Spark's default would be ISO with a T and fractions.
TIME_FORMAT = "yyyy-MM-dd HH:mm:ss"
# PySpark warns on every import in every worker that it does not yet vouch for pandas 3.
PANDAS_WARNING = "PySpark does not yet fully support pandas"


def run_forecast(
    model: str,
    input_path: str | Path,
    output_path: str | Path,
    horizon: int | None = None,
    tracking_uri: str | None = None,
    master: str = "local[2]",
    quiet: bool = False,
    sep: str | None = None,
    formula_guard: bool = True,
) -> int:
    """Forecast every series of INPUT on Spark and write OUTPUT; returns the number of rows written.

    Args:
        model: a bundle directory, runs:/<run id>[/path] or models:/<name>/<version|alias> (resolved here,
            on the driver, against `tracking_uri`).
        master: the Spark master: local[N], spark://host:7077, yarn... An active session is used as it is.
        quiet: no Spark session line on stderr (Spark's own logging is at ERROR either way).
        sep: a CSV input's field separator (default: the training file's).
        formula_guard: in a CSV OUTPUT, text cells a spreadsheet would run as a formula get a leading '
            (tsattn.inference.output.formula_safe_text, the local engine's rule).
    """
    from tsattn.spark import _pyspark, forecast_directory, user_errors

    _pyspark()
    for path, what in ((str(input_path), "INPUT"), (str(output_path), "OUTPUT")):
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", path):  # a URI, also as argparse's Path makes it (s3:/b)
            # The result is renamed into place on the driver's file system, which cannot rename on S3 or HDFS.
            raise TsattnError(
                f"{path}: the Spark engine reads INPUT and writes OUTPUT on a file system the driver mounts; for "
                "S3, HDFS or the like, read the DataFrame with Spark and call tsattn.spark.forecast (docs/spark.md)"
            )
        # Spark reads and writes paths through Hadoop, which takes these characters as patterns.
        if any(c in path for c in "*?[]{}:"):
            raise TsattnError(f"{path}: Spark reads {what} paths as patterns; rename it without * ? [ ] {{ }} :")
    input_path, output_path = Path(input_path), Path(output_path)
    if sep is not None:
        check_separator(sep, "--sep")
    reader = _input_kind(input_path)
    writer = _output_kind(output_path)
    from tsattn.inference.model_source import bundle_directory

    with bundle_directory(str(model), tracking_uri) as directory, _session(master, quiet) as spark:
        if sep is None:
            from tsattn.inference.bundle import load_bundle

            sep = load_bundle(directory).schema["sep"]  # checked like any bundle: a tampered one is one line
        history = _read(spark, input_path, reader, sep)
        with user_errors(), _every_csv_column_parsed(spark):
            future = forecast_directory(history, directory, horizon, source=str(input_path))
            if writer == "csv" and formula_guard:
                future = _formula_safe(future)
            with _malformed_csv(input_path, reader):
                return _write(future, output_path, writer, input_path)


@contextlib.contextmanager
def _session(master: str, quiet: bool) -> Iterator[object]:
    """The active SparkSession, or a new one on `master` (stopped again at the end)."""
    import warnings

    from pyspark.sql import SparkSession

    warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    _require_java()
    if master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        # Spark's Python workers run PYSPARK_PYTHON, else `python3` from PATH: on this machine, the
        # interpreter that has tsattn is this one. On a cluster the nodes' own Python is the user's to set.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    started = time.perf_counter()
    builder = (
        SparkSession.builder.master(master)
        .appName("tsattn forecast")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_log_config()}")
        # Naive times are wall-clock times to tsattn; UTC has no daylight-saving hour to skip or repeat.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.executorEnv.PYTHONWARNINGS", f"ignore:{PANDAS_WARNING}:FutureWarning")
    )
    try:
        spark = builder.getOrCreate()
    except Exception as err:  # the JVM did not start: Java missing, too old, or broken
        if "JAVA" in type(err).__name__.upper() or "JAVA" in str(err).upper():
            raise TsattnError(f"{JAVA_MISSING} ({one_line(err, 160)})") from None
        raise
    spark.sparkContext.setLogLevel("ERROR")
    if not quiet:
        seconds = time.perf_counter() - started
        print(f"tsattn: Spark {spark.version} on {master}, started in {seconds:.1f} s", file=sys.stderr)
    try:
        yield spark
    finally:
        spark.stop()


# Spark's default logging prints its banner, host and native-library warnings at start, and a failed
# task's stack several times over: a user's bad cell comes back as one TsattnError line instead
# (tsattn.spark.user_errors), and any other failure as the exception, with its stack, once.
LOG_CONFIG = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = spark: %p %c{1}: %m%n
"""
# The loggers that repeat a failed task's exception; the gateway's at the root level so that Spark does
# not announce a default level for an interactive shell.
QUIET_LOGGERS = {
    "org.apache.spark.api.python.PythonGatewayServer": "error",
    "org.apache.spark.executor.Executor": "off",
    "org.apache.spark.scheduler.TaskSetManager": "off",
    "org.apache.spark.util.Utils": "off",
    "org.apache.spark.sql.execution.datasources.FileFormatWriter": "off",
    "org.apache.spark.storage.ShuffleBlockFetcherIterator": "off",  # a cancelled task's fetch
}


def _log_config() -> Path:
    from tsattn.spark import _staging_root

    path = _staging_root() / "log4j2.properties"
    loggers = "".join(
        f"logger.quiet{i}.name = {name}\nlogger.quiet{i}.level = {level}\n"
        for i, (name, level) in enumerate(QUIET_LOGGERS.items())
    )
    path.write_text(LOG_CONFIG + loggers)
    return path


def _require_java() -> None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return
    if shutil.which("java") is None:
        raise TsattnError(JAVA_MISSING)


def _input_kind(path: Path) -> str:
    if not path.exists():
        raise TsattnError(f"{path}: no such file or directory; give a CSV file or Parquet (a file or a directory)")
    if path.is_dir():
        if any(p.suffix.lower() in PARQUET_SUFFIXES for p in path.iterdir()):
            return "parquet"
        raise TsattnError(f"{path} is a directory without .parquet files; give a CSV file or a Parquet directory")
    return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv"


def _output_kind(path: Path) -> str:
    """Parquet (a directory) or CSV (one file), by OUTPUT's extension, once OUTPUT can be written where asked."""
    check_output_parent(path)
    kind = "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv"  # the local engine's rule
    if kind == "csv" and path.is_dir():
        raise TsattnError(f"-o {path} is a directory; give a file name for CSV, or end it in .parquet")
    if kind == "parquet" and path.is_file():
        raise TsattnError(f"-o {path} is a file; Parquet output is a directory: give a new path")
    if kind == "parquet" and path.is_dir() and any(path.iterdir()) and not (path / "_SUCCESS").exists():
        # Replacing a directory is only safe when it is an earlier Spark output: never a user's folder.
        raise TsattnError(f"-o {path} is a directory that is not a Spark output; give a new path")
    return kind


def _read(spark, path: Path, kind: str, sep: str):
    if kind == "parquet":
        return spark.read.parquet(str(path))
    # Every column as text, empty cells as null: tsattn's own reader parses and names any bad cell. As the
    # local reader does: "" inside a quoted cell is one quote (Spark's default escape is a backslash), and a
    # row with more or fewer fields than the header is refused (FAILFAST; PERMISSIVE would drop extra
    # fields or fill missing ones), when the job reads it (_malformed_csv).
    options = {"header": True, "inferSchema": False, "sep": sep, "escape": '"', "mode": "FAILFAST"}
    options["ignoreLeadingWhiteSpace"] = True  # `x, "a,b"` is two fields, as the local reader takes it
    return spark.read.options(**options).csv(str(path))


@contextlib.contextmanager
def _every_csv_column_parsed(spark) -> Iterator[None]:
    """Spark parses only the columns a job selects (CSV column pruning), so a ragged row in a file with
    columns the model does not read would pass: every column is parsed while the forecast runs, and the
    session's setting is put back after (an active session is the caller's)."""
    key = "spark.sql.csv.parser.columnPruning.enabled"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


@contextlib.contextmanager
def _malformed_csv(source: Path, kind: str) -> Iterator[None]:
    """A CSV row Spark refuses (FAILFAST) as the local engine's one line, naming the row."""
    try:
        yield
    except Exception as err:
        found = re.search(r"Malformed CSV record: (.*?)(?: SQLSTATE|\n|$)", str(err))
        if kind != "csv" or "MALFORMED_CSV_RECORD" not in str(err) or found is None:
            raise
        raise TsattnError(
            f"{source} is not a well-formed CSV (a row's fields do not match the header: {found[1][:120]!r}); "
            "check the delimiter (--sep) and quoting"
        ) from None


def _formula_safe(frame):
    """The local engine's formula rule in Spark SQL, with the same patterns (tsattn.inference.output): a text
    cell of two or more characters that a spreadsheet would run gets a leading ', and so does such a column name."""
    from pyspark.sql import functions as F

    from tsattn.inference.output import FORMULA_START, PLAIN_NUMBER, formula_safe_text

    for name, kind in frame.dtypes:
        if kind == "string":
            cell = F.col("`" + name.replace("`", "``") + "`")
            risky = (F.length(cell) >= 2) & cell.rlike(FORMULA_START) & ~cell.rlike(PLAIN_NUMBER)
            frame = frame.withColumn(name, F.when(risky, F.concat(F.lit("'"), cell)).otherwise(cell))
    return frame.toDF(*(formula_safe_text(name) for name in frame.columns))


def _write(future, output: Path, kind: str, source: Path) -> int:
    """Write beside OUTPUT, then rename it into place: a failed job leaves nothing, an old OUTPUT untouched."""
    partial = Path(tempfile.mkdtemp(dir=output_parent(output), prefix=f".{output.name}.", suffix=".partial"))
    try:
        keys = future.columns[: future.columns.index("step") + 1]  # (id,) time, step: the local engine's order
        written = partial / kind
        if kind == "csv":
            # One partition after the forecast: repartition, since coalesce(1) would pull the forecast
            # itself into a single task.
            future.repartition(1).sortWithinPartitions(*keys).write.options(
                header=True, escape='"', timestampFormat=TIME_FORMAT, timestampNTZFormat=TIME_FORMAT
            ).csv(str(written))
            parts = sorted(written.glob("part-*"))  # one, or none for no rows
            result = parts[0] if parts else written
            rows = max(_lines(result) - 1, 0) if parts else 0
        else:
            future.sortWithinPartitions(*keys).write.parquet(str(written))
            result = written
            rows = _parquet_rows(written)
            for crc in written.glob(".*.crc"):  # Hadoop's checksums of local files: noise to a reader
                crc.unlink()
        if rows == 0:  # checked here, not before: counting first would read the input once more
            raise TsattnError(f"{source} has no rows; it needs the history of every series to forecast")
        publish(result, output)
        return rows
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _parquet_rows(directory: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(part).num_rows for part in directory.glob("part-*.parquet"))


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
