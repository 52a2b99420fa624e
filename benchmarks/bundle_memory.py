"""Peak memory of loading the largest bundle tsattn accepts, and of refusing a larger one.

    python benchmarks/bundle_memory.py                  # 10,000 series, then as many as the bounds allow
    python benchmarks/bundle_memory.py --series 10000 200000

A small LSTM seq2seq is trained on three series, then its bundle is grown to N series the way a
long file of N one-column series would make it: an id, a test border and a scaler entry (mean and std with
as many digits as training writes) per series. Each bundle is loaded in a fresh process by
tsattn.inference.bundle.load_bundle; the table gives the JSON sizes, the load time and the process's peak
resident memory (VmHWM, torch's own ~0.35 GB included). The bounds (MAX_JSON_BYTES per JSON file,
MAX_SERIES series) hold the worst case: the most series they let through, with short numbers. The last
row is one series past them, refused in one line once schema.json is read, before the scaler is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from forecast_cli import _peak_rss_mb, make_csv, train_bundle  # noqa: E402
from report import machine, replace_section  # noqa: E402


def grow(source: Path, target: Path, n_series: int, digits: int | None = None, seed: int = 0) -> tuple[float, float]:
    """A copy of bundle `source` holding `n_series` series, its statistics rounded to `digits` decimals (None:
    every digit of a float64, as training writes them); returns the sizes of its scaler and schema (MB)."""
    shutil.copytree(source, target)
    schema = json.loads((target / "schema.json").read_text())
    scaler = json.loads((target / "scaler.json").read_text())
    ids = [f"s{i:07d}" for i in range(n_series)]
    border = next(iter(schema["training_data"]["test_start"].values()))
    schema["series"] = ids
    schema["training_data"]["test_start"] = dict.fromkeys(ids, border)
    rng = np.random.default_rng(seed)
    means, stds = rng.normal(100, 30, n_series), rng.uniform(1, 20, n_series)  # full float64 digits, as saved
    if digits is not None:  # short numbers: more series per byte, the most objects the bounds let through
        means, stds = means.round(digits), stds.round(digits)
    scaler["stats"] = {sid: {"mean": [float(m)], "std": [float(s)]} for sid, m, s in zip(ids, means, stds)}
    (target / "schema.json").write_text(json.dumps(schema))
    (target / "scaler.json").write_text(json.dumps(scaler))
    return (target / "scaler.json").stat().st_size / 2**20, (target / "schema.json").stat().st_size / 2**20


def measure(bundle: str) -> None:
    """In a fresh process: load the bundle, print the outcome, seconds and peak memory as JSON."""
    import torch  # noqa: F401  (imported before the clock: its own memory is in the peak, not in the time)

    from tsattn.errors import TsattnError
    from tsattn.inference.bundle import load_bundle

    started = time.perf_counter()
    try:
        loaded = load_bundle(bundle)
        outcome = f"loaded ({len(loaded.schema['series']):,} series)"
    except TsattnError as err:
        outcome = "refused: " + str(err).split(": ", 1)[-1][:60]
    seconds = time.perf_counter() - started
    print(json.dumps({"outcome": outcome, "seconds": seconds, "peak_mb": _peak_rss_mb()}))


def largest_accepted() -> int:
    """The most one-column series whose scaler stays within MAX_JSON_BYTES (at most MAX_SERIES)."""
    from tsattn.inference.bundle_checks import MAX_JSON_BYTES, MAX_SERIES

    entry = len(json.dumps({"s0000000": {"mean": [100.12345678901234], "std": [10.123456789012345]}})) + 1
    return min(MAX_SERIES, int(0.98 * MAX_JSON_BYTES / entry))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="+", help="bundle sizes (default: 10,000 and the largest)")
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    parser.add_argument("--measure", metavar="BUNDLE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    from tsattn.inference.bundle_checks import MAX_JSON_BYTES, MAX_SERIES

    # (series, decimals of each statistic): full digits as training writes them, up to the 64 MB bound; the
    # most series the bounds allow, with short numbers; one series past the count bound (refused).
    cases = [(n, None) for n in args.series or [10_000, largest_accepted()]]
    cases += [(MAX_SERIES, 1), (MAX_SERIES + 1, 1)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tsattn-bundle-memory-") as tmp:
        root = Path(tmp)
        make_csv(root / "small.csv", n_series=3, n_rows=400)
        small = train_bundle("lstm_seq2seq", root / "small.csv", root, lookback=48, horizon=24)
        for n, digits in cases:
            bundle = root / f"grown-{n}-{digits}"
            scaler_mb, schema_mb = grow(small, bundle, n, digits)
            command = [sys.executable, __file__, "--measure", str(bundle)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            rows.append((n, digits, scaler_mb, schema_mb, result))
            print(f"{n:,} series: {result}", file=sys.stderr, flush=True)
            shutil.rmtree(bundle)
    lines = [
        f"**Loading a bundle of N one-column series** (bounds: {MAX_JSON_BYTES >> 20} MB per JSON file, "
        f"{MAX_SERIES:,} series; a fresh process per bundle, peak resident memory with torch)",
        "",
        "| series | statistics | scaler.json MB | schema.json MB | outcome | s | peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, digits, scaler_mb, schema_mb, result in rows:
        numbers = "every float64 digit" if digits is None else f"{digits} decimal"
        lines.append(
            f"| {n:,} | {numbers} | {scaler_mb:.1f} | {schema_mb:.1f} | {result['outcome']} | "
            f"{result['seconds']:.2f} | {result['peak_mb']:.0f} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    if args.output:
        command = "python benchmarks/bundle_memory.py" + "".join(f" {a}" for a in sys.argv[1:])
        body = f"Made by `{command}` on {time.strftime('%Y-%m-%d')}, {machine()}.\n\n{table}"
        replace_section(Path(args.output), "bundle-memory", body)


if __name__ == "__main__":
    main()
