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
from tsattn.intervals import CRPS_METHOD

# Baseline name -> the prefix its metrics carry in a run (test/naive_mse, test/snaive_mse_h3...). best_naive
# is the strongest simple forecast, the last value or seasonal naive at the best candidate season, chosen on
# each run's validation windows; best_naive_rule names the rule (param data/best_naive).
BASELINES = {"last_value": "naive_", "seasonal_naive": "snaive_", "best_naive": "best_naive_"}
# What each group's record holds after its group keys, in the order tables show it. settings names what sets
# a group apart from others with the same keys (different data, or settings other than the seed); "-" if none.
COLUMNS = (
    "mean",
    "std",
    "runs",
    "seeds",
    *(c for b in BASELINES for c in (b, f"skill_{b}")),
    "best_naive_rule",
    "settings",
)
TEXT_COLUMNS = ("seeds", "best_naive_rule", "settings")
# Params that differ between runs for reasons that are not modelling choices: the seed itself, where files
# go, how and where the run executed (torch threads, a terminal's progress bar, devices, the DDP strategy), a
# resumed run's checkpoint. Everything else logged is a setting. Names are exact; prefixes end in "/".
NOT_SETTINGS = (
    "seed",
    "threads",
    "ckpt_path",
    "data/path",
    "paths/",
    "logger/",
    "callbacks/model_checkpoint/dirpath",
    "trainer/default_root_dir",
    "trainer/enable_progress_bar",
    "trainer/enable_model_summary",
    "trainer/accelerator",
    "trainer/devices",
    "trainer/num_nodes",
    "trainer/strategy",
    "optuna_trial/",
)


def is_setting(name: str) -> bool:
    """Whether a logged param is a modelling setting (see NOT_SETTINGS)."""
    return not any(name == n or (n.endswith("/") and name.startswith(n)) for n in NOT_SETTINGS)
DATA_CONTENT = "data content"  # the pseudo-setting naming a run's data file by its SHA-256 (tag tsattn.data_sha256)
SKILL_COLUMNS = tuple(f"skill_{b}" for b in BASELINES)


@dataclass
class Group:
    key: tuple[str, ...]
    values: list[float]
    baselines: dict[str, list[float]]  # baseline name -> its value in each run that recorded it
    seeds: list[str]
    run_ids: list[str]
    rules: list[str] = field(default_factory=list)  # each run's strongest simple forecast (data/best_naive)
    settings: dict[str, str] = field(default_factory=dict)  # what sets it apart from groups with the same key

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def settings_text(self) -> str:
        """What sets the group apart (`trainer/max_epochs=5, data content=...`); empty when nothing does."""
        return ", ".join(f"{name}={value}" for name, value in self.settings.items())

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
                "settings": group.settings_text or "-",
            }
            for group in self.groups
        ]

    def notes(self) -> list[str]:
        """One line per thing a reader of the table must know: groups split apart, seeds counted twice."""
        lines = []
        split = {group.key for group in self.groups if group.settings}
        for key in sorted(split):
            differing = sorted({name for g in self.groups if g.key == key for name in g.settings})
            lines.append(
                f"{' '.join(key)}: split into {sum(g.key == key for g in self.groups)} groups, whose runs differ "
                f"in {', '.join(differing)} (the settings column says which is which); seeds alone are averaged"
            )
        for group in self.groups:
            repeated = sorted({s for s in group.seeds if s != "?" and group.seeds.count(s) > 1}, key=_seed_order)
            if repeated:
                lines.append(
                    f"{' '.join(group.key)}: seed {', '.join(repeated)} appears in more than one run with the same "
                    "data and settings: a rerun, counted twice in the mean; remove one or compare with --filter"
                )
        return lines


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
    # Group key -> its clusters of runs that are seeds of one another: (their settings, the group).
    groups: dict[tuple[str, ...], list[tuple[dict[str, str], Group]]] = {}
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
        why = incomparable(run, metric)
        if why:
            apart.append({"run": name, "run_id": run.info.run_id, "status": run.info.status, "why": why})
            continue
        key = tuple(_group_value(run, g) for g in group_by)
        group = _group_of(groups.setdefault(key, []), key, _settings(run, group_by))
        group.values.append(value)
        group.seeds.append(tags.get("tsattn.seed", "?"))
        group.run_ids.append(run.info.run_id)
        if "data/best_naive" in run.data.params:  # runs from before it was chosen have none
            group.rules.append(run.data.params["data/best_naive"])
        for baseline, name in baseline_names.items():
            if name in run.data.metrics:  # runs from before a baseline was logged leave it out
                group.baselines.setdefault(baseline, []).append(run.data.metrics[name])
    for clusters in groups.values():
        _name_differences(clusters)
    rank = rank_key(metric)
    ranked = sorted((group for clusters in groups.values() for _, group in clusters), key=lambda g: rank(g.mean))
    return Leaderboard(metric=metric, group_by=list(group_by), groups=ranked, apart=apart)


def _settings(run, group_by: Sequence[str]) -> dict[str, str]:
    """What must be equal for two runs to be seeds of one another: the data file's content and every setting
    (logged param; is_setting) not already grouped by."""
    settings = {name: value for name, value in run.data.params.items() if is_setting(name) and name not in group_by}
    content = run.data.tags.get("tsattn.data_sha256", "")[:12]
    if content:
        settings[DATA_CONTENT] = content
    return settings


def _group_of(clusters: list, key: tuple[str, ...], settings: dict[str, str]) -> Group:
    """The group of the first cluster whose settings agree with `settings` on every name both hold (a setting
    one run did not log, such as one added in a later version, separates nothing), or a new one."""
    for known, group in clusters:
        if all(known[name] == value for name, value in settings.items() if name in known):
            known.update(settings)  # the union: later runs are checked against every setting seen
            return group
    group = Group(key, [], {}, [], [])
    clusters.append((dict(settings), group))
    return group


def _name_differences(clusters: list) -> None:
    """Where runs with one group key split into several groups, give each the settings that set it apart."""
    if len(clusters) < 2:
        return
    names = sorted({name for settings, _ in clusters for name in settings})
    differing = [
        name
        for name in names
        if len({settings[name] for settings, _ in clusters if name in settings}) > 1
    ]
    for settings, group in clusters:
        group.settings = {name: settings.get(name, "(unset)") for name in differing}


def incomparable(run, metric: str) -> str | None:
    """Why a finished run's `metric` cannot be ranked with the others', or None.

    A quantile run logged by tsattn before the CRPS integral (no tsattn.crps tag) holds the mean pinball loss of
    its own levels as test/crps: 0.50 for perfect normal quantiles at 0.1, 0.5, 0.9 and 0.38 with 0.05 and 0.95
    added, where the CRPS is 0.56 for both, so it would rank runs by their choice of levels.
    """
    if not re.fullmatch(r"(test|val)/crps(_h\d+)?", metric):  # the baselines' *_crps are their MAE either way
        return None
    levels = run.data.params.get("model/net/quantiles", "None")
    if levels in ("None", "null", "") or run.data.tags.get("tsattn.crps") == CRPS_METHOD:
        return None
    return (
        f"its {metric} is the mean pinball loss of levels {levels} (tsattn before the CRPS integral): "
        "retrain to compare"
    )


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
