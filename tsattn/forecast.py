"""Forecast the steps after the end of each series' history with a loaded bundle, in real units."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from tsattn.bundle import Bundle
from tsattn.data.calendar import calendar_features
from tsattn.data.io import series_from_frame
from tsattn.data.scaling import mean_and_std
from tsattn.data.series import Series, SeriesCollection
from tsattn.errors import TsattnError

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
    collection = series_from_frame(
        frame,
        name,
        default_id=schema["series"][0] if schema["layout"] == "wide" else "series",
        targets=schema["targets"],
        covariates=schema["covariates"],
        time_col=schema["time_col"],
        id_col=schema["id_col"],
        missing=schema["missing"],
        reject_constant=False,  # a flat stretch of recent history is a valid input
        fill=fill == "whole",
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
    values = pd.DataFrame(series.values).ffill().to_numpy(dtype=np.float32)
    first = int(np.flatnonzero(~np.isnan(values).any(axis=1))[0])  # an all-empty column is refused earlier
    return Series(id=series.id, time=series.time[first:], values=values[first:])


def forecast(
    bundle: Bundle,
    history: SeriesCollection,
    horizon: int | None = None,
    batch_size: int = 1024,
    on_batch: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The next `horizon` steps after every series' last timestamp.

    Args:
        bundle: a loaded model bundle.
        history: validated series with the bundle's columns (history_from_frame); each needs at least
            `lookback` rows.
        horizon: steps to forecast, at most the trained horizon; the trained horizon when None.
        batch_size: series per forward pass.
        on_batch: called with the number of series done after each batch (progress bars).

    Returns:
        One row per series and future timestamp: the id column (long layouts), time, step (1..horizon), a
        point forecast column per target and, for quantile models, `<target>_q<level>` columns. Values in
        the data's own units; column names from the training file.
    """
    schema = bundle.schema
    horizon = bundle.horizon if horizon is None else horizon
    check_horizon(bundle, horizon)
    lookback = bundle.lookback
    short = [s.id for s in history.series if len(s.time) < lookback]
    if short:
        raise TsattnError(
            f"{history.source}: {len(short)} series have fewer than the {lookback} rows of history the model "
            f"reads (first: {short[0]!r}); give each series at least {lookback} rows"
        )
    module = bundle.module
    device = next(module.parameters(), torch.empty(0)).device
    frames = []
    done = 0
    for start in range(0, len(history.series), batch_size):
        chunk = history.series[start : start + batch_size]
        stats = [statistics(bundle, s) for s in chunk]
        x, future_calendar, future_times = _windows(chunk, stats, schema, lookback)
        with torch.inference_mode():
            y_hat = module({"x": x.to(device), "future_calendar": future_calendar.to(device)})["y_hat"]
        y_hat = y_hat[:, :horizon].float().cpu().numpy()  # [B, H, C] or [B, H, C, Q]
        frames.append(_rows(chunk, stats, y_hat, future_times, schema, horizon))
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


def statistics(bundle: Bundle, series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Scaling statistics for a series: its training ones, else (a new series) its own history's."""
    known = known_statistics(bundle, series.id)
    return known if known is not None else mean_and_std(series.values)


def known_statistics(bundle: Bundle, series_id: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The statistics the model was trained with for this series; None for a series it never saw."""
    stats = bundle.scaler.stats
    if series_id in stats:
        chosen = stats[series_id]
    elif bundle.schema["layout"] == "wide" and len(stats) == 1:
        chosen = next(iter(stats.values()))  # one wide series: the file name may differ, the series does not
    else:
        return None
    return chosen["mean"], chosen["std"]


def _windows(chunk: list[Series], stats, schema, lookback: int):
    """The model's inputs for the window ending at each series' last row, built for the whole chunk at once.

    Shapes: x [B, L, F + K], future_calendar [B, H, K]; future_times: B x H timestamps.
    """
    names, horizon = schema["calendar"], int(schema["horizon"])
    freq = pd.tseries.frequencies.to_offset(schema["freq"])
    mean = np.stack([m for m, _ in stats])[:, None, :]  # [B, 1, F]
    std = np.stack([s for _, s in stats])[:, None, :]
    values = ((np.stack([s.values[-lookback:] for s in chunk]) - mean) / std).astype(np.float32)  # [B, L, F]
    past = np.stack([s.time[-lookback:].to_numpy() for s in chunk])  # [B, L] datetime64
    if isinstance(freq, pd.offsets.Tick):  # a fixed step: the future grid is arithmetic
        future = past[:, -1:] + np.arange(1, horizon + 1) * np.timedelta64(freq.nanos, "ns")  # [B, H]
    else:  # months, business days...: the calendar decides
        future = np.stack([pd.date_range(s.time[-1], periods=horizon + 1, freq=freq)[1:].to_numpy() for s in chunk])
    k = 2 * len(names)
    past_calendar = calendar_features(pd.DatetimeIndex(past.reshape(-1)), names).reshape(len(chunk), lookback, k)
    future_calendar = calendar_features(pd.DatetimeIndex(future.reshape(-1)), names).reshape(len(chunk), horizon, k)
    x = np.concatenate([values, past_calendar], axis=-1)
    return torch.from_numpy(x), torch.from_numpy(future_calendar), future


def _rows(chunk, stats, y_hat: np.ndarray, future_times, schema, horizon: int) -> pd.DataFrame:
    targets = schema["targets"]
    n_targets = len(targets)
    mean = np.stack([m[:n_targets] for m, _ in stats])[:, None, :]  # [B, 1, C]
    std = np.stack([s[:n_targets] for _, s in stats])[:, None, :]
    id_col, time_col = schema["id_col"] or "series", schema["time_col"] or "time"
    columns = {
        id_col: np.repeat([s.id for s in chunk], horizon),
        time_col: future_times[:, :horizon].reshape(-1),
        STEP_COLUMN: np.tile(np.arange(1, horizon + 1), len(chunk)),
    }
    quantiles = schema.get("quantiles")
    if quantiles:
        point = y_hat[..., _median_index(quantiles)]
        for qi, level in enumerate(quantiles):
            real = y_hat[..., qi] * std + mean
            for ci, target in enumerate(targets):
                columns[f"{target}_q{level:g}"] = real[..., ci].reshape(-1)
    else:
        point = y_hat
    real_point = point * std + mean  # [B, H, C]
    for ci, target in enumerate(targets):
        columns[target] = real_point[..., ci].reshape(-1)
    ordered = [id_col, time_col, STEP_COLUMN, *targets]
    frame = pd.DataFrame(columns)[ordered + [c for c in columns if c not in ordered]]
    # A wide file holds one series and has no id column: neither has its forecast.
    return frame.drop(columns=id_col) if schema["layout"] == "wide" else frame


def _median_index(quantiles) -> int:
    return int(np.argmin(np.abs(np.asarray(quantiles) - 0.5)))
