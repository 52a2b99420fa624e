"""Forecast the steps after the end of each series' history with a loaded bundle, in real units."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from tsattn.data.io import series_from_frame
from tsattn.data.series import Series, SeriesCollection
from tsattn.data.static import StaticEncoder
from tsattn.errors import TsattnError
from tsattn.inference.bundle import Bundle, static_columns
from tsattn.inference.windows import Windows, WindowSpec, last_windows, predict
from tsattn.intervals import point_level

STEP_COLUMN = "step"


def history_from_frame(
    bundle: Bundle, frame: pd.DataFrame, name: str = "input", fill: str = "whole"
) -> SeriesCollection:
    """Validate a user's history table against the bundle's schema: same columns, same frequency.

    Args:
        fill: gaps (where the model's data.missing allows filling) are filled by that policy from the
            "whole" history, which ends where the forecast starts; or "causal"ly, carrying the last value
            forward only and leaving out the rows before every column has a value, so that no row takes a
            value from a later one (a backtest forecasts from origins inside the history).
    """
    if fill not in ("whole", "causal"):
        raise ValueError(f"fill={fill!r}: whole or causal")
    schema = bundle.schema
    static = StaticEncoder.restore(schema["static"])  # read a history's static cells as training did
    collection = series_from_frame(
        frame,
        name,
        default_id=schema["series"][0] if schema["layout"] == "wide" else "series",
        targets=schema["targets"],
        covariates=schema["covariates"],
        future_covariates=schema["future_covariates"],
        static_covariates=static_columns(schema),
        static_kinds=static.kinds if static is not None else None,
        time_col=schema["time_col"],
        time_format=schema["time_format"],  # the history is written as the training file was
        id_col=schema["id_col"],
        missing=schema["missing"],
        reject_constant=False,  # a flat stretch of recent history is a valid input
        fill=fill == "whole",
        trained=True,  # data.missing and data.time_format are the trained model's, not settings of this command
    )
    if fill == "causal":
        collection = dataclasses.replace(collection, series=[_carried_forward(s) for s in collection.series])
    if collection.freq.freqstr != schema["freq"]:
        raise TsattnError(
            f"{name} is sampled every {collection.freq.freqstr} but the model was trained on {schema['freq']} "
            "data; resample the input to the model's frequency"
        )
    return collection


def _carried_forward(series: Series) -> Series:
    """Gaps filled with the last value before them; the leading rows with nothing before them left out."""
    if not np.isnan(series.values).any():
        return series
    values = pd.DataFrame(series.values).ffill().to_numpy(dtype=np.float64)
    first = int(np.flatnonzero(~np.isnan(values).any(axis=1))[0])  # an all-empty column is refused earlier
    return Series(id=series.id, time=series.time[first:], values=values[first:])


def forecast(
    bundle: Bundle,
    history: SeriesCollection,
    horizon: int | None = None,
    batch_size: int = 1024,
    on_batch: Callable[[int], None] | None = None,
    future: np.ndarray | None = None,
) -> pd.DataFrame:
    """The next `horizon` steps after every series' last timestamp.

    Args:
        bundle: a loaded model bundle.
        history: validated series with the bundle's columns (history_from_frame); each needs at least
            `lookback` rows.
        horizon: steps to forecast, at most the trained horizon; the trained horizon when None.
        batch_size: series per forward pass.
        on_batch: called with the number of series done after each batch (progress bars).
        future: a model with future covariates: their values over the trained horizon after each series'
            end, real units, in the order of history.series (tsattn.inference.future.future_from_frame).
            Shape: [S, H, U].

    Returns:
        One row per series and future timestamp: the id column (long layouts), time, step (1..horizon), a
        point forecast column per target and, for quantile models, `<target>_q<level>` columns. Values in
        the data's own units; column names from the training file.
    """
    horizon = bundle.horizon if horizon is None else horizon
    check_horizon(bundle, horizon)
    lookback = bundle.lookback
    short = [s.id for s in history.series if len(s.time) < lookback]
    if short:
        raise TsattnError(
            f"{history.source}: {len(short)} series have fewer than the {lookback} rows of history the model "
            f"reads (first: {short[0]!r}); give each series at least {lookback} rows"
        )
    spec = WindowSpec.of(bundle)
    if spec.n_future and (future is None or future.shape != (len(history.series), bundle.horizon, spec.n_future)):
        raise ValueError("forecast: a model with future covariates needs their values ([S, H, U]) for every series")
    frames, done = [], 0
    for start in range(0, len(history.series), batch_size):
        chunk = history.series[start : start + batch_size]
        ahead = None if future is None else future[start : start + batch_size]  # [B, H, U]
        static = spec.static_codes(history.static, [s.id for s in chunk])  # [B, E] or None
        windows = last_windows(spec, chunk, ahead, static)
        y_hat = predict(bundle.forecaster, windows, batch_size)  # [B, H, C(, Q)], scaled
        frames.append(forecast_rows(bundle, [s.id for s in chunk], windows, y_hat, horizon))
        done += len(chunk)
        if on_batch is not None:
            on_batch(done)
    return pd.concat(frames, ignore_index=True)


def check_horizon(bundle: Bundle, horizon: int) -> None:
    """Refuse a horizon the model was not trained for (longer), or an empty one."""
    if not 1 <= horizon <= bundle.horizon:
        raise TsattnError(
            f"--horizon {horizon}: this model forecasts 1 to {bundle.horizon} steps; "
            "train one with a longer data.horizon for more"
        )


def forecast_rows(bundle: Bundle, ids: list[str], windows: Windows, y_hat: np.ndarray, horizon: int) -> pd.DataFrame:
    """The output table of one batch: scaled network outputs [B, H, C(, Q)] to rows in real units."""
    schema = bundle.schema
    targets = schema["targets"]
    real = windows.to_real(y_hat)[:, :horizon]  # [B, h, C(, Q)]
    require_finite(real, ids)
    id_col, time_col = schema["id_col"] or "series", schema["time_col"] or "time"
    columns = {
        id_col: np.repeat(ids, horizon),
        time_col: windows.future_times[:, :horizon].reshape(-1),
        STEP_COLUMN: np.tile(np.arange(1, horizon + 1), len(ids)),
    }
    quantiles = schema.get("quantiles")
    if quantiles:
        point = real[..., point_level(quantiles)]
        for qi, level in enumerate(quantiles):
            for ci, target in enumerate(targets):
                columns[f"{target}_q{level:g}"] = real[..., ci, qi].reshape(-1)
    else:
        point = real
    for ci, target in enumerate(targets):
        columns[target] = point[..., ci].reshape(-1)
    ordered = [id_col, time_col, STEP_COLUMN, *targets]
    frame = pd.DataFrame(columns)[ordered + [c for c in columns if c not in ordered]]
    # A wide file holds one series and has no id column: neither has its forecast.
    return frame.drop(columns=id_col) if schema["layout"] == "wide" else frame


def require_finite(forecasts: np.ndarray, ids: list[str]) -> None:
    """Refuse forecasts that are NaN or infinite, naming the first such series: nothing non-finite is written.

    Shape: forecasts [B, ...] (real units), ids [B].
    """
    finite = np.isfinite(forecasts.reshape(len(ids), -1)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise TsattnError(
            f"the forecast of series {ids[bad[0]]!r} is not a finite number ({len(bad)} series in all): its "
            "history holds values too large for the model's float32 arithmetic (or the model is broken); "
            "check that series' rows, or leave it out"
        )

