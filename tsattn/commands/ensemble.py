"""`tsattn ensemble MEMBER... -o DIR`: several models of the same data saved as one ensemble bundle."""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path

from tsattn.commands.common import ArgumentParser, positive
from tsattn.errors import TsattnError
from tsattn.inference.publish import check_output_parent

DESCRIPTION = """Write an ensemble bundle: the members' bundles (by content hash) and a combination rule. Members
are bundle directories, runs:/<run id> or models:/<name>/<version>, or the --top K finished runs of an
experiment by a validation metric. They must forecast the same data the same way (targets, columns,
frequency, horizon, quantile levels, scaler); their lookbacks may differ. The ensemble forecasts with every
command that takes a model (forecast, backtest, tsattn.load, the Spark engine): each member forecasts the
same windows, and their forecasts are combined step by step (and level by level for quantile models)."""


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="tsattn ensemble", description=DESCRIPTION)
    parser.add_argument("members", nargs="*", help="bundle directories, runs:/<run id> or models:/<name>/<version>")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the new ensemble directory")
    parser.add_argument("--combine", choices=("mean", "median"), default="mean", help="default mean")
    parser.add_argument("--experiment", help="choose the members among this MLflow experiment's finished runs")
    parser.add_argument("--filter", default="", help="with --experiment: an MLflow search filter")
    parser.add_argument("--top", type=positive, help="with --experiment: the K best runs by --metric (default: all)")
    parser.add_argument(
        "--metric",
        default="val/loss_best",
        help="with --experiment: the validation metric that ranks runs, lower first (default val/loss_best); "
        "a test metric is refused: choosing members on the test split would flatter the ensemble's test score",
    )
    parser.add_argument("--tracking-uri", help="default: MLFLOW_TRACKING_URI, else sqlite:///logs/mlflow/mlflow.db")
    return parser


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.members and args.experiment:
        raise TsattnError("tsattn ensemble: give MEMBER arguments or --experiment, not both")
    if not args.members and not args.experiment:
        raise TsattnError("tsattn ensemble: give two or more MEMBER arguments, or --experiment NAME")
    if not args.experiment and (args.top or args.filter):
        raise TsattnError("tsattn ensemble: --top and --filter choose among an experiment's runs; add --experiment")
    check_output_parent(args.output)
    if args.output.exists():
        raise TsattnError(f"-o {args.output} exists; give a new directory for the ensemble")
    members = args.members or chosen_runs(args.experiment, args.filter, args.top, args.metric, args.tracking_uri)
    from tsattn.inference.ensemble import save_ensemble
    from tsattn.inference.model_source import bundle_directory

    with contextlib.ExitStack() as stack:
        directories = [(stack.enter_context(bundle_directory(m, args.tracking_uri)), m) for m in members]
        manifest = save_ensemble(directories, args.output, args.combine)
    print(
        f"tsattn: ensemble of {len(manifest['members'])} members ({args.combine}) -> {args.output}\n"
        f"  forecast with: tsattn forecast {args.output} <history.csv> -o forecast.csv",
        file=sys.stderr,
    )


def chosen_runs(experiment: str, filter_string: str, top: int | None, metric: str, tracking_uri: str | None):
    """runs:/ URIs of the experiment's finished runs with a bundle, best `metric` first, at most `top`."""
    from tsattn.commands.compare import search_runs

    if not metric.startswith("val/"):
        raise TsattnError(
            f"--metric {metric}: members are chosen on a validation metric (val/...), never on the test split "
            "whose score the ensemble is judged by"
        )
    if "test/" in filter_string:
        raise TsattnError(
            f"--filter {filter_string!r}: the filter reads a test metric; members are chosen on validation only"
        )
    runs = [r for r in search_runs(experiment, filter_string, tracking_uri) if r.info.status == "FINISHED"]
    scored = [(r.data.metrics.get(metric, math.nan), r) for r in runs]
    ranked = sorted(((value, r) for value, r in scored if math.isfinite(value)), key=lambda pair: pair[0])
    if not ranked:
        raise TsattnError(f"experiment {experiment!r} has no finished run with {metric} matching the filter")
    losses = sorted({str(r.data.params.get("model/loss")) for _, r in ranked})
    if metric.startswith("val/loss") and len(losses) > 1:
        raise TsattnError(
            f"--metric {metric}: the runs trained with different losses ({', '.join(losses)}), whose {metric} are on "
            "different scales; rank them by a metric every run logs alike, e.g. --metric val/mae"
        )
    chosen = ranked[:top] if top else ranked
    if len(chosen) < 2:
        raise TsattnError(
            f"experiment {experiment!r}: only {len(chosen)} finished run has {metric}; an ensemble needs 2"
        )
    return [f"runs:/{run.info.run_id}" for _, run in chosen]
