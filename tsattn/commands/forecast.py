"""`tsattn forecast MODEL INPUT.csv -o OUTPUT.csv`: the H steps after each series' last timestamp."""

from __future__ import annotations

import sys
import time

from tsattn.commands.common import (
    ArgumentParser,
    add_model_and_io_arguments,
    atomic_output,
    check_output,
    load_model,
    progress,
    read_history,
)

DESCRIPTION = """Forecast the steps after the end of every series in INPUT with a trained model, in the
data's own units. One output row per series and future timestamp: the id column (long files), the time
column, step (1..horizon), a point forecast per target and, for quantile models, <target>_q<level>."""


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="tsattn forecast", description=DESCRIPTION)
    add_model_and_io_arguments(parser)
    parser.add_argument("--horizon", type=int, help="steps to forecast, at most the trained horizon (default: it)")
    return parser


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    check_output(args.output)
    from tsattn.inference.forecast import check_horizon, forecast

    bundle = load_model(args)
    if args.horizon is not None:
        check_horizon(bundle, args.horizon)  # before reading the input: a big file is not read for nothing
    history = read_history(args.input, bundle, args.skip_short, bundle.lookback, args.quiet, args.sep, "whole")
    with progress(len(history.series), args.quiet) as bar:
        frame = forecast(bundle, history, args.horizon, args.batch_size, on_batch=lambda done: bar.update(done - bar.n))
    with atomic_output(args.output) as temporary:
        frame.to_csv(temporary, index=False)
    if not args.quiet:
        seconds = time.perf_counter() - started
        print(
            f"tsattn: forecast {len(history.series)} series x {frame['step'].max()} steps -> {args.output} "
            f"({len(frame)} rows) in {seconds:.1f} s",
            file=sys.stderr,
        )
