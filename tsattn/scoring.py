"""Forecasts scored as the M4 competition scored them: sMAPE, MASE and OWA against Naive2, per series and overall.

One implementation for `tsattn score` and `benchmarks/m4_hourly.py` (which checks it against the competition's
published Naive2 and sNaive figures); the per-value sMAPE and MASE are tsattn.metrics', which backtests use.

- sMAPE of a series: the mean over its steps of 200 |y - f| / (|y| + |f|) (0 where both are 0).
- MASE of a series: its mean |y - f| over the mean absolute m-step difference of its history (lag 1 when the
  history does not span two seasons; a history with no change has no scale, and its MASE is left out).
- Overall sMAPE and MASE: the means over series; OWA = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2 on
  those means, Naive2 forecasting the same steps from the same histories.
- Naive2: the last value of the history after removing a multiplicative seasonal component (classical
  decomposition), when the competition's 90% autocorrelation test finds one, the component put back over the
  horizon; a history with a value at or below zero has no multiplicative component, and Naive2 is the last
  value (M4's series are all positive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tsattn.data.calendar import season_offsets
from tsattn.metrics import mase_scale, smape_terms

# The simple forecasts every score stands beside: name -> forecast(history, horizon, season).
REFERENCES = ("naive2", "naive1", "snaive")


def seasonality_found(history: np.ndarray, season: int) -> bool:
    """The competition's 90% test: |r_m| above 1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n), r the sample ACF."""
    n = len(history)
    if season < 2 or n < 3 * season:
        return False
    centred = history - history.mean()
    denominator = float(centred @ centred)
    if denominator == 0:
        return False
    acf = np.array([float(centred[k:] @ centred[:-k]) / denominator for k in range(1, season + 1)])
    limit = 1.645 / math.sqrt(n) * math.sqrt(1 + 2 * float((acf[: season - 1] ** 2).sum()))
    return abs(acf[season - 1]) > limit


def seasonal_indices(history: np.ndarray, season: int) -> np.ndarray:
    """Classical multiplicative decomposition (R's decompose): the index of each position in the season. [m]"""
    n = len(history)
    if season % 2:
        weights = np.ones(season) / season  # an odd season's centred moving average
    else:
        weights = np.r_[0.5, np.ones(season - 1), 0.5] / season  # the centred 2 x m moving average
    trend = np.full(n, np.nan)
    half = season // 2
    trend[half : n - half] = np.convolve(history, weights, mode="valid")
    ratio = history / trend
    figure = np.array([np.nanmean(ratio[i::season]) for i in range(season)])
    return figure / figure.mean()


def naive2(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The last value of the seasonally adjusted history, seasonality put back over the horizon. [H]"""
    history = np.asarray(history, dtype=float)
    if (history <= 0).any() or not seasonality_found(history, season):
        return np.repeat(history[-1], horizon)
    figure = seasonal_indices(history, season)
    positions = np.arange(len(history) + horizon) % season
    adjusted = history / figure[positions[: len(history)]]
    return adjusted[-1] * figure[positions[len(history) :]]


def naive1(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The last value, repeated. [H]"""
    return np.repeat(np.asarray(history, dtype=float)[-1], horizon)


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The last observed season, tiled over the horizon (the last value when the history is shorter). [H]"""
    history = np.asarray(history, dtype=float)
    if len(history) < season:
        return naive1(history, horizon, season)
    return history[len(history) + season_offsets(horizon, season)]


FORECASTS = {"naive2": naive2, "naive1": naive1, "snaive": seasonal_naive}


def series_errors(history: np.ndarray, actual: np.ndarray, forecast: np.ndarray, season: int) -> dict[str, float]:
    """sMAPE (%), MASE, MSE and MAE of one series' forecast. Shapes: history [T], actual and forecast [H]."""
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    error = forecast - actual
    scale = float(mase_scale(np.asarray(history, dtype=float)[:, None], season)[0])
    return {
        "smape": float(smape_terms(forecast, actual).mean()),
        "mase": float(np.abs(error).mean() / scale) if math.isfinite(scale) else math.nan,
        "mse": float((error**2).mean()),
        "mae": float(np.abs(error).mean()),
    }


def owa(smape: float, mase: float, reference_smape: float, reference_mase: float) -> float:
    """The overall weighted average: sMAPE and MASE relative to Naive2's on the same series and steps."""
    if not reference_smape > 0 or not reference_mase > 0:
        return math.nan
    return (smape / reference_smape + mase / reference_mase) / 2


def score(
    histories: Sequence[np.ndarray], actuals: Sequence[np.ndarray], forecasts: Sequence[np.ndarray], season: int
) -> dict:
    """Per-series and overall scores of forecasts beside Naive2, the last value and seasonal naive.

    Args:
        histories: each series' values before its first forecast step. [T_i]
        actuals: its actual values at the forecast steps. [H_i]
        forecasts: its forecast of those steps. [H_i]
        season: m, the seasonal lag of MASE's scale, Naive2 and seasonal naive.

    Returns:
        {"series": [per series {"forecast": errors, "naive2": errors, ...}], "overall": {name: {"smape",
        "mase", "owa", "mse", "mae"}}}, errors as series_errors gives them plus each series' own OWA.
    """
    per_series = []
    for history, actual, forecast in zip(histories, actuals, forecasts, strict=True):
        horizon = len(actual)
        row = {"forecast": series_errors(history, actual, forecast, season)}
        for name in REFERENCES:
            row[name] = series_errors(history, actual, FORECASTS[name](history, horizon, season), season)
        for errors in row.values():
            errors["owa"] = owa(errors["smape"], errors["mase"], row["naive2"]["smape"], row["naive2"]["mase"])
        per_series.append(row)
    overall = {}
    for name in ("forecast", *REFERENCES):
        means = {key: _mean([row[name][key] for row in per_series]) for key in ("smape", "mase", "mse", "mae")}
        overall[name] = means
    for name, means in overall.items():
        means["owa"] = owa(means["smape"], means["mase"], overall["naive2"]["smape"], overall["naive2"]["mase"])
    return {"series": per_series, "overall": overall}


def _mean(values: Sequence[float]) -> float:
    """The mean of the finite values (a series without a MASE scale is left out); NaN when none is."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
