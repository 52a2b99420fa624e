"""What the benchmark scripts share: the datasets they read, how they launch and record `tsattn train` runs
and find them again in MLflow, and BENCHMARKS.md, where each replaces only its own marked section."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from tsattn.config import hydra_quoted

REPO = Path(__file__).resolve().parents[1]
# The ETTh1 benchmark lives beside the checkout, never inside it; TSATTN_ETTH1 points elsewhere.
DEFAULT_ETTH1 = os.environ.get("TSATTN_ETTH1", str(REPO.parent / "shared" / "data" / "ett" / "ETTh1.csv"))
ETTH1_HELP = "ETTh1.csv (default: $TSATTN_ETTH1 or ../shared/data/ett/ETTh1.csv)"
DEFAULT_ETTH2 = os.environ.get("TSATTN_ETTH2", str(REPO.parent / "shared" / "data" / "ett" / "ETTh2.csv"))
DEFAULT_M4 = os.environ.get("TSATTN_M4", str(REPO.parent / "shared" / "data" / "m4"))
# Where benchmark runs are recorded: MLFLOW_TRACKING_URI, else the store `tsattn train` uses in this checkout.
DEFAULT_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{REPO / 'logs' / 'mlflow' / 'mlflow.db'}")

HEADER = """# Benchmarks

Every table below is written by a script in `benchmarks/` (`make bench` runs them all) on the machine
named in it; rerunning a script replaces only its own table.
"""


def replace_section(path: Path, name: str, body: str) -> None:
    """Put `body` between `<!-- name -->` and `<!-- /name -->`, appending the section when it is new.

    The file is replaced atomically, so an interrupted benchmark never leaves half a table.
    """
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = path.read_text(encoding="utf-8") if path.is_file() else HEADER
    section = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def machine() -> str:
    """The machine a table was measured on, in one phrase (without importing torch)."""
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} CPU cores ({cpu}), Python {sys.version.split()[0]}, torch {version('torch')}"


def missing_data(script: str, path: str) -> bool:
    """Say in one line that the dataset is missing and how to point at it; True when it is."""
    resolved = Path(path).resolve()
    if resolved.is_file():
        return False
    variable = "TSATTN_ETTH2" if "etth2" in resolved.name.lower() else "TSATTN_ETTH1"
    print(f"{script}: {resolved} not found; pass --data or set {variable}", file=sys.stderr)
    return True


def train_run(overrides: list[str], script: str, what: str) -> float:
    """One `tsattn train OVERRIDES` process run from the repository root; its wall time in seconds.

    A failed run stops the benchmark with the run's last lines (SystemExit), naming `what` failed.
    """
    command = [str(Path(sys.executable).with_name("tsattn")), "train", *overrides]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"{script}: {what} failed (exit {result.returncode}):\n{tail}")
    return elapsed


def tracked_overrides(tracking_uri: str, experiment: str, invocation: str, tags: dict | None = None) -> list[str]:
    """The overrides that record a benchmark run in `experiment`, tagged with this invocation (and `tags`), and
    keep its log to the summary (no progress bar, no model table)."""
    tagged = {"benchmark": invocation, **(tags or {})}
    return [
        f"logger.tracking_uri={hydra_quoted(tracking_uri)}",
        f"logger.experiment_name={hydra_quoted(experiment)}",
        "logger.tags={" + ",".join(f"{k}:{hydra_quoted(v)}" for k, v in tagged.items()) + "}",  # keys: plain names
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]


def find_runs(tracking_uri: str, experiment: str, invocation: str, model: str, **params: object) -> list:
    """The finished runs of `model` that this invocation recorded in `experiment`, with the given params
    (`lookback=96` matches the logged `data/lookback`); a failed or unfinished run is left out."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    wanted = f"tags.benchmark = '{invocation}' and tags.`tsattn.model` = '{model}'"
    names = {"lookback": "data/lookback"}
    for key, value in params.items():
        wanted += f" and params.`{names.get(key, key)}` = '{value}'"
    runs = client.search_runs([found.experiment_id], filter_string=wanted, max_results=1000)
    return [r for r in runs if r.info.status == "FINISHED"]


def find_run(script: str, tracking_uri: str, experiment: str, invocation: str, model: str, **params: object):
    """The one finished run `find_runs` must find; a clear SystemExit, not a bare unpacking error, otherwise."""
    runs = find_runs(tracking_uri, experiment, invocation, model, **params)
    if len(runs) != 1:
        wanted = ", ".join(f"{k}={v}" for k, v in params.items())
        raise SystemExit(
            f"{script}: expected one finished {model} run ({wanted or 'any settings'}) of invocation {invocation} "
            f"in MLflow experiment {experiment!r}, found {len(runs)}"
        )
    return runs[0]
