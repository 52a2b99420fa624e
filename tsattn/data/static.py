"""Static covariates: one value per series (a store's region, a sensor's capacity), read from a long file.

A column listed in data.static_covariates must hold the same value in every row of a series (empty cells
aside). Numeric columns are standardised across the training series; any other column is categorical and
becomes a one-hot code over the levels seen in training. The code joins the known channels of every step,
so the network's first layer maps it to a learned vector per level: a linear map of a one-hot code is an
embedding lookup. A level the model never saw codes as all zeros, the embedding's origin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsattn.data.scaling import mean_and_std
from tsattn.errors import TsattnError

# More levels than this make the known channels of every step wider than the series they describe.
MAX_LEVELS = 64
# The whole code's channels (numeric columns and levels): it is repeated at every lookback and horizon step.
MAX_WIDTH = 256


def read_static(
    frame: pd.DataFrame,
    ids: pd.Series,
    columns: Sequence[str],
    name: str,
    kinds: Mapping[str, str] | None = None,
) -> dict[str, dict[str, float | str]]:
    """Each series' value of each static column: series id -> column -> a number or a level (its text).

    Args:
        frame: the table (text cells from a CSV, or typed).
        ids: the series id of each row (stripped text).
        columns: the static columns.
        name: the source, for messages.
        kinds: column -> "numeric" or "categorical" as a trained model read it; when None (training), a
            column whose every filled cell is a number is numeric, any other categorical. A level keeps the
            text it is written with ("007" stays "007"), so a history reads it as training did.
    """
    values: dict[str, dict[str, float | str]] = {sid: {} for sid in dict.fromkeys(ids)}
    for column in columns:
        cells = frame[column]
        typed_numbers = pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells)
        text = cells.astype(str).str.strip().where(cells.notna(), "")
        text = text.where(text != "")  # NaN for an empty cell
        numbers = cells.astype("float64") if typed_numbers else pd.to_numeric(text, errors="coerce")
        kind = (kinds or {}).get(column) or (
            "numeric" if numbers.notna().sum() == text.notna().sum() else "categorical"
        )
        if kind == "numeric":
            bad = text.notna() & numbers.isna()
            if bad.any():
                row = int(bad.to_numpy().argmax())
                raise TsattnError(
                    f"{name}: static covariate {column!r} holds {text.iloc[row]!r} (series {ids.iloc[row]!r}), but "
                    "the model reads it as a number; give the series' number"
                )
            parsed = numbers
        else:
            parsed = text
        for sid, rows in parsed.groupby(ids, sort=False):
            distinct = rows.dropna().unique()
            if len(distinct) == 0:
                raise TsattnError(
                    f"{name}: static covariate {column!r} is empty in every row of series {sid!r}; give its value"
                )
            if len(distinct) > 1:
                raise TsattnError(
                    f"{name}: static covariate {column!r} changes within series {sid!r} ({_shown(distinct[0])}, "
                    f"{_shown(distinct[1])}); a static covariate holds one value per series (a changing column "
                    "is a past or future covariate)"
                )
            value = distinct[0]
            if kind == "numeric" and not np.isfinite(value):
                raise TsattnError(f"{name}: static covariate {column!r} of series {sid!r} is not finite")
            values[sid][column] = float(value) if kind == "numeric" else str(value)
    return values


def _shown(value) -> str:
    """A cell's value as a message shows it: numbers plainly, text quoted."""
    return f"{float(value):g}" if isinstance(value, int | float | np.number) else repr(str(value))


class StaticEncoder:
    """Static values to a vector per series: numbers standardised across series, levels one-hot.

    Args:
        numeric: column -> (mean, std) over the training series.
        categorical: column -> its levels, in code order.
        columns: every static column, in the order of the code.
    """

    def __init__(
        self,
        columns: Sequence[str],
        numeric: Mapping[str, Sequence[float]],
        categorical: Mapping[str, Sequence[str]],
    ) -> None:
        self.columns = list(columns)
        self.numeric = {c: (float(m), float(s)) for c, (m, s) in numeric.items()}
        self.categorical = {c: list(levels) for c, levels in categorical.items()}

    @classmethod
    def fit(cls, columns: Sequence[str], static: Mapping[str, Mapping[str, float | str]], name: str) -> StaticEncoder:
        numeric, categorical = {}, {}
        for column in columns:
            values = [row[column] for row in static.values()]
            if all(isinstance(v, float) for v in values):
                mean, std = mean_and_std(np.asarray(values, dtype=np.float64)[:, None])  # over the series
                numeric[column] = (float(mean[0]), float(std[0]))
                continue
            levels = sorted({str(v) for v in values})
            if len(levels) > MAX_LEVELS:
                raise TsattnError(
                    f"{name}: static covariate {column!r} has {len(levels)} levels, more than the {MAX_LEVELS} "
                    "tsattn codes; group rare levels together, or leave the column out"
                )
            categorical[column] = levels
        encoder = cls(columns, numeric, categorical)
        if encoder.width > MAX_WIDTH:
            raise TsattnError(
                f"{name}: data.static_covariates code {encoder.width} channels at every step, more than the "
                f"{MAX_WIDTH} tsattn allows; leave out a column with many levels"
            )
        return encoder

    @property
    def width(self) -> int:
        """E: the channels of the code, one per numeric column and one per level."""
        return len(self.numeric) + sum(len(levels) for levels in self.categorical.values())

    def encode(self, values: Mapping[str, float | str]) -> np.ndarray:
        """One series' code. Shape: -> [E] float32."""
        parts = []
        for column in self.columns:
            value = values[column]
            if column in self.numeric:
                if not isinstance(value, float):
                    raise TsattnError(f"static covariate {column!r} holds {value!r}, but the model read it as a number")
                mean, std = self.numeric[column]
                parts.append(np.array([(value - mean) / std]))
            else:
                levels = self.categorical[column]
                parts.append(np.array([float(str(value) == level) for level in levels]))
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)

    def encode_all(self, static: Mapping[str, Mapping[str, float | str]], ids: Sequence[str]) -> np.ndarray:
        """The codes of series `ids`. Shape: -> [S, E] float32."""
        return np.stack([self.encode(static[sid]) for sid in ids]) if ids else np.zeros((0, self.width), np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "numeric": {c: list(v) for c, v in self.numeric.items()},
            "categorical": {c: list(v) for c, v in self.categorical.items()},
        }

    @property
    def kinds(self) -> dict[str, str]:
        """Column -> "numeric" or "categorical": how a history's cells must be read for this encoder."""
        return {c: "numeric" if c in self.numeric else "categorical" for c in self.columns}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> StaticEncoder:
        return cls(state["columns"], state["numeric"], state["categorical"])

    @classmethod
    def restore(cls, state: Mapping[str, Any] | None) -> StaticEncoder | None:
        """The encoder a bundle schema or checkpoint saved (to_dict); None for a model without static covariates."""
        return cls.from_dict(state) if state else None
