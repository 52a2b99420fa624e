"""Defaults that carry: each model trained on a dataset with nothing set but the file, L and H.

    python benchmarks/defaults.py      # the datasets nobody tuned on, forecasters and linear baselines, 3 seeds
    python benchmarks/defaults.py --datasets etth1 etth2 --seeds 0   # the ETTh table (section defaults-ett)
    python benchmarks/defaults.py --datasets vic_elec --models transformer --seeds 0
    python benchmarks/defaults.py --datasets etth1 etth2 --settings tuned   # the tuned experiments on the same split
    python benchmarks/defaults.py --datasets vic_elec --seeds 0 --set model.seasonal_lags=[]   # an ablation

Each run is exactly what a user with a CSV would type, in its own process:

    tsattn train data=csv data.path=<file> data.lookback=<L> data.horizon=<H> model=<name> seed=<s>

(data=co2 and data=weather for the bundled files), so the split is data=csv's (70% train, 10% validation, 20%
test by time) and every model setting is the config default. The datasets: ETTh1 and ETTh2 (hourly, L=96,
H=96 unless --lookback/--horizon), two public sets nobody tuned tsattn on (data/README.md: Victoria's
half-hourly electricity demand, L=336, H=48; twelve monthly US employment series with trends, L=36, H=12),
and the bundled CO2 and weather files at their configs' L and H.

Each run chooses its strongest simple forecast on its own validation windows (the last value, or seasonal
naive at each candidate season of the frequency that fits in L) and scores it on the test windows: that is
the reference column, beside the best of every simple rule on the test windows themselves (a bar no choice
made on validation can beat) and tsattn's RLinear on the same windows. A forecaster passes when it beats
every rule and RLinear. The epoch of the best validation loss shows whether training stopped at its start.
`--set` adds overrides to the forecasters' runs (an ablation, judged by its validation loss). A second table
(`--settings tuned`, ETTh1 and ETTh2) runs the tuned experiment on the same file, split and windows
(`tsattn train experiment=<dataset>_<name> data=csv data.path=<file> ... data.batch_size=<the
experiment's>`), so the two say what the defaults leave behind. Scores are read back from MLflow.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from public_data import us_employment, us_employment_quarterly, vic_elec_2014  # noqa: E402
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
LINEAR = ("rlinear", "linear")
DATA_DIR = REPO / "logs" / "bench-data"
# name -> (what it is, lookback and horizon or None for --lookback/--horizon, the file or data= option)
DATASETS = {
    "etth1": ("hourly, 7 columns", None, lambda: DEFAULT_ETTH1),
    "etth2": ("hourly, 7 columns", None, lambda: DEFAULT_ETTH2),
    "vic_elec": ("half-hourly, 1 series", (336, 48), lambda: vic_elec_2014(DATA_DIR)),
    "us_employment": ("monthly, 12 series (long, data.id_col=sector)", (36, 12), lambda: us_employment(DATA_DIR)),
    "us_employment_quarterly": (
        "quarterly means from 1990, 12 series (long): about 720 training windows",
        (16, 8),
        lambda: us_employment_quarterly(DATA_DIR),
    ),
    "co2": ("weekly, 1 series (bundled: data=co2)", (156, 52), lambda: "co2"),
    "weather": ("hourly, 2 series (bundled: data=weather)", (168, 24), lambda: "weather"),
}
EXTRA = {"us_employment": ["data.id_col=sector"], "us_employment_quarterly": ["data.id_col=sector"]}
TUNED = ("etth1", "etth2")  # the datasets with tuned experiments

HEADINGS = {
    "defaults": "Defaults on a user's CSV: `tsattn train data=csv data.path=<file> data.lookback=<L> "
    "data.horizon=<H> model=<name> seed=<s>`, nothing else set",
    "tuned": "The tuned experiments on the same CSV, split and windows: `tsattn train experiment=<data>_<name> "
    "data=csv data.path=<file> data.lookback=<L> data.horizon=<H>`",
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sources = {name: DATASETS[name][2]() for name in args.datasets}
    if any(missing_data("defaults.py", str(s)) for s in sources.values() if str(s).endswith(".csv")):
        return 2
    if "tuned" in args.settings:
        for name in (n for n in sources if n in TUNED):
            for model in (m for m in args.models if m in FORECASTERS):
                if problem := tuned_misfit(name, model, args.lookback, args.horizon):
                    print(f"defaults.py: {problem}", file=sys.stderr)
                    return 2
    invocation = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    for kind in args.settings:
        results = [
            run_one(args, name, source, model, seed, invocation, kind)
            for name, source in sources.items()
            if kind == "defaults" or name in TUNED
            for model in args.models
            if kind == "defaults" or model in FORECASTERS
            for seed in args.seeds
        ]
        table = render(kind, args, results)
        print(table, flush=True)
        if args.output:
            command = "python benchmarks/defaults.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
            body = f"Made by `{command.strip()}` on {time.strftime('%Y-%m-%d')}, {machine()}.\n\n{table}"
            replace_section(Path(args.output), section_name(kind, args.datasets), body)
    return 0


def section_name(kind: str, datasets: list[str]) -> str:
    """BENCHMARKS.md's section: the tuned table, the ETTh defaults (seed 0, at L=96 as published tables run
    them), or the defaults on the datasets nobody tuned on."""
    if kind == "tuned":
        return "defaults-tuned"
    return "defaults-ett" if set(datasets) <= set(TUNED) else "defaults"


def windows(args, name: str) -> tuple[int, int]:
    return DATASETS[name][1] or (args.lookback, args.horizon)


def render(kind: str, args: argparse.Namespace, results: list[dict]) -> str:
    """One row per dataset and model, means over seeds (each seed's test MSE in brackets)."""
    lines = [
        f"**{HEADINGS[kind]} (seeds {', '.join(map(str, args.seeds))}"
        f"{'; forecaster overrides: ' + ' '.join(args.set) if args.set else ''})**",
        "",
        "Test MSE on the scaled data over data=csv's own split (last 20% of rows). The strongest simple "
        "forecast is chosen on each run's validation windows among the last value and seasonal naive at every "
        "candidate season that fits in L (its rule named); 'every rule' is the best of those rules on the test "
        "windows themselves; RLinear is tsattn's, on the same windows.",
        "",
        "| data | L, H | model | val loss (MSE unless named) | test MSE | strongest simple (rule) "
        "| every rule, best on test | RLinear "
        "| beats every rule | beats RLinear | best epoch (from 0) / epochs run | s per run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["data"] for r in results):
        rows = [r for r in results if r["data"] == name]
        rlinear = [r["mse"] for r in rows if r["model"] == "rlinear"]
        reference = statistics.mean(rlinear) if rlinear else None
        for model in dict.fromkeys(r["model"] for r in rows):
            runs = [r for r in rows if r["model"] == model]
            mse = statistics.mean(r["mse"] for r in runs)
            every_rule = min(min(r["rules"].values()) for r in runs)
            rules = ",".join(sorted({r["best_rule"] for r in runs}))
            beats_linear = "-" if model == "rlinear" or reference is None else ("yes" if mse < reference else "NO")
            each = " / ".join(f"{r['mse']:.4f}" for r in runs)
            seeds = f" ({each})" if len(runs) > 1 else ""
            epochs = ", ".join(f"{r['best_epoch']} / {r['epochs']}" for r in runs)
            losses = sorted({r.get("loss", "mse") for r in runs})
            named = "" if losses == ["mse"] else f" ({', '.join(losses)})"  # another scale: say which
            val = f"{statistics.mean(r['val'] for r in runs):.4f}{named}"
            lines.append(
                f"| {name} | {runs[0]['lookback']}, {runs[0]['horizon']} | {model} | "
                f"{val} | {mse:.4f}{seeds} | "
                f"{statistics.mean(r['best_naive'] for r in runs):.4f} ({rules}) | {every_rule:.4f} | "
                f"{'-' if reference is None else f'{reference:.4f}'} | {'yes' if mse < every_rule else 'NO'} | "
                f"{beats_linear} | {epochs} | "
                f"{statistics.mean(r['seconds'] for r in runs):.0f} |"
            )
    described = "; ".join(f"{n}: {DATASETS[n][0]}" for n in dict.fromkeys(r["data"] for r in results))
    return "\n".join([*lines, "", f"Data: {described} (data/README.md)."]) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=tuple(DATASETS),
        default=[name for name in DATASETS if name not in TUNED],
        help="default: the datasets nobody tuned on (etth1 etth2 --seeds 0: the ETTh table)",
    )
    parser.add_argument("--models", nargs="+", choices=(*FORECASTERS, *LINEAR), default=[*FORECASTERS, *LINEAR])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--lookback", type=int, default=96, help="L for ETTh1 and ETTh2 (the others have their own)")
    parser.add_argument("--horizon", type=int, default=96, help="H for ETTh1 and ETTh2")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for the forecasters' runs (an ablation)")
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=tuple(HEADINGS),
        default=["defaults"],
        help="the defaults, and (tuned) the ETTh experiments on the same split: a table each",
    )
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    args = parser.parse_args(argv)
    for key in ("datasets", "models", "settings", "seeds"):  # a name given twice would run twice and match two runs
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


def overrides_for(args, name: str, source, model: str, invocation: str, kind: str, seed: int = 0) -> list[str]:
    """The `tsattn train` overrides of one run: the defaults (`model=<name>`, the bundled data by its config),
    or the tuned experiment with data=csv's split and its own batch size (data=csv's default, 256, is not the
    one it was tuned with)."""
    lookback, horizon = windows(args, name)
    data = [f"data={source}"] if source in ("co2", "weather") else ["data=csv", f"data.path={hydra_quoted(source)}"]
    if kind == "tuned":
        from tsattn.config import compose

        batch_size = compose([f"experiment={name}_{model}"]).data.batch_size
        head = [f"experiment={name}_{model}", *data]
        tail = [f"data.batch_size={batch_size}"]
    else:
        head, tail = data, [f"model={model}", *EXTRA.get(name, []), *(args.set if model in FORECASTERS else [])]
    return [
        *head,
        f"data.lookback={lookback}",
        f"data.horizon={horizon}",
        f"seed={seed}",
        *tail,
        *tracked_overrides(args.tracking_uri, mlflow_experiment(name, kind), invocation),
    ]


def run_one(args, name: str, source, model: str, seed: int, invocation: str, kind: str = "defaults") -> dict:
    """One run of `model` on the dataset as a user's CSV: its defaults, or (`tuned`) its experiment's settings."""
    tuned = kind == "tuned"
    overrides = overrides_for(args, name, source, model, invocation, kind, seed)
    shown = [o for o in overrides if not o.startswith(("logger.", "trainer."))]
    print(f"[{name}] tsattn train {' '.join(shown)}", flush=True)
    seconds = train_run(overrides, "defaults.py", f"{model} seed {seed} on {name}" + (" (tuned)" if tuned else ""))
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=args.tracking_uri)
    run = find_run("defaults.py", args.tracking_uri, mlflow_experiment(name, kind), invocation, model, seed=seed)
    history = client.get_metric_history(run.info.run_id, "val/loss")
    best = min(history, key=lambda m: m.value)
    metrics, params = run.data.metrics, run.data.params
    lookback, horizon = windows(args, name)
    result = {
        "data": name,
        "model": model,
        "seed": seed,
        "lookback": lookback,
        "horizon": horizon,
        "val": metrics.get("val/loss_best", best.value),
        "loss": params.get("model/loss", "mse"),  # the scale of "val": each run's own training loss
        "mse": metrics["test/mse"],
        "best_rule": params.get("data/best_naive", "?"),
        "best_naive": metrics["test/best_naive_mse"],
        "rules": {k[len("test/") : -len("_mse")]: v for k, v in metrics.items() if _is_rule(k)},
        "epochs": len(history),
        "best_epoch": best.step if _steps_are_epochs(history) else history.index(best),
        "seconds": seconds,
    }
    print(
        f"  val/loss_best {result['val']:.4f}  test/mse {result['mse']:.4f}  strongest simple "
        f"({result['best_rule']}) {result['best_naive']:.4f}  {seconds:.0f} s",
        flush=True,
    )
    return result


def _is_rule(key: str) -> bool:
    """test/last_value_mse, test/seasonal_naive_<m>_mse: each simple rule's overall test score."""
    from tsattn.data.naive import rule_season

    return key.startswith("test/") and key.endswith("_mse") and rule_season(key[len("test/") : -len("_mse")]) is not None


def _steps_are_epochs(history) -> bool:
    return [m.step for m in history] == list(range(len(history)))


if __name__ == "__main__":
    sys.exit(main())
