"""Calibration of quantile forecasts: each central interval's nominal against its empirical coverage.

    python benchmarks/calibration.py                                    # LSTM seq2seq, ETTh1 and M4 Hourly, seed 0
    python benchmarks/calibration.py --models lstm_seq2seq transformer --seeds 0 1 2
    python benchmarks/calibration.py --no-conformal                     # the intervals as trained only

Each run is a dataset's own experiment with quantile outputs, trained with the pinball loss:

    tsattn train experiment=<dataset>_<model> seed=<s> model.net.quantiles=[0.05,0.1,0.25,0.5,0.75,0.9,0.95]

(ETTh1: M, L=96, H=96; M4 Hourly: 414 series, L=168, H=48, its test windows the competition's 48 test values).
The run scores its own test split, in scaled units: CRPS (tsattn.metrics.crps, the integral over every level),
the median's MAE, and for the 50%, 80% and 90% intervals the share of actuals inside and the mean width.
The last value's CRPS (its MAE: a point forecast) on the same windows is the reference.

Each run is made twice, as trained and with `model.conformal=true` (the same training, then each interval
widened by its conformal offset on the validation windows): the coverage before and after calibration.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from report import (  # noqa: E402
    DEFAULT_ETTH1,
    DEFAULT_M4,
    DEFAULT_TRACKING_URI,
    find_run,
    hydra_quoted,
    machine,
    missing_data,
    replace_section,
    tracked_overrides,
    train_run,
)

LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
INTERVALS = (50, 80, 90)
FORECASTERS = ("lstm_seq2seq", "attention_seq2seq", "transformer")
EXPERIMENT = "calibration-benchmark"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    datasets = {}
    if "etth1" in args.datasets:
        if missing_data("calibration.py", args.data):
            return 2
        datasets["etth1"] = ("ETTh1 (M, L=96, H=96)", Path(args.data).resolve())
    if "m4_hourly" in args.datasets:
        source = Path(args.m4).resolve()
        if not (source / "Hourly-train.csv").is_file():
            print(f"calibration.py: {source}/Hourly-train.csv not found; pass --m4 or set TSATTN_M4", file=sys.stderr)
            return 2
        from m4_hourly import read_m4, write_long

        long_csv = write_long(*read_m4(source), REPO / "logs" / "benchmarks" / "m4")[0]
        datasets["m4_hourly"] = ("M4 Hourly (414 series, L=168, H=48)", long_csv)

    invocation = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    rows = []
    for dataset, (label, path) in datasets.items():
        tag = f"{invocation}-{dataset}"  # runs are found again by model and seed within one dataset's tag
        for model in args.models:
            for seed in args.seeds:
                for conformal in (False, True) if args.conformal else (False,):
                    overrides = [
                        f"experiment={dataset}_{model}",
                        f"seed={seed}",
                        f"data.path={hydra_quoted(path)}",
                        f"model.net.quantiles=[{','.join(map(str, LEVELS))}]",
                        f"model.conformal={str(conformal).lower()}",
                        *tracked_overrides(args.tracking_uri, EXPERIMENT, tag),
                    ]
                    what = f"{dataset} {model} seed {seed}{' conformal' if conformal else ''}"
                    print(f"[calibration] {what} ...", flush=True)
                    seconds = train_run(overrides, "calibration.py", what)
                    run = find_run(
                        "calibration.py",
                        args.tracking_uri,
                        EXPERIMENT,
                        tag,
                        model,
                        seed=seed,
                        **{"model/conformal": str(conformal)},
                    )
                    rows.append((label, model, seed, conformal, run.data.metrics, seconds))
                    print("    " + _summary(run.data.metrics), flush=True)
    table = render(rows)
    print(table, flush=True)
    if args.output:
        command = "python benchmarks/calibration.py " + " ".join(argv if argv is not None else sys.argv[1:])
        body = f"Made by `{command.strip()}` on {time.strftime('%Y-%m-%d')}, {machine()}.\n\n{table}"
        replace_section(Path(args.output), "calibration", body)
    return 0


def _summary(metrics: dict) -> str:
    coverage = ", ".join(f"{p}%: {metrics[f'test/coverage_{p}']:.1%}" for p in INTERVALS)
    return f"CRPS {metrics['test/crps']:.4f}, median MAE {metrics['test/mae']:.4f}, coverage {coverage}"


def render(rows: list) -> str:
    """One row per run: CRPS beside the median's MAE and the last value's CRPS, then coverage and width."""
    header = "| data | model | seed | conformal | CRPS | median MAE | last value CRPS |"
    header += "".join(f" {p}% covered |" for p in INTERVALS) + "".join(f" {p}% width |" for p in INTERVALS)
    header += " s per run |"
    lines = [
        "**Calibration of quantile forecasts (levels " + ", ".join(map(str, LEVELS)) + "): test split, scaled units**",
        "",
        header,
        "|" + "---|" * (7 + 2 * len(INTERVALS) + 1),
    ]
    for label, model, seed, conformal, m, seconds in rows:
        cells = [label, model, str(seed), "yes" if conformal else "no"]
        cells += [f"{m[f'test/{key}']:.4f}" for key in ("crps", "mae", "naive_crps")]
        cells += [f"{m[f'test/coverage_{p}']:.1%} ({p}%)" for p in INTERVALS]
        cells += [f"{m[f'test/width_{p}']:.3f}" for p in INTERVALS]
        cells.append(f"{seconds:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=("etth1", "m4_hourly"), default=["etth1", "m4_hourly"])
    parser.add_argument("--models", nargs="+", choices=FORECASTERS, default=["lstm_seq2seq"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--no-conformal", dest="conformal", action="store_false", help="only the intervals as trained")
    parser.add_argument("--data", default=DEFAULT_ETTH1, help="ETTh1.csv")
    parser.add_argument("--m4", default=DEFAULT_M4, help="folder of Hourly-train.csv and Hourly-test.csv")
    parser.add_argument(
        "--tracking-uri",
        default=DEFAULT_TRACKING_URI,
    )
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
