"""Rolling-origin evaluation of a bundle over a history, beside the last-value and seasonal-naive forecasts.

At every `step`-th origin o of each series (o >= lookback and o >= the season length, o + H <= its length)
the model reads rows [o - L, o) and forecasts rows [o, o + H). Errors are in the data's own units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from tsattn.bundle import Bundle
from tsattn.data.calendar import calendar_features, season_length
from tsattn.data.series import SeriesCollection
from tsattn.errors import TsattnError
from tsattn.forecast import statistics

FORECASTERS = ("model", "last_value", "seasonal_naive")


@dataclass
class Backtest:
    rows: pd.DataFrame  # <id>, origin, <time>, step, target, actual, model, last_value, seasonal_naive
    metrics: dict  # forecaster -> {"overall": {metric: value}, "per_step": {metric: [H values]}}
    windows: int
    series: int


def backtest(
    bundle: Bundle,
    history: SeriesCollection,
    step: int,
    batch_size: int = 1024,
    on_batch: Callable[[int], None] | None = None,
) -> Backtest:
    """Forecast from every `step`-th origin of every series and score the model and both baselines."""
    if step < 1:
        raise TsattnError(f"--step {step}: origins must be at least 1 step apart")
    schema, module = bundle.schema, bundle.module
    lookback, horizon = bundle.lookback, bundle.horizon
    n_targets = len(schema["targets"])
    season = season_length(pd.tseries.frequencies.to_offset(schema["freq"]))
    first_origin = max(lookback, season)
    device = next(module.parameters(), torch.empty(0)).device
    names = schema["calendar"]

    parts, errors = [], {name: [] for name in FORECASTERS}  # errors: [N, H, C] blocks
    scaled_abs, done = [], 0
    usable = [s for s in history.series if len(s.time) >= first_origin + horizon]
    if not usable:
        raise TsattnError(
            f"{history.source}: no series has the {first_origin + horizon} rows one backtest window needs "
            f"(lookback {lookback} or season {season}, then horizon {horizon})"
        )
    for series in usable:
        values = series.values.astype(np.float64)  # [T, F], real units
        origins = np.arange(first_origin, len(values) - horizon + 1, step)
        mean, std = statistics(bundle, series)
        scaled = ((values - mean) / std).astype(np.float32)
        calendar = calendar_features(series.time, names)  # [T, K]
        input_rows = origins[:, None] + np.arange(-lookback, 0)  # [N, L]
        target_rows = origins[:, None] + np.arange(horizon)  # [N, H]
        x = np.concatenate([scaled[input_rows], calendar[input_rows]], axis=-1)  # [N, L, F + K]
        future_calendar = calendar[target_rows]  # [N, H, K]
        predictions = []
        for begin in range(0, len(origins), batch_size):
            batch = {
                "x": torch.from_numpy(x[begin : begin + batch_size]).to(device),
                "future_calendar": torch.from_numpy(future_calendar[begin : begin + batch_size]).to(device),
            }
            with torch.inference_mode():
                y_hat = module(batch)["y_hat"]
                predictions.append(module.point(y_hat).float().cpu().numpy())  # [B, H, C]
            done += len(batch["x"])
            if on_batch is not None:
                on_batch(done)
        forecasts = {
            "model": np.concatenate(predictions) * std[:n_targets] + mean[:n_targets],
            "last_value": np.repeat(values[origins - 1, None, :n_targets], horizon, axis=1),
            "seasonal_naive": values[origins[:, None] - season + np.arange(horizon) % season][..., :n_targets],
        }
        actual = values[target_rows][..., :n_targets]  # [N, H, C]
        for name in FORECASTERS:
            errors[name].append((forecasts[name], actual))
        scale = _mase_scale(values[:first_origin, :n_targets], season)  # [C]
        scaled_abs.append({name: np.abs(forecasts[name] - actual) / scale for name in FORECASTERS})
        parts.append(_rows(series, origins, horizon, schema, actual, forecasts))

    metrics = {
        name: _scores(
            np.concatenate([f for f, _ in errors[name]]),
            np.concatenate([a for _, a in errors[name]]),
            np.concatenate([s[name] for s in scaled_abs]),
        )
        for name in FORECASTERS
    }
    rows = pd.concat(parts, ignore_index=True)
    return Backtest(rows=rows, metrics=metrics, windows=len(rows) // (horizon * n_targets), series=len(usable))


def _mase_scale(insample: np.ndarray, season: int) -> np.ndarray:
    """Mean absolute seasonal difference of the rows before the first origin, per target ([C]).

    The seasonal lag falls back to 1 when the in-sample rows do not span two seasons; a flat in-sample
    series has no scale (NaN), and its MASE is left out.
    """
    lag = season if len(insample) > season else 1
    scale = np.abs(insample[lag:] - insample[:-lag]).mean(axis=0)
    return np.where(scale > 0, scale, np.nan)


def _scores(forecast: np.ndarray, actual: np.ndarray, scaled_abs: np.ndarray) -> dict:
    """MSE, MAE, sMAPE (%) and MASE, overall and per horizon step. Shapes: [N, H, C] each."""
    error = forecast - actual
    denominator = np.abs(forecast) + np.abs(actual)
    smape = np.where(denominator > 0, 2 * np.abs(error) / np.where(denominator > 0, denominator, 1), 0.0) * 100
    per_step = {
        "mse": (error**2).mean(axis=(0, 2)),
        "mae": np.abs(error).mean(axis=(0, 2)),
        "smape": smape.mean(axis=(0, 2)),
        "mase": np.nanmean(scaled_abs, axis=(0, 2))
        if np.isfinite(scaled_abs).any()
        else np.full(error.shape[1], np.nan),
    }
    overall = {
        "mse": float((error**2).mean()),
        "mae": float(np.abs(error).mean()),
        "smape": float(smape.mean()),
        "mase": float(np.nanmean(scaled_abs)) if np.isfinite(scaled_abs).any() else float("nan"),
    }
    return {"overall": overall, "per_step": {k: [float(v) for v in values] for k, values in per_step.items()}}


def _rows(series, origins, horizon, schema, actual, forecasts) -> pd.DataFrame:
    targets = schema["targets"]
    n, n_targets = len(origins), len(targets)
    target_rows = origins[:, None] + np.arange(horizon)  # [N, H]
    columns = {
        schema["id_col"] or "series": np.repeat(series.id, n * horizon * n_targets),
        "origin": np.repeat(series.time[origins - 1], horizon * n_targets),
        schema["time_col"] or "time": np.repeat(series.time[target_rows.reshape(-1)], n_targets),
        "step": np.tile(np.repeat(np.arange(1, horizon + 1), n_targets), n),
        "target": np.tile(targets, n * horizon),
        "actual": actual.reshape(-1),
    }
    for name in FORECASTERS:
        columns[name] = forecasts[name].reshape(-1)
    frame = pd.DataFrame(columns)
    return frame.drop(columns="series") if schema["layout"] == "wide" else frame
