"""What a covariate known ahead gains: ETTh1's middle useful load with the high useful load as a covariate.

    python benchmarks/future_covariates.py                                # 3 forecasters x 3 seeds x 3 variants
    python benchmarks/future_covariates.py --models lstm_seq2seq --seeds 0

ETTh1 under its protocol borders (train, validation and test rows 0-8640-11520-14400), the target MUFL
(the middle useful load), L=96, H=24 (a day ahead), each forecaster's ETTh1 experiment otherwise:

    tsattn train experiment=etth1_<model> data.targets=[MUFL] data.horizon=24 seed=<s> [VARIANT]

with three variants of the same runs, same seeds: MUFL alone; HUFL (the high useful load, which moves with
MUFL: correlation 0.98 on the training rows) as a past covariate, `data.covariates=[HUFL]`, read over the
lookback only; and HUFL as a future covariate, `data.future_covariates=[HUFL]`, read over the horizon too,
as a planned load would be. The table gives the best validation MSE (the one the checkpoint was chosen on)
and the test MSE, in scaled units, beside the last value's and seasonal naive's test MSE on the same windows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from report import (  # noqa: E402
    DEFAULT_ETTH1,
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
VARIANTS = {
    "MUFL alone": [],
    "HUFL past covariate": ["data.covariates=[HUFL]"],
    "HUFL future covariate": ["data.future_covariates=[HUFL]"],
}
EXPERIMENT = "future-covariates-benchmark"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_data("future_covariates.py", args.data):
        return 2
    data = Path(args.data).resolve()
    invocation = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    results = []  # (model, variant, seed, metrics); run times are in the speed tables, not here
    for model in args.models:
        for v, (variant, extra) in enumerate(VARIANTS.items()):
            tag = f"{invocation}-{v}"
            for seed in args.seeds:
                overrides = [
                    f"experiment=etth1_{model}",
                    f"data.path={hydra_quoted(data)}",
                    "data.targets=[MUFL]",
                    f"data.horizon={args.horizon}",
                    f"seed={seed}",
                    *extra,
                    *tracked_overrides(args.tracking_uri, EXPERIMENT, tag),
                ]
                what = f"{model} {variant} seed {seed}"
                print(f"[future covariates] {what} ...", flush=True)
                train_run(overrides, "future_covariates.py", what)
                metrics = find_run(
                    "future_covariates.py", args.tracking_uri, EXPERIMENT, tag, model, seed=seed
                ).data.metrics
                results.append((model, variant, seed, metrics))
                print(f"    val {metrics['val/loss_best']:.4f}, test {metrics['test/mse']:.4f}", flush=True)
    table = render(results, args.seeds, args.horizon)
    print(table, flush=True)
    if args.output:
        command = "python benchmarks/future_covariates.py " + " ".join(argv if argv is not None else sys.argv[1:])
        body = f"Made by `{command.strip()}` on {time.strftime('%Y-%m-%d')}, {machine()}.\n\n{table}"
        replace_section(Path(args.output), "future-covariates", body)
    return 0


def render(results: list, seeds: list[int], horizon: int) -> str:
    """One row per forecaster and variant: means over the seeds, then each seed's test MSE."""
    lines = [
        f"**ETTh1, target MUFL, L=96, H={horizon}: MSE in scaled units, mean over seeds {', '.join(map(str, seeds))}**",
        "",
        "| model | HUFL | val MSE | test MSE | test MSE per seed | last value | seasonal naive |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in dict.fromkeys(r[0] for r in results):
        for variant in VARIANTS:
            runs = [r for r in results if r[0] == model and r[1] == variant]
            if not runs:
                continue
            val = statistics.mean(r[3]["val/loss_best"] for r in runs)
            test = [r[3]["test/mse"] for r in runs]
            first = runs[0][3]
            cells = [
                model,
                variant.removeprefix("HUFL ").replace("MUFL alone", "none"),
                f"{val:.4f}",
                f"**{statistics.mean(test):.4f}**",
                " / ".join(f"{t:.4f}" for t in test),
                f"{first['test/naive_mse']:.4f}",
                f"{first['test/snaive_mse']:.4f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=FORECASTERS, default=list(FORECASTERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--data", default=DEFAULT_ETTH1, help="ETTh1.csv")
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
