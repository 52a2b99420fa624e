"""The strongest simple forecast: the last value or seasonal naive at the best candidate season, chosen on
the validation windows.

A simple rule is a season m: step h of a window repeats the value m, 2m... steps before it, so m = 1 is
the last value and m = a day or a week of steps is a seasonal naive forecast. The candidates are 1 and
every season of the data's frequency (tsattn.data.calendar.season_candidates) plus a configured
data.season_length, each only when it fits in the lookback: the rule then reads nothing the model cannot
read. The validation windows choose one; the test windows only score it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rule names are read by commands that never import torch
    from tsattn.data.windows import WindowDataset

# Where a forecaster's linear path starts training (model.linear_path_init): the closed-form ridge map chosen on
# validation (tsattn.training.linear_init), or the seasonal-naive rule it is built as.
LINEAR_PATH_INITS = ("ridge", "seasonal_naive")

# Windows scored at once: [chunk, H, C] gathers stay small whatever the split's size.
CHUNK = 4096


def naive_seasons(candidates: Iterable[int], lookback: int) -> list[int]:
    """The rules to try: 1 (the last value) and each candidate season of at most `lookback` steps, ascending."""
    return sorted({1, *(int(m) for m in candidates if 2 <= int(m) <= lookback)})


def rule_key(season: int) -> str:
    """The rule's name in params and metric keys: last_value, or seasonal_naive_<m>."""
    return "last_value" if season == 1 else f"seasonal_naive_{season}"


def rule_label(season: int) -> str:
    """The rule as a reader sees it: "last value" or "seasonal naive at 168 steps"."""
    return "last value" if season == 1 else f"seasonal naive at {season} steps"


def rule_season(key: object) -> int | None:
    """The season a rule_key names (a bundle's text: read as data, at most 7 ASCII digits); None for anything else."""
    if key == "last_value":
        return 1
    match = re.fullmatch(r"seasonal_naive_([1-9][0-9]{0,6})", key) if isinstance(key, str) else None
    return int(match.group(1)) if match else None


def rule_errors(dataset: WindowDataset, seasons: Iterable[int]) -> dict[int, float]:
    """The MSE of each rule over every window of `dataset`, in the scaled units test/mse uses."""
    seasons = list(seasons)
    squared = dict.fromkeys(seasons, 0.0)
    count = 0
    for chunk in dataset.starts.split(CHUNK):
        actual = dataset.actuals(chunk).double()  # [W, H, C]
        for m in seasons:
            squared[m] += float((dataset.seasonal_naive(chunk, m).double() - actual).pow(2).sum())
        count += actual.numel()
    return {m: squared[m] / max(count, 1) for m in seasons}


def choose(errors: dict[int, float]) -> int:
    """The rule with the lowest validation error; a tie goes to the shorter season (the last value first)."""
    return min(sorted(errors), key=lambda m: errors[m])
