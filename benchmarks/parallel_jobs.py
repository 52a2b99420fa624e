"""Parallel sweep jobs against the same jobs one after another: does running two at a time pay?

    python benchmarks/parallel_jobs.py                 # 2 jobs on the bundled weather data
    python benchmarks/parallel_jobs.py --batches 60 --epochs 3

Three real `tsattn train -m seed=0,1 ...` sweeps of the same two jobs (LSTM seq2seq, L=168, H=24):

- one after another (Hydra's basic launcher, one process);
- two at a time in joblib processes (`hydra/launcher=joblib hydra.launcher.n_jobs=2`), each job with the
  thread count tsattn chooses (`threads`: the cores shared by the jobs running at once);
- two at a time with `threads` forced to every core in each job, which is what each process took before
  tsattn chose: on a 2-core machine, 2 processes x 2 threads spinning against each other.

Wall time is the whole command, start-up included, as a user waits for it. The table goes to stdout and into
BENCHMARKS.md between markers of its own.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from report import machine, replace_section  # noqa: E402

PARALLEL = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    modes = {
        "one after another": [],
        "two at a time, tsattn's threads": PARALLEL,
        f"two at a time, {cores} threads each": [*PARALLEL, f"threads={cores}"],
    }
    seconds = {}
    for name, extra in modes.items():
        print(f"timing: {name} ...", file=sys.stderr, flush=True)
        seconds[name] = sweep(args, extra)
    table = render(args, seconds, cores)
    print(table)
    if args.output:
        command = "python benchmarks/parallel_jobs.py " + " ".join(argv if argv is not None else sys.argv[1:])
        body = f"Made by `{command.strip()}` on {time.strftime('%Y-%m-%d')}.\n\n{table}"
        replace_section(Path(args.output), "parallel-jobs", body)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40, help="training batches per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per job")
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds a sweep may take before it is stopped (default 900)"
    )
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    return parser.parse_args(argv)


def sweep(args: argparse.Namespace, extra: list[str]) -> float:
    """Seconds for `tsattn train -m seed=0,1` with `extra` overrides, in a fresh directory and process."""
    with tempfile.TemporaryDirectory(prefix="tsattn-parallel-") as workdir:
        command = [sys.executable, "-m", "tsattn", "train", "-m", "seed=0,1", *extra]
        # The weather data and the per-step, channel-mixing LSTM its recorded table measured (the defaults then).
        command += [
            "data=weather",
            "model.segment_len=1",
            "model.channel_independent=false",
            "model.optimizer.lr=0.003",
        ]
        command += [
            f"trainer.max_epochs={args.epochs}",
            f"+trainer.limit_train_batches={args.batches}",
            "+trainer.limit_val_batches=5",
            "+trainer.limit_test_batches=2",
            "trainer.enable_progress_bar=false",
            "logger=none",
            "callbacks=none",
            f"paths.log_dir={workdir}",
        ]
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # let each mode choose
        started = time.perf_counter()
        try:
            result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            return float("inf")  # shown as "stopped after --timeout"
        elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"parallel_jobs.py: the sweep failed:\n{result.stderr[-3000:]}")
    return elapsed


def render(args: argparse.Namespace, seconds: dict[str, float], cores: int) -> str:
    sequential = next(iter(seconds.values()))
    lines = [
        f"**Two sweep jobs on {machine()}**: LSTM seq2seq on the bundled weather data (L=168, H=24), "
        f"{args.epochs} epochs of {args.batches} batches each; wall time of the whole `tsattn train -m` command.",
        "",
        "| how the two jobs run | wall time s | against one after another |",
        "|---|---|---|",
    ]
    for name, value in seconds.items():
        if value == float("inf"):
            lines.append(f"| {name} | stopped after {args.timeout:.0f} | under {sequential / args.timeout:.2f}x |")
        else:
            lines.append(f"| {name} | {value:.1f} | {sequential / value:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
