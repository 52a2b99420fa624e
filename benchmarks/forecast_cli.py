"""Throughput and memory of `tsattn forecast` on large long-layout CSVs, per model.

    python benchmarks/forecast_cli.py                       # 10,000 and 40,000 series x 500 hourly rows
    python benchmarks/forecast_cli.py --series 1000 --scale 1 --models lstm_seq2seq

For each model it trains a small bundle on a few series, then runs the real forecast command in a fresh
process over each file (N series, then N x --scale) and prints the wall time from the first import, rows/s,
series/s, peak memory (the peak resident set of that process, VmHWM) and the time split into imports
(tsattn, torch, pandas, pyarrow) with the model's loading, reading, validation, windows, the forward pass
and writing.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from report import hydra_quoted, machine, replace_section  # noqa: E402

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


def train_bundle(model: str, csv: Path, directory: Path, lookback: int, horizon: int, seed: int = 0) -> Path:
    """A quickly trained bundle: a few batches on the file's first series (speed, not accuracy, is measured);
    models of other seeds differ (ensemble members)."""
    from tsattn.config import compose
    from tsattn.inference.bundle import save_bundle
    from tsattn.training.train import Training

    overrides = [
        "data=csv",
        f"data.path={hydra_quoted(csv)}",
        "data.id_col=id",
        f"data.lookback={lookback}",
        f"data.horizon={horizon}",
        f"model={model}",
        f"seed={seed}",
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
    """Run in a fresh process: the forecast command's own code path, its stages timed by the command itself."""
    started = time.perf_counter()
    from tsattn.commands.common import load_model
    from tsattn.commands.forecast import parser, run

    args = parser().parse_args([bundle, csv, "-o", output, "--batch-size", str(batch_size), "--quiet"])
    imported = time.perf_counter() - started
    result = run(load_model(args), args)
    wall = time.perf_counter() - started
    peak_mb = _peak_rss_mb()
    stages = {"imports and model": wall - sum(result.seconds.values()), **result.seconds}
    print(json.dumps({"wall": wall, "imported": imported, "how": result.how, "peak_mb": peak_mb, "stages": stages}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--scale", type=int, default=4, help="the second file has this many times the series")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    parser.add_argument("--measure", nargs=3, metavar=("BUNDLE", "CSV", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure, args.batch_size)
        return

    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="tsattn-bench-") as tmp:
        root = Path(tmp)
        small = root / "train.csv"
        make_csv(small, 16, args.rows, seed=1)
        files = []
        for n_series in dict.fromkeys([args.series, args.series * args.scale]):
            csv = root / f"history-{n_series}.csv"
            begin = time.perf_counter()
            make_csv(csv, n_series, args.rows)
            size_mb = csv.stat().st_size / 2**20
            say(
                f"input: {n_series:,} series x {args.rows} hourly rows ({n_series * args.rows:,} rows), "
                f"{size_mb:.0f} MB, written in {time.perf_counter() - begin:.1f} s"
            )
            files.append((n_series, csv))
        say(f"L={args.lookback}, H={args.horizon}, batch size {args.batch_size}, torch threads {_threads()}")
        say(f"machine: {machine()}")
        say()
        stages = ("imports and model", "reading", "validation", "windows", "forward", "writing")
        header = f"{'model':20}{'series':>8}{'wall s':>8}{'rows/s':>12}{'series/s':>10}{'peak MB':>9}  " + " ".join(
            f"{name.split()[0][:9]:>9}" for name in stages
        )
        say(header)
        say("-" * len(header))
        for model in args.models.split(","):
            bundle = train_bundle(model, small, root, args.lookback, args.horizon)
            for n_series, csv in files:
                out = root / f"{model}-{n_series}.csv"
                command = [sys.executable, __file__, "--measure", str(bundle), str(csv), str(out)]
                result = subprocess.run(
                    [*command, "--batch-size", str(args.batch_size)], capture_output=True, text=True, check=False
                )
                if result.returncode != 0:
                    say(f"{model:20}failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
                    continue
                m = json.loads(result.stdout.strip().splitlines()[-1])
                rows = n_series * args.rows
                split = " ".join(f"{m['stages'].get(name, 0.0):>9.2f}" for name in stages)
                say(
                    f"{model:20}{n_series:>8,}{m['wall']:>8.1f}{rows / m['wall']:>12,.0f}"
                    f"{n_series / m['wall']:>10,.0f}{m['peak_mb']:>9,.0f}  {split}"
                    + ("" if m["how"] == "streamed" else f"  ({m['how']})")
                )
                out.unlink(missing_ok=True)
    if args.output:
        command = "python benchmarks/forecast_cli.py " + " ".join(a for a in sys.argv[1:])
        table = "\n".join(lines)
        body = (
            "### Forecast throughput\n\n"
            f"Made by `{command.strip()}` on {time.strftime('%Y-%m-%d')}: `tsattn forecast` in a fresh process per "
            "file, wall time from the first import; stages in seconds (imports include the model's loading).\n\n"
            f"```\n{table}\n```"
        )
        replace_section(Path(args.output), "forecast-throughput", body)


def _peak_rss_mb() -> float:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries that across exec from
    the parent that forked us (here, one that trained a model), while VmHWM belongs to this process alone."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
