"""The comparison dashboard: one self-contained HTML page built from an MLflow experiment.

A consumer of what training logs (metrics, params, forecasts/test_forecasts.csv, plots/attention.json);
nothing in the training path imports it. The page is dashboards/template.html with its CSS, its script
and the data inlined: it opens from disk, with no server and no network.
"""

from __future__ import annotations

import html
import json
import math
import re
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from tsattn.reporting.compare import (
    BASELINES,
    SKILL_COLUMNS,
    TEXT_COLUMNS,
    Leaderboard,
    incomparable,
    is_setting,
    leaderboard,
    rank_key,
)
from tsattn.resources import dashboard_dir

CURVES = ("train/loss", "val/loss", "val/loss_tf")
MAX_CURVE_RUNS = 12  # per model: the best ones, so 100 runs stay readable
FORECAST_WINDOWS = 3
MAX_CONFIG_GROUPS = 8  # columns of the configuration differences: the best run of each of the best groups


def build_payload(client, experiment: str, runs, metric: str = "test/mse") -> dict:
    """Everything the page draws, as plain JSON-able data."""
    board = leaderboard(runs, metric, ["model", "data"])
    finished = [r for r in runs if r.info.status == "FINISHED" and r.data.tags.get("tsattn.role") != "sweep"]
    by_model: dict[str, list] = defaultdict(list)
    for run in finished:
        if metric in run.data.metrics and not incomparable(run, metric):
            by_model[run.data.tags.get("tsattn.model", "?")].append(run)
    rank = rank_key(metric)
    for model_runs in by_model.values():
        model_runs.sort(key=lambda r: rank(r.data.metrics[metric]))
    labels = _labels(board)
    curves = {m: _curves(client, model_runs[:MAX_CURVE_RUNS], labels) for m, model_runs in by_model.items()}
    with tempfile.TemporaryDirectory(prefix="tsattn-dashboard-") as tmp:
        # From the best run that logged them (runs from older versions, or copied runs, may not have).
        forecasts = {
            m: _first(model_runs, lambda r: _forecast_windows(client, r, Path(tmp)))
            for m, model_runs in by_model.items()
        }
        attention = {
            m: _first(model_runs, lambda r: _attention(client, r, Path(tmp))) for m, model_runs in by_model.items()
        }
    return {
        "experiment": experiment,
        "summary": (
            f"{len(finished)} finished runs of {len(by_model)} models, ranked by {metric}; "
            f"generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        ),
        "leaderboard": _leaderboard(board),
        "curves": {m: c for m, c in curves.items() if any(run["series"] for run in c)},  # baselines never train
        "horizon": _horizon(by_model, metric),
        "forecasts": {m: f for m, f in forecasts.items() if f is not None},
        "attention": {m: a for m, a in attention.items() if a is not None},
        "configs": _config_differences(board, {r.info.run_id: r for r in finished}),
    }


def render(payload: dict) -> str:
    """The page: template with CSS, script and data inlined.

    Every string from MLflow (experiment, run and param names, tags, errors) reaches the page either
    HTML-escaped (the title) or inside the JSON payload with <, > and & as unicode escapes, where no
    sequence can close the script element; the page's script only ever sets them as text. The markers
    are filled in one pass, so a name that happens to contain a marker is not filled in again.
    """
    assets = dashboard_dir()
    data = json.dumps(_finite(payload), separators=(",", ":"))
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    fillings = {
        "__TITLE__": html.escape(payload["experiment"]),
        "__CSS__": (assets / "dashboard.css").read_text(encoding="utf-8"),
        "__JS__": (assets / "dashboard.js").read_text(encoding="utf-8"),
        "__PAYLOAD__": data,
    }
    template = (assets / "template.html").read_text(encoding="utf-8")
    return re.sub("|".join(fillings), lambda match: fillings[match.group(0)], template)


def _first(runs, fetch, tries: int = 5):
    """What `fetch` finds for the first of the best `tries` runs that has it, else None."""
    for run in runs[:tries]:
        found = fetch(run)
        if found is not None:
            return found
    return None


def _leaderboard(board: Leaderboard) -> dict:
    rows = [[rank, *(r[c] for c in board.columns)] for rank, r in enumerate(board.records(), start=1)]
    return {
        "columns": ["rank", *board.columns],
        "text_columns": [*board.group_by, *TEXT_COLUMNS],
        "percent_columns": list(SKILL_COLUMNS),
        "rows": rows,
        "apart": board.apart,
    }


def _labels(board: Leaderboard) -> dict[str, str]:
    """Each ranked run's label: its name, followed by what sets its group apart where runs of one model and
    data were split (different data or settings), so two curves never carry the same label."""
    return {
        run_id: group.settings_text
        for group in board.groups
        for run_id in group.run_ids
    }


def _curves(client, runs, labels: dict[str, str]) -> list[dict]:
    curves = []
    for run in runs:
        series = {}
        for key in CURVES:
            history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
            if history:
                series[key] = [[epoch, m.value] for epoch, m in enumerate(history)]
        apart = labels.get(run.info.run_id)
        name = run.info.run_name or run.info.run_id
        curves.append({"run": f"{name} ({apart})" if apart else name, "series": series})
    return curves


def _horizon(by_model: dict[str, list], metric: str) -> dict:
    name = metric.rpartition("/")[2]
    name = name if name in ("mse", "mae", "crps") else "mse"
    models, every_run = {}, []
    for model, runs in by_model.items():
        steps = _per_step([r.data.metrics for r in runs], f"test/{name}_h")
        if steps:
            models[model] = steps
        every_run += [r.data.metrics for r in runs]
    baselines = {b.replace("_", " "): _per_step(every_run, f"test/{infix}{name}_h") for b, infix in BASELINES.items()}
    return {"metric": name, "models": models, "baselines": {b: steps for b, steps in baselines.items() if steps}}


def _per_step(metrics: list[dict], prefix: str) -> list[float]:
    """Mean over runs of prefix1, prefix2, ... as far as every run has the step."""
    steps = []
    h = 1
    while metrics and all(f"{prefix}{h}" in m for m in metrics):
        steps.append(sum(m[f"{prefix}{h}"] for m in metrics) / len(metrics))
        h += 1
    return steps


def _forecast_windows(client, run, tmp: Path) -> dict | None:
    import numpy as np
    import pandas as pd
    from mlflow.exceptions import MlflowException

    entry = {"run": run.info.run_name, "windows": []}
    try:
        path = client.download_artifacts(run.info.run_id, "forecasts/test_forecasts.csv", str(tmp / run.info.run_id))
    except (MlflowException, OSError):  # a run from before forecasts were logged: nothing to draw
        return None
    frame = pd.read_csv(path)
    target, series = frame["target"].iloc[0], frame["series"].iloc[0]
    rows = frame[(frame["target"] == target) & (frame["series"] == series)]
    origins = rows["origin"].drop_duplicates().to_list()
    band = _widest_interval(frame.columns)
    for index in np.unique(np.linspace(0, len(origins) - 1, min(FORECAST_WINDOWS, len(origins))).astype(int)):
        window = rows[rows["origin"] == origins[index]]
        drawn = {
            "title": f"{series} / {target} from {origins[index]}",
            "target": str(target),
            "time": window["time"].astype(str).to_list(),
            "actual": window["actual"].to_list(),
            "forecast": window["forecast"].to_list(),
        }
        if band is not None:  # a quantile model: its widest central interval, drawn as a band
            lower, upper, percent = band
            coverage = run.data.metrics.get(f"test/coverage_{percent}")
            label = f"{percent}% interval" + ("" if coverage is None else f" (covers {coverage:.0%} of the test split)")
            drawn["band"] = {"label": label, "lower": window[lower].to_list(), "upper": window[upper].to_list()}
        entry["windows"].append(drawn)
    return entry


def _widest_interval(columns) -> tuple[str, str, int] | None:
    """The q<level> columns of test_forecasts.csv that bound the widest central interval, and its percent."""
    from tsattn.intervals import interval_pairs

    named = {}
    for column in columns:
        if column.startswith("q"):
            try:
                named[float(column[1:])] = column
            except ValueError:
                continue
    levels = sorted(named)
    pairs = interval_pairs(levels)
    if not pairs:
        return None
    lower, upper, percent = max(pairs, key=lambda pair: pair[2])
    return named[levels[lower]], named[levels[upper]], percent


def _attention(client, run, tmp: Path) -> dict | None:
    from mlflow.exceptions import MlflowException

    try:
        path = client.download_artifacts(run.info.run_id, "plots/attention.json", str(tmp / (run.info.run_id + "-a")))
    except (MlflowException, OSError):  # models without attention log none
        return None
    data = json.loads(Path(path).read_text())
    return {
        "run": run.info.run_name,
        "title": f"{data['series']}, forecast from {data['origin']}",
        "weights": data["weights"],
    }


def _config_differences(board: Leaderboard, runs: dict) -> dict:
    """The settings that differ between the best run of each group (up to MAX_CONFIG_GROUPS, best groups first):
    different models, and the groups one model and data were split into."""
    rank = rank_key(board.metric)
    best = []
    for group in board.groups[:MAX_CONFIG_GROUPS]:
        value, run_id = min(zip(group.values, group.run_ids, strict=True), key=lambda pair: rank(pair[0]))
        label = " ".join(group.key)
        if group.settings:
            label += f" [{group.settings_text}]"
        best.append((f"{label} ({runs[run_id].info.run_name})", runs[run_id]))
    keys = sorted({k for _, run in best for k in run.data.params if is_setting(k)})
    rows = []
    for key in keys:
        values = [run.data.params.get(key) for _, run in best]
        if len(set(values)) > 1:
            rows.append([key, *values])
    contents = [run.data.tags.get("tsattn.data_sha256", "")[:12] or "?" for _, run in best]
    if len(set(contents)) > 1:
        rows.insert(0, ["data content (SHA-256)", *contents])
    return {"columns": [label for label, _ in best], "rows": rows}


def _finite(value):
    """NaN and infinity are not JSON: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
