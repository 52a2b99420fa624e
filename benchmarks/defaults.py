"""Defaults that carry: each forecaster trained on a dataset with nothing set but the file, L and H.

    python benchmarks/defaults.py                         # ETTh1 and ETTh2, L=96, H=96, the three forecasters
    python benchmarks/defaults.py --datasets etth2 --models transformer
    python benchmarks/defaults.py --settings tuned        # only the tuned experiments on the same split

Each run is exactly what a user with a CSV would type, in its own process:

    tsattn train data=csv data.path=<file> data.lookback=96 data.horizon=96 model=<name>

so the split is data=csv's (70% train, 10% validation, 20% test by time) and every model setting is the
config default (channel independence, RevIN, segments of one season, warm-up and cosine
decay, early stopping). Each run scores seasonal naive and the last value on the same test windows, which
is the bar: every default forecaster must beat both. The epoch of the best validation loss shows whether
training stopped at its start. A second table (`--settings tuned`) runs the tuned experiment on the same
file, split and windows (`tsattn train experiment=<dataset>_<name> data=csv data.path=<file> ...
data.batch_size=<the experiment's>`: the model and training settings chosen on the benchmark's validation
split), so the two say what the defaults leave behind. Scores are read back from MLflow.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from report import (  # noqa: E402
    DEFAULT_ETTH1,
    DEFAULT_ETTH2,
    DEFAULT_TRACKING_URI,
    find_run,
    hydra_quoted,
    machine,
    missing_data,
    replace_section,
    tracked_overrides,
    train_run,
)

FORECASTERS = ("lstm_seq2seq", "attention_seq2seq", "transformer")
DATASETS = {"etth1": DEFAULT_ETTH1, "etth2": DEFAULT_ETTH2}


HEADINGS = {
    "defaults": "Defaults on a user's CSV: `tsattn train data=csv data.path=<file> data.lookback={L} "
    "data.horizon={H} model=<name>`, nothing else set (seed 0)",
    "tuned": "The tuned experiments on the same CSV, split and windows: `tsattn train experiment=<data>_<name> "
    "data=csv data.path=<file> data.lookback={L} data.horizon={H}` (seed 0)",
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = {name: Path(DATASETS[name]).resolve() for name in args.datasets}
    if any(missing_data("defaults.py", str(path)) for path in paths.values()):
        return 2
    if "tuned" in args.settings:
        for name in paths:
            for model in args.models:
                if problem := tuned_misfit(name, model, args.lookback, args.horizon):
                    print(f"defaults.py: {problem}", file=sys.stderr)
                    return 2
    invocation = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    for kind in args.settings:
        table = render(
            kind, args, [run_one(args, n, p, m, invocation, kind) for n, p in paths.items() for m in args.models]
        )
        print(table, flush=True)
        if args.output:
            command = "python benchmarks/defaults.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
            body = f"Made by `{command.strip()}` on {time.strftime('%Y-%m-%d')}, {machine()}.\n\n{table}"
            replace_section(Path(args.output), "defaults" if kind == "defaults" else "defaults-tuned", body)
    return 0


def render(kind: str, args: argparse.Namespace, results: list[dict]) -> str:
    lines = [
        f"**{HEADINGS[kind].format(L=args.lookback, H=args.horizon)}**",
        "",
        "Test MSE on the scaled data over data=csv's own split (last 20% of rows), beside seasonal naive and "
        "the last value on the same windows.",
        "",
        "| data | model | test MSE | seasonal naive | last value | beats both | best epoch (from 0) / epochs run | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        beats = result["mse"] < result["snaive"] and result["mse"] < result["naive"]
        lines.append(
            f"| {result['data']} | {result['model']} | {result['mse']:.4f} | {result['snaive']:.4f} | "
            f"{result['naive']:.4f} | {'yes' if beats else 'NO'} | {result['best_epoch']} / {result['epochs']} | "
            f"{result['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    parser.add_argument("--models", nargs="+", choices=FORECASTERS, default=list(FORECASTERS))
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument(
        "--tracking-uri",
        default=DEFAULT_TRACKING_URI,
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=tuple(HEADINGS),
        default=list(HEADINGS),
        help="the defaults, and the tuned experiments on the same split (a table each)",
    )
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    args = parser.parse_args(argv)
    for key in ("datasets", "models", "settings"):  # a name given twice would run twice and match two runs
        setattr(args, key, list(dict.fromkeys(getattr(args, key))))
    return args


def tuned_misfit(name: str, model: str, lookback: int, horizon: int) -> str | None:
    """Why the tuned experiment cannot run at this L and H: its fixed segment is longer than the lookback.
    (Segments need not divide L or H; the horizon of any length is forecast in whole segments.)"""
    from tsattn.config import compose

    segment = compose([f"experiment={name}_{model}"]).model.get("segment_len")
    if isinstance(segment, int) and segment > lookback:
        return (
            f"experiment={name}_{model} reads the lookback in segments of {segment} steps; "
            f"--lookback {lookback} must be at least {segment}"
        )
    return None


def mlflow_experiment(name: str, kind: str) -> str:
    """The MLflow experiment the runs of one dataset and kind are recorded in and read back from."""
    return f"defaults-{name}" + ("-tuned" if kind == "tuned" else "")


def overrides_for(args, name: str, path: Path, model: str, invocation: str, kind: str) -> list[str]:
    """The `tsattn train` overrides of one run: the defaults (`model=<name>`), or the tuned experiment with
    data=csv's split and its own batch size (data=csv's default, 256, is not the one it was tuned with)."""
    if kind == "tuned":
        from tsattn.config import compose

        batch_size = compose([f"experiment={name}_{model}"]).data.batch_size
        head = [f"experiment={name}_{model}", "data=csv"]
        tail = [f"data.batch_size={batch_size}"]
    else:
        head, tail = ["data=csv"], [f"model={model}"]
    return [
        *head,
        f"data.path={hydra_quoted(path)}",
        f"data.lookback={args.lookback}",
        f"data.horizon={args.horizon}",
        *tail,
        *tracked_overrides(args.tracking_uri, mlflow_experiment(name, kind), invocation),
    ]


def run_one(args, name: str, path: Path, model: str, invocation: str, kind: str = "defaults") -> dict:
    """One run of `model` on the dataset as a user's CSV: its defaults, or (`tuned`) its experiment's settings."""
    tuned = kind == "tuned"
    overrides = overrides_for(args, name, path, model, invocation, kind)
    shown = [o for o in overrides if not o.startswith(("logger.", "trainer."))]
    print(f"[{name}] tsattn train {' '.join(shown)}", flush=True)
    seconds = train_run(overrides, "defaults.py", f"{model} on {name}" + (" (tuned)" if tuned else ""))
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=args.tracking_uri)
    run = find_run("defaults.py", args.tracking_uri, mlflow_experiment(name, kind), invocation, model)
    history = client.get_metric_history(run.info.run_id, "val/loss")
    best = min(history, key=lambda m: m.value)
    metrics = run.data.metrics
    return {
        "data": name,
        "model": model,
        "mse": metrics["test/mse"],
        "snaive": metrics["test/snaive_mse"],
        "naive": metrics["test/naive_mse"],
        "epochs": len(history),
        "best_epoch": best.step if _steps_are_epochs(history) else history.index(best),
        "seconds": seconds,
    }


def _steps_are_epochs(history) -> bool:
    return [m.step for m in history] == list(range(len(history)))


if __name__ == "__main__":
    sys.exit(main())
