"""Rolling-origin evaluation of a bundle over a history, beside the last-value and seasonal-naive forecasts.

At every `step`-th origin o of each series (o >= lookback and o >= the season length, o + H <= its length,
and the first target at or after the series' start time when one is given) the model reads rows [o - L, o)
and forecasts rows [o, o + H). Errors are in the data's own units.

Nothing after an origin reaches its forecast: a series the model was trained on is scaled with its training
statistics, and a series it never saw with the statistics of its rows before that origin only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from tsattn.data.calendar import season_offsets
from tsattn.data.series import Series, SeriesCollection
from tsattn.errors import TsattnError
from tsattn.inference.bundle import Bundle
from tsattn.inference.forecast import require_finite
from tsattn.inference.windows import WindowSpec, origin_windows, predict
from tsattn.metrics import QuantileErrors, mase_scale, scores

FORECASTERS = ("model", "last_value", "seasonal_naive")
# With a bundle that records it: the strongest simple forecast its training chose on the validation windows.
BEST_NAIVE = "best_naive"


@dataclass
class Backtest:
    # <id>, origin, <time>, step, target, actual, model, last_value, seasonal_naive(, best_naive)(, model_q<level>...)
    rows: pd.DataFrame
    # forecaster -> {"overall": {metric: value}, "per_step": {metric: [H values]}}: MSE, MAE, sMAPE, MASE and
    # CRPS (a point forecast's is its MAE); a quantile model's also coverage_<p> and width_<p> per interval
    metrics: dict
    windows: int
    series: int
    in_sample: int  # origins whose targets start before the model's test border (series it was trained on)


def backtest(
    bundle: Bundle,
    history: SeriesCollection,
    step: int,
    batch_size: int = 1024,
    on_batch: Callable[[int], None] | None = None,
    start: Mapping[str, pd.Timestamp] | None = None,
    mase_season: int | None = None,
) -> Backtest:
    """Forecast from every `step`-th origin of every series and score the model and both baselines.

    Args:
        on_batch: called with the number of origins forecast so far (count_origins gives the total).
        start: series id -> the earliest time a first forecast step may have; series not in it start
            as early as their history allows.
        mase_season: the seasonal lag of MASE's in-sample scale (default: the model's season length).
    """
    if step < 1:
        raise TsattnError(f"--step {step}: origins must be at least 1 step apart")
    if mase_season is not None and mase_season < 1:
        raise TsattnError(f"--season {mase_season}: a season is at least 1 step")
    schema, lookback, horizon = bundle.schema, bundle.lookback, bundle.horizon
    n_targets, season = len(schema["targets"]), bundle.season_length
    mase_season = mase_season or season
    earliest = max(lookback, season)
    test_start = bundle.test_starts
    spec = WindowSpec.of(bundle)
    best_naive = bundle.best_naive_season  # None for bundles from before it was chosen
    names = (*FORECASTERS, BEST_NAIVE) if best_naive else FORECASTERS

    parts, errors, scaled_abs, done, in_sample = [], {name: [] for name in names}, [], 0, 0
    levels = schema.get("quantiles")
    distribution = QuantileErrors(horizon, levels) if levels else None
    for series in history.series:
        origins = _origins(series, earliest, horizon, step, start)
        if not len(origins):
            continue
        if series.id in test_start:
            in_sample += int((series.time[origins] < test_start[series.id]).sum())
        values = series.values.astype(np.float64)  # [T, F], real units
        static = spec.static_code(history.static, series.id)  # [E] or None
        forecast, quantiles = _model_forecasts(bundle, spec, series, origins, batch_size, static)
        forecasts = {
            "model": forecast,
            "last_value": np.repeat(values[origins - 1, None, :n_targets], horizon, axis=1),
            "seasonal_naive": _seasonal_naive(values, origins, horizon, season, n_targets),
        }
        if best_naive:  # at most the lookback: it reads only rows the model reads
            forecasts[BEST_NAIVE] = _seasonal_naive(values, origins, horizon, best_naive, n_targets)
        actual = values[origins[:, None] + np.arange(horizon)][..., :n_targets]  # [N, H, C]
        for name in names:
            errors[name].append((forecasts[name], actual))
        if distribution is not None:
            distribution.update(torch.from_numpy(quantiles), torch.from_numpy(actual))
        scale = mase_scale(values[: origins[0], :n_targets], mase_season)  # [C], from rows before the first origin
        scaled_abs.append({name: np.abs(forecasts[name] - actual) / scale for name in names})
        parts.append(_rows(series, origins, horizon, schema, actual, forecasts, quantiles))
        done += len(origins)
        if on_batch is not None:
            on_batch(done)
    if not parts:
        raise TsattnError(
            f"{history.source}: no series has room for one backtest window after its start: it needs "
            f"{earliest} rows before the origin (lookback {lookback} or season {season}) and {horizon} after it"
        )

    metrics = {
        name: scores(
            np.concatenate([f for f, _ in errors[name]]),
            np.concatenate([a for _, a in errors[name]]),
            np.concatenate([s[name] for s in scaled_abs]),
        )
        for name in names
    }
    for name in names:  # CRPS for every forecaster: a point forecast's is its MAE
        metrics[name]["overall"]["crps"] = metrics[name]["overall"]["mae"]
        metrics[name]["per_step"]["crps"] = list(metrics[name]["per_step"]["mae"])
    if distribution is not None:  # the model's predicted distribution, in real units
        for key, per_step in distribution.compute().items():
            metrics["model"]["overall"][key] = float(per_step.mean())
            metrics["model"]["per_step"][key] = [float(v) for v in per_step]
    rows = pd.concat(parts, ignore_index=True)
    return Backtest(rows, metrics, len(rows) // (horizon * n_targets), len(parts), in_sample)


def trained_series_starts(bundle: Bundle, history: SeriesCollection) -> dict[str, pd.Timestamp]:
    """Series id -> the model's test border, for each series of `history` the model was trained on.

    Recognised by series id, whatever file holds it: the rows before the border were training or validation
    rows, so a backtest that starts there scores only what the model never saw, also on a copy of the
    training file with a week appended (which a file hash would not recognise).
    """
    borders = bundle.test_starts
    return {s.id: borders[s.id] for s in history.series if s.id in borders}


def count_origins(
    bundle: Bundle, history: SeriesCollection, step: int, start: Mapping[str, pd.Timestamp] | None = None
) -> int:
    """How many origins backtest forecasts from: a progress bar's total."""
    earliest = max(bundle.lookback, bundle.season_length)
    return sum(len(_origins(series, earliest, bundle.horizon, step, start)) for series in history.series)


def _origins(series, earliest: int, horizon: int, step: int, start: Mapping[str, pd.Timestamp] | None) -> np.ndarray:
    """Every `step`-th origin of a series with `earliest` rows before it, H after it, and not before its start."""
    first = earliest
    if start and series.id in start:
        first = max(first, int(series.time.searchsorted(start[series.id])))
    return np.arange(first, len(series.time) - horizon + 1, step)


def _seasonal_naive(values: np.ndarray, origins: np.ndarray, horizon: int, season: int, n_targets: int) -> np.ndarray:
    """Seasonal naive from each origin (season 1: the last value). Shape: values [T, F] -> [N, H, C]."""
    return values[origins[:, None] + season_offsets(horizon, season)][..., :n_targets]


def _model_forecasts(bundle: Bundle, spec: WindowSpec, series: Series, origins: np.ndarray, batch_size: int, static):
    """The model's point forecasts from each origin, and its quantiles (None for a point model), in real units.

    Shape: static [E] or None -> [N, H, C], [N, H, C, Q] or None
    """
    windows = origin_windows(spec, series, origins, static)
    y_hat = torch.from_numpy(predict(bundle.forecaster, windows, batch_size))  # [N, H, C(, Q)], scaled
    quantiles = windows.to_real(y_hat.numpy()) if y_hat.ndim == 4 else None
    point = windows.to_real(bundle.forecaster.point(y_hat).numpy())
    require_finite(point[None] if quantiles is None else quantiles[None], [series.id])  # [1, N, H, C(, Q)]
    return point, quantiles


def _rows(series, origins, horizon, schema, actual, forecasts, quantiles) -> pd.DataFrame:
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
    for name, forecast in forecasts.items():
        columns[name] = forecast.reshape(-1)
    for qi, level in enumerate(schema.get("quantiles") or ()):  # [N, H, C, Q]: one column per level
        columns[f"model_q{level:g}"] = quantiles[..., qi].reshape(-1)
    frame = pd.DataFrame(columns)
    return frame.drop(columns="series") if schema["layout"] == "wide" else frame
