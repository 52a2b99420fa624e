"""`tsattn dashboard --experiment NAME -o report.html`: one self-contained page to compare an experiment's runs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tsattn.commands.common import ArgumentParser
from tsattn.inference.publish import atomic_output, check_output

DESCRIPTION = """Write one HTML page for an MLflow experiment: the leaderboard (sortable), learning curves per
run, error by horizon step against the last-value and seasonal-naive baselines, forecasts against actuals,
attention heatmaps and the configuration differences between each model's best run. The page opens from
disk: no server, no network, no plotting library."""


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="tsattn dashboard", description=DESCRIPTION)
    parser.add_argument("--experiment", required=True, help="the MLflow experiment")
    parser.add_argument("-o", "--output", type=Path, default=Path("report.html"), help="default: report.html")
    parser.add_argument("--metric", default="test/mse", help="metric to rank by (default test/mse)")
    parser.add_argument("--filter", default="", help="an MLflow search filter for the runs")
    parser.add_argument("--tracking-uri", help="default: MLFLOW_TRACKING_URI, else sqlite:///logs/mlflow/mlflow.db")
    return parser


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    check_output(args.output)
    from mlflow import MlflowClient

    from tsattn.commands.compare import search_runs
    from tsattn.reporting.dashboard import build_payload, render
    from tsattn.tracking.store import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    runs = search_runs(args.experiment, args.filter, uri)
    page = render(build_payload(MlflowClient(uri), args.experiment, runs, args.metric))
    with atomic_output(args.output) as temporary:
        temporary.write_text(page, encoding="utf-8")
    size_kb = args.output.stat().st_size / 1024
    seconds = time.perf_counter() - started
    shown = sum(r.data.tags.get("tsattn.role") != "sweep" for r in runs)  # sweep parents are not runs to compare
    print(f"tsattn: dashboard of {shown} runs -> {args.output} ({size_kb:.0f} KB) in {seconds:.1f} s", file=sys.stderr)
