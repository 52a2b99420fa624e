"""`tsattn backtest MODEL INPUT.csv -o OUTPUT.csv`: rolling-origin evaluation beside two baselines."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tsattn.commands.common import (
    ArgumentParser,
    add_model_and_io_arguments,
    load_model,
    number_text,
    positive,
    progress,
    read_history,
)
from tsattn.errors import TsattnError
from tsattn.inference.publish import atomic_output, check_output

DESCRIPTION = """Forecast from every --step-th origin of every series in INPUT (once the model's lookback is
available) and compare with the actuals, beside the last-value and seasonal-naive forecasts of the same
origins, and the strongest simple forecast the model's training chose on its validation windows (the last
value or seasonal naive at the best candidate season; best_naive). Writes one row per origin, step and target
(actual, model, last_value, seasonal_naive, best_naive, and each quantile of a quantile model as model_q<level>) and prints MSE, MAE, sMAPE, MASE and CRPS overall and MSE
and MAE per horizon step, in the data's own units; a quantile model adds each central interval's coverage
and width. When INPUT is the file the
model was trained on, the origins start at its test border, so no forecast is scored on rows the model
was fit or selected on; --start chooses another first origin."""

START_HELP = """first forecast time: 'auto' (default: the model's test border when INPUT is its training file,
else the earliest origin, saying how many origins fall on rows the model was trained on), 'earliest', or
a timestamp (the first forecast step is at or after it)"""

LABELS = {"model": "model", "last_value": "last value", "seasonal_naive": "seasonal naive", "best_naive": "best simple"}


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="tsattn backtest", description=DESCRIPTION)
    add_model_and_io_arguments(parser)
    parser.add_argument("--step", type=positive, default=None, help="steps between origins (default: the horizon)")
    parser.add_argument("--metrics-json", type=Path, help="also write the metrics to this JSON file")
    parser.add_argument("--start", default="auto", help=START_HELP)
    parser.add_argument(
        "--season",
        type=positive,
        default=None,
        help="the seasonal lag of MASE's in-sample scale (default: the model's season length, data.season_length)",
    )
    return parser


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    check_output(args.output)
    if args.metrics_json is not None:
        check_output(args.metrics_json)
    from tsattn.inference.backtest import backtest, count_origins

    start = parse_start(args.start)
    bundle = load_model(args)
    step = args.step or bundle.horizon
    min_rows = bundle.lookback + bundle.horizon
    history = read_history(
        args.input, bundle, args.skip_short, min_rows, args.quiet, args.sep, "causal", args.rows_start
    )
    starts = first_forecast_times(start, bundle, args.input, history, args.quiet)
    with progress(count_origins(bundle, history, step, starts), args.quiet, unit="origins") as bar:
        result = backtest(
            bundle,
            history,
            step,
            args.batch_size,
            on_batch=lambda done: bar.update(done - bar.n),
            start=starts,
            mase_season=args.season,
        )
    if result.in_sample:  # never hidden, --quiet or not: these scores flatter the model
        border = min(bundle.test_starts.values())
        print(
            f"tsattn: {result.in_sample} of {result.windows} origins forecast rows before the model's test border "
            f"(from {border}), which it was trained or validated on: their errors are in-sample; "
            "--start auto (the default) leaves them out",
            file=sys.stderr,
        )
    report = {
        "model": args.model,
        "input": str(args.input),
        "series": result.series,
        "windows": result.windows,
        "step": step,
        "in_sample_origins": result.in_sample,
        "horizon": bundle.horizon,
        "mase_season": args.season or bundle.season_length,
        "units": "the data's own units",
        "quantiles": bundle.schema.get("quantiles"),
        "best_naive": bundle.schema.get("best_naive"),
        "metrics": result.metrics,
    }
    from tsattn.inference.output import TableWriter, is_parquet

    with atomic_output(args.output) as temporary:
        with TableWriter(temporary, is_parquet(args.output), not args.no_formula_guard) as writer:
            writer.write(result.rows)
        if args.metrics_json is not None:
            with atomic_output(args.metrics_json) as metrics_file:
                metrics_file.write_text(json.dumps(report, indent=2))
    print(format_report(report))
    if not args.quiet:
        seconds = time.perf_counter() - started
        print(f"tsattn: backtest of {result.windows} windows -> {args.output} in {seconds:.1f} s", file=sys.stderr)


def parse_start(value: str):
    """'auto', 'earliest' or a timestamp; anything else is the user's mistake, named before any work."""
    if value in ("auto", "earliest"):
        return value
    import pandas as pd

    try:
        start = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise TsattnError(f"--start {value!r}: give auto, earliest or a timestamp such as 2024-01-31 13:00") from None
    if start.tzinfo is not None:  # series times carry no zone: offsets were read as the file states them
        raise TsattnError(f"--start {value!r}: give the time without a UTC offset, on the input file's own clock")
    return start


def first_forecast_times(start, bundle, path: Path, history, quiet: bool) -> dict:
    """Series id -> the earliest first forecast step, from --start and the model's own test borders."""
    from tsattn.inference.backtest import trained_series_starts

    if start == "earliest":
        return {}
    if start != "auto":
        return {s.id: start for s in history.series}
    starts = trained_series_starts(bundle, history)
    reaching = [s for s in history.series if s.id in starts and s.time[0] < starts[s.id]]
    if reaching and not quiet:
        print(
            f"tsattn: {len(reaching)} series of {path} share an id with a series the model was trained on (a wide "
            "file's one series always does) and reach before its test border: "
            f"their origins start there ({min(starts[s.id] for s in reaching)}); --start earliest includes the "
            "rows it was trained or validated on",
            file=sys.stderr,
        )
    return starts


def format_report(report: dict) -> str:
    """The overall table, then MSE and MAE per horizon step for the model and both baselines.

    A quantile model adds its CRPS per step and each central interval's coverage against its nominal level.
    """
    from tsattn.data.naive import rule_label, rule_season

    metrics = report["metrics"]
    labels = {name: label for name, label in LABELS.items() if name in metrics}
    lines = [
        f"backtest: {report['series']} series, {report['windows']} origins (every {report['step']} steps), "
        f"horizon {report['horizon']}, errors in {report['units']}",
        "",
        f"{'':16}{'MSE':>12}{'MAE':>12}{'sMAPE %':>10}{'MASE':>8}{'CRPS':>12}",
    ]
    for name, label in labels.items():
        o = metrics[name]["overall"]
        mse, mae, crps = (number_text(o[key]) for key in ("mse", "mae", "crps"))
        lines.append(f"{label:16}{mse:>12}{mae:>12}{o['smape']:>10.2f}{o['mase']:>8.3f}{crps:>12}")
    model = metrics["model"]
    if "best_naive" in metrics:
        best, ours = metrics["best_naive"]["overall"]["mse"], model["overall"]["mse"]
        skill = f"{1.0 - ours / best:+.1%}" if best > 0 else "-"
        verdict = "beats it" if ours < best else "does not beat it"
        lines += [
            "",
            f"best simple: the strongest simple forecast, {rule_label(rule_season(report['best_naive']))}, chosen on "
            f"the model's validation windows; model skill vs it {skill} MSE ({verdict})",
        ]
    intervals = sorted(int(key.split("_")[1]) for key in model["overall"] if key.startswith("coverage_"))
    if intervals:
        lines.append("")
        for percent in intervals:
            coverage, width = model["overall"][f"coverage_{percent}"], model["overall"][f"width_{percent}"]
            lines.append(
                f"model {percent}% interval: covers {coverage:.1%} of the actuals (nominal {percent}%), "
                f"mean width {number_text(width)}"
            )
    extra = [("crps", "model CRPS")] if report.get("quantiles") else []  # a point model's CRPS is its MAE
    extra += [(f"coverage_{p}", f"{p}% covered") for p in intervals]
    header = "".join(f"{labels[n] + ' MSE':>20}{labels[n] + ' MAE':>20}" for n in labels)
    lines += ["", f"{'step':>4}" + header + "".join(f"{title:>16}" for _, title in extra)]
    for h in range(report["horizon"]):
        steps = [metrics[n]["per_step"] for n in labels]
        row = "".join(f"{number_text(step['mse'][h]):>20}{number_text(step['mae'][h]):>20}" for step in steps)
        for key, _ in extra:
            value = model["per_step"][key][h]
            row += f"{value:>16.1%}" if key.startswith("coverage") else f"{number_text(value):>16}"
        lines.append(f"{h + 1:>4}{row}")
    return "\n".join(lines)
