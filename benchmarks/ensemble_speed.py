"""Forecast time of an ensemble against one of its members: the input is read and windowed once.

    python benchmarks/ensemble_speed.py                      # 5 LSTM seq2seq members, 1,000 series x 500 rows
    python benchmarks/ensemble_speed.py --members 3 --model transformer

Each member is the model's defaults at L=96, H=24, trained for a few batches with its own seed (speed, not
accuracy, is measured); `tsattn ensemble` combines them. Each row is the median of --repeats runs of the
whole `tsattn forecast` command in a fresh process (imports, reading the CSV, loading, forecasting, writing),
and of the forecast call alone in this process (`tsattn.load(...).forecast(frame)`, the frame already read).
The issue's bar: a 5-member ensemble within 5.5x one member's time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from forecast_cli import make_csv, train_bundle  # noqa: E402
from report import machine, replace_section  # noqa: E402

BAR = 5.5  # times one member's, for 5 members
LOOKBACK, HORIZON = 96, 24


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--model", default="lstm_seq2seq")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tsattn-ensemble-speed-") as tmp:
        workdir = Path(tmp)
        csv = workdir / "history.csv"
        make_csv(csv, args.series, args.rows)
        members = [
            str(train_bundle(args.model, csv, workdir / f"member{seed}", LOOKBACK, HORIZON, seed=seed))
            for seed in range(args.members)
        ]
        ensemble = workdir / "ensemble"
        subprocess.run([*tsattn(), "ensemble", *members, "-o", str(ensemble)], check=True, capture_output=True)
        rows = []
        for name, model in (("one member", members[0]), (f"ensemble of {args.members}", str(ensemble))):
            command = statistics.median(run_command(model, csv, workdir) for _ in range(args.repeats))
            call = statistics.median(forecast_call(model, csv) for _ in range(args.repeats))
            rows.append((name, command, call))
    table = render(rows, args)
    print(table)
    if args.output:
        invocation = "python benchmarks/ensemble_speed.py " + " ".join(argv or sys.argv[1:])
        body = f"Made by `{invocation.strip()}` on {time.strftime('%Y-%m-%d')}, {machine()}.\n\n{table}"
        replace_section(Path(args.output), f"ensemble-speed-{args.model}", body)
    return 0


def tsattn() -> list[str]:
    return [sys.executable, "-m", "tsattn"]


def run_command(model: str, csv: Path, workdir: Path) -> float:
    """Seconds of one `tsattn forecast` process, start to exit."""
    started = time.perf_counter()
    command = [*tsattn(), "forecast", model, str(csv), "-o", str(workdir / "forecast.csv"), "--quiet"]
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def forecast_call(model: str, csv: Path) -> float:
    """Seconds of the forecast alone: the model loaded and the history read beforehand."""
    import pandas as pd

    import tsattn as api

    loaded, frame = api.load(model), pd.read_csv(csv)
    started = time.perf_counter()
    loaded.forecast(frame)
    return time.perf_counter() - started


def render(rows: list[tuple[str, float, float]], args) -> str:
    (_, one_command, one_call), (name, command, call) = rows
    lines = [
        f"**Ensemble forecast time: {args.members} {args.model} members against one ({args.series:,} series x "
        f"{args.rows} rows, L=96, H=24; median of {args.repeats})**",
        "",
        "| model | `tsattn forecast` command, s | forecast call, s |",
        "|---|---|---|",
    ]
    for label, seconds, call_seconds in rows:
        lines.append(f"| {label} | {seconds:.2f} | {call_seconds:.2f} |")
    ratio, call_ratio = command / one_command, call / one_call
    verdict = "met" if ratio <= BAR else f"missed by {ratio - BAR:.2f}x"
    bar = f"the bar (at most {BAR}x for 5 members) is {verdict}" if args.members == 5 else "the bar is for 5 members"
    lines += ["", f"- {name}: {ratio:.2f}x one member's command time ({call_ratio:.2f}x its forecast call); {bar}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
