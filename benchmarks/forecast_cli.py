"""Throughput of `tsattn forecast` on a large long-layout CSV, per model.

    python benchmarks/forecast_cli.py                       # 10,000 series x 500 hourly rows
    python benchmarks/forecast_cli.py --series 1000 --batch-size 512

For each model it trains a small bundle on a few of the series, then runs the real forecast command in
a fresh process over the whole file and prints rows/s, series/s, peak memory (max RSS of that process),
and the share of wall time spent outside the model's forward pass (reading, validating, windowing,
writing, imports).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

MODELS = ("lstm_seq2seq", "attention_seq2seq", "transformer", "linear", "seasonal_naive", "last_value")


def make_csv(path: Path, n_series: int, n_rows: int, seed: int = 0) -> None:
    """Daily-cycle sines with trend and noise, one block of rows per series (id, time, load)."""
    rng = np.random.default_rng(seed)
    hours = np.arange(n_rows)
    level = rng.uniform(50, 150, size=(n_series, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n_series, 1))
    values = level + 10 * np.sin(2 * np.pi * hours / 24 + phase) + 0.01 * hours + rng.normal(0, 1, (n_series, n_rows))
    times = pd.date_range("2024-01-01", periods=n_rows, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame(
        {
            "id": np.repeat([f"s{i:05d}" for i in range(n_series)], n_rows),
            "time": np.tile(times, n_series),
            "load": values.reshape(-1).round(3),
        }
    )
    frame.to_csv(path, index=False)


def train_bundle(model: str, csv: Path, directory: Path, lookback: int, horizon: int) -> Path:
    """A quickly trained bundle: a few batches on the file's first series (speed, not accuracy, is measured)."""
    from tsattn.config import compose
    from tsattn.inference.bundle import save_bundle
    from tsattn.training.train import Training

    overrides = [
        "data=csv",
        f"data.path={csv}",
        "data.id_col=id",
        f"data.lookback={lookback}",
        f"data.horizon={horizon}",
        f"model={model}",
        "logger=none",
        "callbacks=none",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=5",
        "+trainer.limit_val_batches=1",
        "test=false",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.log_dir={directory / 'logs'}",
    ]
    run = Training(compose(overrides), track=False)
    run.run()
    return save_bundle(directory / model, run.model, run.datamodule, run.cfg, model, run.net_options)


def measure(bundle: str, csv: str, output: str, batch_size: int) -> None:
    """Run in a fresh process: the real CLI, with the model's forward pass timed."""
    started = time.perf_counter()
    from tsattn.cli import main
    from tsattn.training.module import ForecastModule

    forward_seconds = 0.0
    original = ForecastModule.forward

    def timed(self, *args, **kwargs):
        nonlocal forward_seconds
        begin = time.perf_counter()
        result = original(self, *args, **kwargs)
        forward_seconds += time.perf_counter() - begin
        return result

    ForecastModule.forward = timed
    code = main(["forecast", bundle, csv, "-o", output, "--batch-size", str(batch_size), "--quiet"])
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"code": code, "wall": wall, "forward": forward_seconds, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--measure", nargs=3, metavar=("BUNDLE", "CSV", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure, args.batch_size)
        return

    with tempfile.TemporaryDirectory(prefix="tsattn-bench-") as tmp:
        root = Path(tmp)
        csv, small = root / "history.csv", root / "train.csv"
        begin = time.perf_counter()
        make_csv(csv, args.series, args.rows)
        make_csv(small, 16, args.rows, seed=1)
        size_mb = csv.stat().st_size / 2**20
        print(
            f"input: {args.series} series x {args.rows} hourly rows, {size_mb:.0f} MB, "
            f"written in {time.perf_counter() - begin:.1f} s"
        )
        print(f"L={args.lookback}, H={args.horizon}, batch size {args.batch_size}, CPU threads {_threads()}\n")
        header = f"{'model':20}{'wall s':>8}{'forward s':>11}{'outside':>9}{'rows/s':>12}{'series/s':>10}{'peak MB':>9}"
        print(header)
        print("-" * len(header))
        for model in args.models.split(","):
            bundle = train_bundle(model, small, root, args.lookback, args.horizon)
            out = root / f"{model}.csv"
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--measure",
                    str(bundle),
                    str(csv),
                    str(out),
                    "--batch-size",
                    str(args.batch_size),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                print(f"{model:20}failed: {result.stderr.strip().splitlines()[-1]}")
                continue
            m = json.loads(result.stdout.strip().splitlines()[-1])
            outside = 1 - m["forward"] / m["wall"]
            rows = args.series * args.rows
            print(
                f"{model:20}{m['wall']:>8.1f}{m['forward']:>11.1f}{outside:>9.0%}{rows / m['wall']:>12,.0f}"
                f"{args.series / m['wall']:>10,.0f}{m['peak_mb']:>9,.0f}"
            )


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
