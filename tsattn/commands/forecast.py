"""`tsattn forecast MODEL INPUT.csv -o OUTPUT.csv`: the H steps after each series' last timestamp."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tsattn.commands.common import (
    ArgumentParser,
    add_model_and_io_arguments,
    check_short,
    load_model,
    progress,
    read_history,
    read_input,
)
from tsattn.inference.publish import atomic_output, check_output

DESCRIPTION = """Forecast the steps after the end of every series in INPUT with a trained model, in the
data's own units. One output row per series and future timestamp: the id column (long files), the time
column, step (1..horizon), a point forecast per target and, for quantile models, <target>_q<level>.
A long file whose series each come in one block of rows, in time order and without gaps, is streamed:
memory holds a block of rows and a batch of series, whatever the file's size. Other files are read whole.
A model trained with data.future_covariates needs their values over the horizon: --future FUTURE.csv."""

FUTURE_HELP = """the future covariates of a model trained with data.future_covariates: a CSV (or Parquet) with
the id column (long files), the time column and every future covariate, one row for each of the trained
horizon's steps after each series' last row (rows further ahead are ignored)"""


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="tsattn forecast", description=DESCRIPTION)
    add_model_and_io_arguments(parser)
    parser.add_argument("--horizon", type=int, help="steps to forecast, at most the trained horizon (default: it)")
    parser.add_argument("--future", type=Path, help=FUTURE_HELP)
    parser.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local (default: this process, streaming large files) or spark (pip install 'tsattn[spark]'; "
        "INPUT and OUTPUT may be Parquet directories; see docs/spark.md)",
    )
    parser.add_argument(
        "--spark-master", default="local[2]", help="with --engine spark: local[N], spark://host:7077, yarn..."
    )
    return parser


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    if args.engine == "spark":
        _on_spark(args, started)
        return
    check_output(args.output)
    bundle = load_model(args)
    from tsattn.inference.future import require_future_choice

    require_future_choice(bundle.schema, args.future is not None)
    if args.horizon is not None:
        from tsattn.inference.forecast import check_horizon

        check_horizon(bundle, args.horizon)  # before reading the input: a big file is not read for nothing
    result = run(bundle, args)
    if not args.quiet:
        seconds = time.perf_counter() - started
        stages = ", ".join(f"{name} {value:.1f} s" for name, value in result.seconds.items())
        print(
            f"tsattn: forecast {result.series} series x {result.horizon} steps -> {args.output} "
            f"({result.rows} rows) in {seconds:.1f} s ({result.how}: {stages})",
            file=sys.stderr,
        )


def _on_spark(args, started: float) -> None:
    """The same forecast on Spark: series grouped by id on the executors, each loading the bundle once."""
    from tsattn.errors import TsattnError
    from tsattn.inference.spark_engine import run_forecast

    unsupported = {
        "--skip-short": args.skip_short,
        "--device": args.device != "auto",
        "--batch-size": args.batch_size != 1024,
        "--future": args.future is not None,
        "--rows-start": args.rows_start is not None,
    }
    for option, given in unsupported.items():
        if given:
            raise TsattnError(f"{option} is not available with --engine spark; leave it out or use --engine local")
    rows = run_forecast(
        args.model,
        args.input,
        args.output,
        args.horizon,
        args.tracking_uri,
        args.spark_master,
        args.quiet,
        args.sep,
        formula_guard=not args.no_formula_guard,
    )
    if not args.quiet:
        seconds = time.perf_counter() - started
        print(f"tsattn: forecast on Spark ({args.spark_master}) -> {args.output} ({rows} rows) in {seconds:.1f} s",
              file=sys.stderr)  # fmt: skip


@dataclass
class Result:
    series: int
    rows: int
    horizon: int
    how: str  # "streamed" or "read whole"
    seconds: dict[str, float]  # by stage: reading, validation, windows, forward, writing


def run(bundle, args) -> Result:
    """Stream the input when it allows (see tsattn.inference.streaming), else read it whole; write OUTPUT."""
    from tsattn.inference.output import TableWriter, is_parquet
    from tsattn.inference.streaming import NeedsWholeFile, stream_forecast

    horizon = bundle.horizon if args.horizon is None else args.horizon
    sep = bundle.schema["sep"] if args.sep is None else args.sep
    parquet = is_parquet(args.output)
    with atomic_output(args.output) as temporary:
        if args.future is not None or args.rows_start is not None:  # two tables to join, or rows to turn: whole
            return _read_whole(bundle, args, horizon, temporary, parquet)
        try:
            guard = not args.no_formula_guard
            with progress(None, args.quiet) as bar, TableWriter(temporary, parquet, guard) as writer:
                on_series = lambda done: bar.update(done - bar.n)  # noqa: E731
                report = stream_forecast(bundle, args.input, writer, horizon, args.batch_size, sep, on_series)
            check_short(args.input, report.short, report.series + len(report.short), bundle.lookback,
                        args.skip_short, args.quiet)  # fmt: skip
            result = Result(report.series, writer.rows, horizon, "streamed", report.seconds)
        except NeedsWholeFile as why:
            if not args.quiet and not why.about_the_model:
                print(f"tsattn: {why}: reading {args.input} whole instead of streaming it", file=sys.stderr)
            result = _read_whole(bundle, args, horizon, temporary, parquet)
    return result


def _read_whole(bundle, args, horizon: int, temporary, parquet: bool) -> Result:
    from tsattn.inference.forecast import forecast
    from tsattn.inference.output import TableWriter

    clock = time.perf_counter()
    history = read_history(
        args.input, bundle, args.skip_short, bundle.lookback, args.quiet, args.sep, "whole", args.rows_start
    )
    future = None
    if args.future is not None:
        from tsattn.inference.future import future_from_frame

        sep = bundle.schema["sep"] if args.sep is None else args.sep
        table = read_input(args.future, sep, option="--future")
        from tsattn.inference.output import reads_as_parquet

        lines = not reads_as_parquet(args.future)  # a CSV's rows are named by line, a Parquet file's by row
        future = future_from_frame(
            bundle.schema, history, table, str(args.future), skipped_ok=args.skip_short, lines=lines
        )
    reading = time.perf_counter() - clock
    with progress(len(history.series), args.quiet) as bar:
        on_batch = lambda done: bar.update(done - bar.n)  # noqa: E731
        frame = forecast(bundle, history, horizon, args.batch_size, on_batch=on_batch, future=future)
    forward = time.perf_counter() - clock - reading
    clock = time.perf_counter()
    with TableWriter(temporary, parquet, not args.no_formula_guard) as writer:
        writer.write(frame)
    seconds = {"reading and validation": reading, "forward": forward, "writing": time.perf_counter() - clock}
    return Result(len(history.series), len(frame), horizon, "read whole", seconds)
