"""Hydra sweep syntax -> Optuna distributions.

choice(a, b, c)                    CategoricalDistribution
range(start, stop[, step])         IntDistribution (stop excluded, as in Hydra), or FloatDistribution with step
interval(low, high)                FloatDistribution; IntDistribution when both ends are ints
tag(log, interval(low, high))      the same on a log scale
tag(int, interval(low, high))      IntDistribution
anything else                      a fixed override, passed to every trial
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep


def parse_search_space(
    entries: Sequence[str], parser: OverridesParser | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Split `key=value` entries into Optuna distributions and fixed overrides.

    Returns:
        ({key: distribution}, [fixed override strings])
    """
    parser = parser or OverridesParser.create()
    distributions: dict[str, Any] = {}
    fixed: list[str] = []
    for override in parser.parse_overrides(list(entries)):
        if override.is_sweep_override():
            distributions[override.get_key_element()] = to_distribution(override)
        else:
            fixed.append(override.input_line)
    return distributions, fixed


def to_distribution(override: Override) -> Any:
    import optuna.distributions as d

    value = override.value()
    if isinstance(value, ChoiceSweep):
        return d.CategoricalDistribution(list(value.list))
    if isinstance(value, RangeSweep):
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return d.IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
        return d.FloatDistribution(float(value.start), float(value.stop), step=float(value.step))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if "int" in value.tags or (isinstance(value.start, int) and isinstance(value.end, int)):
            return d.IntDistribution(int(value.start), int(value.end), log=log)
        return d.FloatDistribution(float(value.start), float(value.end), log=log)
    raise ValueError(f"{override.input_line}: only choice, range and interval sweeps can be searched")
