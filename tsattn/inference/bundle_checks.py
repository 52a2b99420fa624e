"""Checks on the content of a model bundle, which is untrusted data: every file is parsed, never executed.

A bundle may only name a network from tsattn's registry and hand it plain values (numbers, strings,
booleans, lists of numbers) of the types the class's own signature names, within bounds. Tensor shapes are
then compared with the weights' safetensors header on the meta device, where building a network
allocates nothing, before any real tensor exists.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tsattn.errors import TsattnError, one_line

# Every integer option: no network here has a size near it. A tensor size within it costs nothing on the
# meta device, and the weights' shapes then decide.
MAX_INTEGER = 1_000_000
# Options that set how many modules are built or how far a forward pass pads, rather than a tensor's shape:
# bounds of their own, far above any real model, so that building the blueprint stays instant.
OPTION_BOUNDS = {"num_layers": 256, "num_encoder_layers": 256, "num_decoder_layers": 256, "kernel_size": 10_001}
# Steps per window: forecasting allocates a batch of windows this long.
MAX_STEPS = 20_000
MAX_STRING = 200  # an option value or a column name
MAX_ID = 10_000  # a series id
MAX_LIST = 10_000  # quantile levels, columns
MAX_SEASONAL_LAGS = 16  # seasons read as lag channels (tsattn tries at most two per frequency, and data.season_length)
# A bundle's JSON files are parsed whole, into Python objects about 17 times their size at worst (one short
# statistic per series). Measured: a bundle of 1,000,000 one-column series (a 68 MB scaler.json, an 11 MB
# schema.json) loads at a peak of 1.39 GB with torch. These two bounds keep any bundle within about 1.5 GB.
MAX_JSON_BYTES = 64 * 2**20
MAX_SERIES = 1_000_000
# Buffers that are not saved with the weights (the positional encoding table) are sized by options alone.
MAX_UNSAVED_BUFFER_ELEMENTS = 64_000_000  # 256 MB of float32


def is_plain(value: Any) -> bool:
    """None, a boolean, a finite number, a short string, or a list of finite numbers."""
    if value is None or isinstance(value, bool | str):
        return not isinstance(value, str) or len(value) <= MAX_STRING
    if isinstance(value, int | float):
        return _plain_number(value)
    if isinstance(value, list):
        return len(value) <= MAX_LIST and all(_plain_number(v) for v in value)
    return False


def _plain_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_INTEGER
    return math.isfinite(value)


def _fits_annotation(value: Any, annotation: Any) -> bool:
    """Whether a plain value has a type the parameter's annotation names (annotations are strings here)."""
    if annotation is inspect.Parameter.empty:
        return True
    words = set(str(annotation).replace("|", " ").replace("[", " ").replace("]", " ").replace(",", " ").split())
    if value is None:
        return "None" in words
    if isinstance(value, bool):
        return "bool" in words
    if isinstance(value, int):
        return bool(words & {"int", "float"}) and value >= 0
    if isinstance(value, float):
        return "float" in words
    if isinstance(value, str):
        return "str" in words
    return bool(words & {"Sequence", "list"})  # a list of numbers


def plain_options(
    options: Any, target: Callable, source: Path, what: str, exclude: Iterable[str] = ()
) -> dict[str, Any]:
    """The options for `target`, checked: a mapping of parameters its signature names, plain values only.

    Args:
        options: the mapping read from the bundle.
        target: the class the options are for.
        source: the bundle file, for messages.
        what: which options these are ("network_options"...), for messages.
        exclude: parameters a bundle never provides (objects built elsewhere).
    """
    if not isinstance(options, Mapping):
        raise TsattnError(f"{source}: {what} is not a mapping; the bundle is corrupt")
    parameters = {
        name: p
        for name, p in inspect.signature(target).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in exclude
    }
    for name, value in options.items():
        if name not in parameters:
            raise TsattnError(
                f"{source}: {what} names {str(name)[:80]!r}, which {target.__name__} does not take; "
                "the bundle is corrupt or was tampered with"
            )
        if not is_plain(value):
            raise TsattnError(
                f"{source}: {what}.{name} is {_describe(value)}; a bundle holds only numbers, strings, booleans "
                f"and lists of numbers (integers up to {MAX_INTEGER:,})"
            )
        if not _fits_annotation(value, parameters[name].annotation):
            raise TsattnError(
                f"{source}: {what}.{name}={str(value)[:40]!r} is not a {parameters[name].annotation} "
                f"{target.__name__} takes (integers are never negative); the bundle is corrupt"
            )
        bound = OPTION_BOUNDS.get(name)
        if bound is not None and isinstance(value, int) and value > bound:
            raise TsattnError(f"{source}: {what}.{name}={value} is above {bound:,}; the bundle is refused")
    missing = [n for n, p in parameters.items() if p.default is p.empty and n not in options]
    if missing:
        raise TsattnError(f"{source}: {what} lacks {', '.join(missing)}; the bundle is incomplete")
    return dict(options)


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping" + (" with _target_" if "_target_" in value else "")
    if isinstance(value, list):
        return "a list that is not all numbers (or too long)"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value!r}, out of range"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return f"a {type(value).__name__}"


def require(condition: bool, source: Path, field: str, expected: str) -> None:
    if not condition:
        raise TsattnError(f"{source}: {field} must be {expected}; the bundle is corrupt")


def is_name(value: Any, limit: int = MAX_STRING) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def is_names(value: Any, limit: int | None = MAX_LIST, length: int = MAX_STRING) -> bool:
    """A list of names; `limit` bounds its length (None: only the file size does)."""
    return isinstance(value, list) and (limit is None or len(value) <= limit) and all(is_name(v, length) for v in value)


def is_count(value: Any, low: int = 1, high: int = MAX_INTEGER) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a bundle file; any other content is a one-line TsattnError."""
    if not path.is_file():
        raise TsattnError(f"{path}: missing; not a complete tsattn model bundle")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise TsattnError(f"{path}: the {what} is over {MAX_JSON_BYTES // 2**20} MB; the bundle is refused")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        detail = one_line(err, 120)
        raise TsattnError(f"{path}: the {what} is not valid JSON ({detail}); the bundle is corrupt") from None
    if not isinstance(data, dict):
        raise TsattnError(f"{path}: the {what} is not a JSON object; the bundle is corrupt")
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number a bundle may hold")


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header, read without loading any tensor."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise TsattnError(f"{path}: missing; the bundle has no weights")
    try:
        with safe_open(str(path), framework="pt") as weights:
            return {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        detail = one_line(err, 200)
        raise TsattnError(f"{path} is not a valid safetensors file ({detail}); the bundle is corrupt") from None


def check_shapes(state: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]], path: Path) -> None:
    """The network's saved tensors (from its state_dict on the meta device) against the file's header."""
    expected = {name: tuple(tensor.shape) for name, tensor in state.items()}
    for name in sorted(set(expected) | set(shapes)):
        if expected.get(name) != shapes.get(name):
            raise TsattnError(
                f"{path}: tensor {name!r} is {_shape(shapes.get(name))} in the weights but the bundle's "
                f"network_options make it {_shape(expected.get(name))}; the sizes do not match the weights "
                "(a corrupt or tampered bundle)"
            )


def n_known_channels(schema: Mapping[str, Any]) -> int:
    """K, as ForecastDataModule.dims counts it: two channels per calendar feature, the static code's (one per
    numeric column and per level), one per future covariate."""
    from tsattn.data.static import StaticEncoder

    static = StaticEncoder.restore(schema.get("static"))
    width = static.width if static is not None else 0
    return 2 * len(schema["calendar"]) + width + len(schema.get("future_covariates", []))


def check_agreement(schema: Mapping[str, Any], net_options: Mapping[str, Any], source: Path) -> None:
    """The network's sizes are those the schema's data implies, as training computed them.

    The schema decides what forecasting allocates (windows of L and H steps, one column per target and
    calendar feature); the network's options, checked against the weights, decide the network. A bundle
    whose two halves disagree is refused here rather than failing, or allocating, later.
    """
    from tsattn.models.folding import network_sizes

    lookback, horizon = schema["lookback"], schema["horizon"]
    module = schema["module_options"]
    lags = module.get("seasonal_lags") or []
    # Each season adds a channel per target to every window: a few distinct seasons within the lookback.
    if not (
        isinstance(lags, list)
        and len(lags) <= MAX_SEASONAL_LAGS
        and len(set(lags)) == len(lags)
        and all(is_count(m, high=lookback) for m in lags)
    ):
        raise TsattnError(
            f"{source}: module_options.seasonal_lags must list at most {MAX_SEASONAL_LAGS} distinct seasons of 1 to "
            f"{lookback} steps; refused"
        )
    n_targets = len(schema["targets"])
    n_known = n_known_channels(schema)
    dims = {"n_features": n_targets + len(schema["covariates"]) + n_known, "n_targets": n_targets}
    try:
        sizes = network_sizes(
            {**dims, "n_known": n_known},
            lookback,
            horizon,
            bool(module.get("channel_independent", False)),
            int(module.get("segment_len", 1)),
            bool(module.get("channel_identity", False)),
            len(lags),
        )
    except TsattnError as err:
        raise TsattnError(f"{source}: {err}; the bundle is corrupt") from None
    expected = {**sizes, "lookback": lookback, "horizon": horizon, "quantiles": schema.get("quantiles")}
    given = dict(net_options)
    if given.get("quantiles") is not None:  # the network keeps its levels sorted, and so does the schema
        given["quantiles"] = sorted(float(q) for q in given["quantiles"])
    for name, value in expected.items():
        if name in given and given[name] != value:
            raise TsattnError(
                f"{source}: network_options.{name}={str(given[name])[:40]} but the data described in the "
                f"schema makes it {str(value)[:40]}; the bundle is corrupt or was tampered with"
            )
    if module.get("n_future", 0) != len(schema.get("future_covariates", [])):
        raise TsattnError(f"{source}: module_options.n_future does not match the schema's future_covariates; refused")
    if module.get("n_targets") not in (None, n_targets):
        raise TsattnError(f"{source}: module_options.n_targets does not match the schema's targets; refused")


def _shape(shape: tuple[int, ...] | None) -> str:
    return "absent" if shape is None else "[" + ", ".join(f"{d:,}" for d in shape) + "]"
