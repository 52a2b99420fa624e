"""The leaderboard: runs of an MLflow experiment grouped (by model and data by default), seeds averaged.

Only FINISHED runs with the metric are averaged; failed, killed and unfinished runs are listed apart.
Each group's baseline is the last-value forecast of the same test windows, which every run records
(`test/naive_mse` beside `test/mse`), so the skill compares like with like.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from tsattn.errors import TsattnError


@dataclass
class Group:
    key: tuple[str, ...]
    values: list[float]
    baselines: list[float]
    seeds: list[str]
    run_ids: list[str]

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

    @property
    def baseline(self) -> float:
        return sum(self.baselines) / len(self.baselines) if self.baselines else float("nan")

    @property
    def skill(self) -> float:
        """1 - metric / baseline: the share of the last-value error the group removes."""
        baseline = self.baseline
        return 1.0 - self.mean / baseline if baseline and math.isfinite(baseline) else float("nan")


@dataclass
class Leaderboard:
    metric: str
    group_by: list[str]
    groups: list[Group]
    apart: list[dict] = field(default_factory=list)  # runs not averaged: name, status, why

    def records(self) -> list[dict]:
        """One plain dict per group, best first."""
        return [
            {
                **dict(zip(self.group_by, group.key, strict=True)),
                "mean": group.mean,
                "std": group.std,
                "runs": len(group.values),
                "seeds": ",".join(sorted(group.seeds, key=_seed_order)),
                "baseline": group.baseline,
                "skill": group.skill,
            }
            for group in self.groups
        ]


def baseline_metric(metric: str) -> str | None:
    """test/mse -> test/naive_mse: the last-value score of the same windows, where the run records one."""
    prefix, _, name = metric.rpartition("/")
    if prefix != "test" or name.startswith(("naive_", "skill_")):
        return None
    return f"{prefix}/naive_{name}"


def leaderboard(runs: Sequence, metric: str = "test/mse", group_by: Sequence[str] = ("model", "data")) -> Leaderboard:
    """Group MLflow runs (mlflow.entities.Run) and rank the groups by the mean of `metric`.

    Args:
        runs: the runs of an experiment; sweep parent runs are skipped.
        metric: the metric to rank by; lower is better, except for skill metrics.
        group_by: tsattn tags (model, data, seed...) or params (model/net/hidden_size) to group by.
    """
    baseline_name = baseline_metric(metric)
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
        group = groups.setdefault(key, Group(key, [], [], [], []))
        group.values.append(value)
        group.seeds.append(tags.get("tsattn.seed", "?"))
        group.run_ids.append(run.info.run_id)
        if baseline_name and baseline_name in run.data.metrics:
            group.baselines.append(run.data.metrics[baseline_name])
    higher_is_better = "skill" in metric
    ranked = sorted(groups.values(), key=lambda g: -g.mean if higher_is_better else g.mean)
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
