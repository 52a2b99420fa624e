"""Checks on the content of a model bundle, which is untrusted data: every file is parsed, never executed.

A bundle may only name a network from tsattn's registry and hand it plain values (numbers, strings,
booleans, lists of numbers) that the class's own signature names. Sizes are checked against the tensor
shapes in the weights' safetensors header on the meta device, where building a network allocates nothing,
before any real tensor exists.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tsattn.errors import TsattnError

# A bound on every integer option: no network here has a size near it, and a bundle that claims one is
# refused before anything is built (the meta device cannot even hold the shape of a 10^9 x 10^9 matrix).
MAX_INTEGER = 1_000_000
MAX_STRING = 200
MAX_LIST = 10_000
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


def is_name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_STRING


def is_names(value: Any) -> bool:
    return isinstance(value, list) and len(value) <= MAX_LIST and all(is_name(v) for v in value)


def is_count(value: Any, low: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_INTEGER


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a bundle file; any other content is a one-line TsattnError."""
    if not path.is_file():
        raise TsattnError(f"{path}: missing; not a complete tsattn model bundle")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as err:
        detail = " ".join(str(err).split())[:120]
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
        detail = " ".join(str(err).split())[:200]
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


def _shape(shape: tuple[int, ...] | None) -> str:
    return "absent" if shape is None else "[" + ", ".join(f"{d:,}" for d in shape) + "]"
