"""The in-memory form of validated series, shared by the reader and everything downstream."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Series:
    """One regular series. `values` holds the targets first, then the past covariates, then the future ones."""

    id: str
    time: pd.DatetimeIndex  # [T], strictly increasing on a regular grid
    # [T, C + P + U] float64, the data's own units: every path (training, forecast, streaming, Spark) scales
    # these in float64 and only the scaled values become float32, so 10000001.7 is never read as 10000002.0.
    values: np.ndarray


@dataclass(frozen=True)
class SeriesCollection:
    """All series read from one file, sharing column names and frequency."""

    source: str
    series: list[Series]
    targets: list[str]
    covariates: list[str]
    freq: pd.DateOffset
    time_col: str | None = None  # the file's column names, so forecasts can be written back in them
    id_col: str | None = None
    time_format: str | None = None  # data.time_format: how the time column was written, when not inferred
    # Columns known ahead (a planned price, a weather forecast): read over the lookback and the horizon.
    future_covariates: list[str] = field(default_factory=list)
    # Per-series constants of a long file (a region, a capacity): series id -> column -> number or level.
    static_covariates: list[str] = field(default_factory=list)
    static: dict[str, dict[str, float | str]] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Every value column, in the order of `Series.values`: targets, past covariates, future covariates."""
        return [*self.targets, *self.covariates, *self.future_covariates]

    @property
    def n_observed(self) -> int:
        """C + P: the leading columns known up to the forecast origin only (targets and past covariates)."""
        return len(self.targets) + len(self.covariates)
