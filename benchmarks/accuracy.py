"""ETTh1 under the Informer / Autoformer / Time-Series-Library protocol: every model x seeds, beside published figures.

    python benchmarks/accuracy.py                      # M and S, H=96, 6 models x seeds 0 1 2
    python benchmarks/accuracy.py --horizon 336 --settings M
    python benchmarks/accuracy.py --models transformer linear --seeds 0

Each run is the command a user would type, `tsattn train experiment=etth1_<model> seed=<s> ...`, in its
own process, so a row of the table is reproduced by running that command. The protocol lives in
conf/data/etth1.yaml and conf/experiment/: train rows [0, 8640), val [8640, 11520), test [11520, 14400)
with lookback from before each border, scaler fit on training rows, every test window scored on the
scaled data (2785 windows at L=96, H=96). S is OT to OT (`data.targets=[OT]`).

Every run is recorded in MLflow (experiment `etth1-benchmark-<setting>-H<h>`, tagged with this
invocation's id), and the scores are read back from there. The table goes to stdout and into
BENCHMARKS.md between markers of its own, with the command that made it.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from report import DEFAULT_ETTH1, ETTH1_HELP, machine, missing_data, replace_section  # noqa: E402

MODELS = ("transformer", "attention_seq2seq", "lstm_seq2seq", "linear", "seasonal_naive", "last_value")
HORIZONS = (96, 192, 336, 720)
RUN_LIMIT_S = 600  # the bar: each ETTh1 run within 10 minutes on a 2-core machine

# Published test MSE / MAE on ETTh1 at L=96 (NLinear at L=336), from the papers and Time-Series-Library.
PUBLISHED = {
    ("M", 96): [
        ("TimeMixer", 0.375, 0.400),
        ("iTransformer", 0.386, 0.405),
        ("DLinear", 0.386, 0.400),
        ("PatchTST", 0.393, 0.408),
        ("Autoformer", 0.449, 0.459),
        ("Informer", 0.865, 0.713),
        ("seasonal naive (24 h)", 0.512, 0.433),
        ("repeat last value", 1.295, 0.713),
    ],
    ("S", 96): [
        ("NLinear (L=336)", 0.053, 0.177),
        ("repeat last value", 0.069, 0.203),
        ("Autoformer", 0.071, 0.206),
    ],
}
# What each of tsattn's forecasters must reach (3-seed mean test MSE), M, H=96.
BARS = {"transformer": 0.40, "attention_seq2seq": 0.42, "lstm_seq2seq": 0.45}
FORECASTERS = tuple(BARS)
# What the best of the three forecasters must reach (3-seed mean test MSE), per setting at H=96.
BEST_BARS = {("M", 96): 0.375, ("S", 96): 0.062}


@dataclass
class Row:
    model: str
    mse: list[float]
    mae: list[float]
    seconds: list[float]
    epochs: list[int]  # validation epochs run (0 for the baselines, which are only tested)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_data("accuracy.py", args.data):
        return 2
    data_path = Path(args.data).resolve()
    invocation = time.strftime("%Y%m%d-%H%M%S")
    for setting in args.settings:
        experiment = f"etth1-benchmark-{setting}-H{args.horizon}"
        rows = []
        for model in args.models:
            seconds = [run_one(args, data_path, setting, model, seed, experiment, invocation) for seed in args.seeds]
            rows.append(read_row(args.tracking_uri, experiment, invocation, model, len(args.seeds), seconds))
        table = render(setting, args.horizon, rows, args.seeds)
        print(table, flush=True)
        if args.output:
            command = "python benchmarks/accuracy.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
            body = f"Made by `{command.strip()}` on {time.strftime('%Y-%m-%d')}, {machine()}.\n\n{table}"
            replace_section(Path(args.output), f"accuracy-{setting}-H{args.horizon}", body)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", choices=("M", "S"), default=["M", "S"])
    parser.add_argument("--horizon", type=int, choices=HORIZONS, default=96)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--data",
        default=DEFAULT_ETTH1,
        help=ETTH1_HELP,
    )
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{REPO / 'logs' / 'mlflow' / 'mlflow.db'}"),
        help="MLflow store the runs are recorded in (default: the project's logs/mlflow store)",
    )
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    parser.add_argument(
        "--override", action="append", default=[], help="extra Hydra override for every run (repeatable)"
    )
    return parser.parse_args(argv)


def run_one(args, data_path: Path, setting: str, model: str, seed: int, experiment: str, invocation: str):
    """One `tsattn train` process; returns its wall time in seconds."""
    overrides = [
        f"experiment=etth1_{model}",
        f"seed={seed}",
        f"data.path={data_path}",
        f"data.horizon={args.horizon}",
        f"logger.tracking_uri={args.tracking_uri}",
        f"logger.experiment_name={experiment}",
        f"logger.tags={{benchmark:'{invocation}'}}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        *(["data.targets=[OT]"] if setting == "S" else []),
        *args.override,
    ]
    command = [str(Path(sys.executable).with_name("tsattn")), "train", *overrides]
    print(f"[{setting} H={args.horizon}] {model} seed {seed}: tsattn train {' '.join(overrides[:2])} ...", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"accuracy.py: {model} seed {seed} failed (exit {result.returncode}):\n{tail}")
    print(f"    {elapsed:.0f} s", flush=True)
    return elapsed


def read_row(tracking_uri: str, experiment: str, invocation: str, model: str, expected: int, seconds) -> Row:
    """Test MSE and MAE and the epochs of this invocation's runs of one model, read back from MLflow."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.benchmark = '{invocation}' and tags.`tsattn.model` = '{model}'",
        max_results=1000,
    )
    finished = [r for r in runs if r.info.status == "FINISHED" and "test/mse" in r.data.metrics]
    if len(finished) != expected:
        raise SystemExit(
            f"accuracy.py: expected {expected} finished {model} runs in {experiment}, found {len(finished)}"
        )
    return Row(
        model,
        mse=[r.data.metrics["test/mse"] for r in finished],
        mae=[r.data.metrics["test/mae"] for r in finished],
        seconds=list(seconds),
        epochs=[len(client.get_metric_history(r.info.run_id, "val/loss")) for r in finished],
    )


def render(setting: str, horizon: int, rows: list[Row], seeds: list[int]) -> str:
    """The markdown table: tsattn's models (mean +- sample std over seeds), then the published figures."""
    title = f"ETTh1 {setting}, L=96, H={horizon}: test MSE / MAE on the scaled data, mean +- std over seeds {seeds}"
    lines = [
        f"**{title}**",
        "",
        "| model | MSE | MAE | bar | epochs | s per run (max) |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: mean(r.mse)):
        bar = BARS.get(row.model) if (setting, horizon) == ("M", 96) else None
        verdict = "" if bar is None else f"<= {bar}: {_verdict(mean(row.mse), bar)}"
        lines.append(
            f"| tsattn {row.model} | {fmt(row.mse)} | {fmt(row.mae)} | {verdict} | {mean(row.epochs):.0f} | "
            f"{mean(row.seconds):.0f} ({max(row.seconds):.0f}) |"
        )
    for name, mse, mae in PUBLISHED.get((setting, horizon), []):
        lines.append(f"| {name} (published) | {mse:.3f} | {mae:.3f} | | | |")
    return "\n".join([*lines, "", *summary(setting, horizon, rows)]) + "\n"


def summary(setting: str, horizon: int, rows: list[Row]) -> list[str]:
    """The bars that concern the forecasters together: the best one's, and beating seasonal naive."""
    forecasters = [r for r in rows if r.model in FORECASTERS]
    if not forecasters:
        return []
    lines = []
    best = min(forecasters, key=lambda r: mean(r.mse))
    bar = BEST_BARS.get((setting, horizon))
    if bar is not None:
        lines.append(
            f"- Best forecaster: {best.model}, {mean(best.mse):.4f}; bar <= {bar}: {_verdict(mean(best.mse), bar)}."
        )
    naive = next((r for r in rows if r.model == "seasonal_naive"), None)
    if naive is not None:
        worse = [r.model for r in forecasters if mean(r.mse) >= mean(naive.mse)]
        verdict = "every one is" if not worse else f"not {', '.join(worse)}"
        lines.append(f"- Better than seasonal naive ({mean(naive.mse):.4f}): {verdict}.")
    return lines


def _verdict(value: float, bar: float) -> str:
    return "met" if value <= bar else f"missed by {value - bar:.4f}"


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def fmt(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    m = mean(values)
    std = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    return f"{m:.4f} +- {std:.4f}"


if __name__ == "__main__":
    sys.exit(main())
