"""The leaderboard: runs of an MLflow experiment grouped (by model and data by default), seeds averaged.

Only FINISHED runs with the metric are averaged; failed, killed and unfinished runs are listed apart.
Each group is set beside two baselines scored on the same test windows, which every run records: the
last value (`test/naive_mse` beside `test/mse`) and the seasonal naive forecast (`test/snaive_mse`), so
each skill compares like with like. Repeating the last value is easy to beat on seasonal data; the
seasonal naive forecast is the bar a model must clear to be worth anything there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tsattn.errors import TsattnError

# Baseline name -> the prefix its metrics carry in a run (test/naive_mse, test/snaive_mse_h3...). best_naive
# is the strongest simple forecast, the last value or seasonal naive at the best candidate season, chosen on
# each run's validation windows; best_naive_rule names the rule (param data/best_naive).
BASELINES = {"last_value": "naive_", "seasonal_naive": "snaive_", "best_naive": "best_naive_"}
# What each group's record holds after its group keys, in the order tables show it.
COLUMNS = ("mean", "std", "runs", "seeds", *(c for b in BASELINES for c in (b, f"skill_{b}")), "best_naive_rule")
TEXT_COLUMNS = ("seeds", "best_naive_rule")
SKILL_COLUMNS = tuple(f"skill_{b}" for b in BASELINES)


@dataclass
class Group:
    key: tuple[str, ...]
    values: list[float]
    baselines: dict[str, list[float]]  # baseline name -> its value in each run that recorded it
    seeds: list[str]
    run_ids: list[str]
    rules: list[str] = field(default_factory=list)  # each run's strongest simple forecast (data/best_naive)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation over the runs (n - 1); NaN for a single run."""
        n = len(self.values)
        if n < 2:
            return float("nan")
        mean = self.mean
        return math.sqrt(sum((v - mean) ** 2 for v in self.values) / (n - 1))

    def baseline(self, name: str) -> float:
        values = self.baselines.get(name, [])
        return sum(values) / len(values) if values else float("nan")

    def skill(self, name: str) -> float:
        """1 - metric / baseline: the share of the baseline's error the group removes."""
        baseline = self.baseline(name)
        return 1.0 - self.mean / baseline if baseline and math.isfinite(baseline) else float("nan")


@dataclass
class Leaderboard:
    metric: str
    group_by: list[str]
    groups: list[Group]
    apart: list[dict] = field(default_factory=list)  # runs not averaged: name, status, why

    @property
    def columns(self) -> list[str]:
        return [*self.group_by, *COLUMNS]

    def records(self) -> list[dict]:
        """One plain dict per group, best first."""
        return [
            {
                **dict(zip(self.group_by, group.key, strict=True)),
                "mean": group.mean,
                "std": group.std,
                "runs": len(group.values),
                "seeds": ",".join(sorted(group.seeds, key=_seed_order)),
                **{
                    column: value
                    for name in BASELINES
                    for column, value in ((name, group.baseline(name)), (f"skill_{name}", group.skill(name)))
                },
                "best_naive_rule": ",".join(sorted(set(group.rules))) or "-",
            }
            for group in self.groups
        ]


def nominal_coverage(metric: str) -> float | None:
    """test/coverage_80 (or a step of it, test/coverage_80_h3) -> 0.8, the level it should reach; else None."""
    match = re.fullmatch(r"test/coverage_(\d+)(_h\d+)?", metric)
    return int(match.group(1)) / 100 if match else None


def ordering(metric: str) -> str:
    """How `metric` ranks, in words: skills higher, coverages closest to their level, the rest lower."""
    nominal = nominal_coverage(metric)
    if nominal is not None:
        return f"closest to {nominal:.2f} is better"
    return "higher is better" if "skill" in metric else "lower is better"


def rank_key(metric: str):
    nominal = nominal_coverage(metric)
    if nominal is not None:
        return lambda value: abs(value - nominal)
    return (lambda value: -value) if "skill" in metric else (lambda value: value)


def baseline_metrics(metric: str) -> dict[str, str]:
    """test/mse -> {last_value: test/naive_mse, seasonal_naive: test/snaive_mse}: the same score of each
    baseline on the same windows; empty for metrics that have none (validation, skills, baselines, and the
    intervals of a predicted distribution, which point baselines do not have)."""
    prefix, _, name = metric.rpartition("/")
    baselines = ("naive_", "snaive_", "best_naive_", "last_value_", "seasonal_naive_")
    if prefix != "test" or name.startswith((*baselines, "skill_", "coverage_", "width_")):
        return {}
    return {baseline: f"{prefix}/{infix}{name}" for baseline, infix in BASELINES.items()}


def leaderboard(runs: Sequence, metric: str = "test/mse", group_by: Sequence[str] = ("model", "data")) -> Leaderboard:
    """Group MLflow runs (mlflow.entities.Run) and rank the groups by the mean of `metric`.

    Args:
        runs: the runs of an experiment; sweep parent runs are skipped.
        metric: the metric to rank by; lower is better, except for skills (higher) and interval coverages
            (closest to their nominal level: test/coverage_80 to 0.80).
        group_by: tsattn tags (model, data, seed...) or params (model/net/hidden_size) to group by.
    """
    baseline_names = baseline_metrics(metric)
    groups: dict[tuple[str, ...], Group] = {}
    apart = []
    for run in runs:
        tags = run.data.tags
        if tags.get("tsattn.role") == "sweep":
            continue
        name = run.info.run_name or run.info.run_id
        if run.info.status != "FINISHED":
            reason = tags.get("tsattn.error", "") or (
                "still running, or killed" if run.info.status == "RUNNING" else ""
            )
            apart.append({"run": name, "run_id": run.info.run_id, "status": run.info.status, "why": reason})
            continue
        value = run.data.metrics.get(metric)
        if value is None or not math.isfinite(value):
            apart.append({"run": name, "run_id": run.info.run_id, "status": run.info.status, "why": f"no {metric}"})
            continue
        key = tuple(_group_value(run, g) for g in group_by)
        group = groups.setdefault(key, Group(key, [], {}, [], []))
        group.values.append(value)
        group.seeds.append(tags.get("tsattn.seed", "?"))
        group.run_ids.append(run.info.run_id)
        if "data/best_naive" in run.data.params:  # runs from before it was chosen have none
            group.rules.append(run.data.params["data/best_naive"])
        for baseline, name in baseline_names.items():
            if name in run.data.metrics:  # runs from before a baseline was logged leave it out
                group.baselines.setdefault(baseline, []).append(run.data.metrics[name])
    rank = rank_key(metric)
    ranked = sorted(groups.values(), key=lambda g: rank(g.mean))
    return Leaderboard(metric=metric, group_by=list(group_by), groups=ranked, apart=apart)


def _group_value(run, key: str) -> str:
    tags, params = run.data.tags, run.data.params
    if f"tsattn.{key}" in tags:
        return tags[f"tsattn.{key}"]
    if key in params:
        return params[key]
    if key in tags:
        return tags[key]
    raise TsattnError(
        f"--group-by {key}: run {run.info.run_name!r} has no tag tsattn.{key} or param {key}; "
        "use model, data, seed or a param name such as model/net/hidden_size"
    )


def _seed_order(seed: str):
    return (0, int(seed)) if seed.lstrip("-").isdigit() else (1, seed)
