"""The in-memory form of validated series, shared by the reader and everything downstream."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Series:
    """One regular series. `values` holds the targets first, then the past covariates."""

    id: str
    time: pd.DatetimeIndex  # [T], strictly increasing on a regular grid
    values: np.ndarray  # [T, C + P] float32


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

    @property
    def columns(self) -> list[str]:
        return [*self.targets, *self.covariates]
