"""Inference windows: the one place where a history becomes model inputs, and forecasts go back to real units.

`tsattn forecast` (the window ending at each series' last row), `tsattn backtest` (windows ending before
many origins of a series), the test-forecast artifact of a training run, the Python API and the Spark
engine all build their inputs here. Training's WindowDataset builds the same windows from the same scaler;
tests/test_parity.py holds the two equal.

Scaling: a series the model was trained on uses its training statistics; a series it never saw uses the
statistics of its own rows before each origin, never a row after it.

Future covariates are the last U value columns. Over the lookback they come from the history; over the
horizon from the caller (`tsattn forecast --future`) or, for origins inside a history, from the rows after
the origin (they are known ahead by definition). Scaled like the other columns, they close the known
channels: inputs [values (C + P), calendar, static code, future covariates], and the horizon's [calendar,
static code, future covariates], the static code (tsattn.data.static) the same at every step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from tsattn.data.calendar import calendar_features
from tsattn.data.scaling import expanding_mean_and_std, mean_and_std
from tsattn.data.series import Series
from tsattn.data.static import StaticEncoder
from tsattn.data.windows import known_channels

Statistics = tuple[np.ndarray, np.ndarray]  # mean [F], std [F]


@dataclass(frozen=True)
class WindowSpec:
    """What building a window needs to know about the model.

    Args:
        lookback, horizon: L and H.
        calendar: the calendar feature names, in the model's order.
        freq: the data's frequency (the future grid continues it).
        stats: training statistics by series id.
        single_series: the model was trained on one wide series: its statistics serve the one series of
            any wide input, whatever the file is called.
        n_future: U, the future covariates: the last U value columns.
        static: the static covariates' encoder, None without them.
    """

    lookback: int
    horizon: int
    calendar: Sequence[str]
    freq: pd.DateOffset
    stats: Mapping[str, Statistics]
    single_series: bool = False
    n_future: int = 0
    static: StaticEncoder | None = None

    @classmethod
    def of(cls, bundle) -> WindowSpec:
        schema = bundle.schema
        stats = training_statistics(bundle.scaler)
        return cls(
            lookback=bundle.lookback,
            horizon=bundle.horizon,
            calendar=list(schema["calendar"]),
            freq=pd.tseries.frequencies.to_offset(schema["freq"]),
            stats=stats,
            single_series=schema["layout"] == "wide" and len(stats) == 1,
            n_future=len(schema["future_covariates"]),
            static=StaticEncoder.restore(schema.get("static")),
        )

    def static_codes(self, static: Mapping[str, Mapping[str, float | str]], ids: Sequence[str]) -> np.ndarray | None:
        """The static code of each of `ids` from a history's static values ([S, E]); None without static covariates."""
        return None if self.static is None else self.static.encode_all(static, ids)

    def static_code(self, static: Mapping[str, Mapping[str, float | str]], series_id: str) -> np.ndarray | None:
        """One series' static code ([E], for origin_windows); None without static covariates."""
        return None if self.static is None else self.static.encode(static[series_id])

    def known(self, series_id: str) -> Statistics | None:
        """The statistics the model was trained with for this series; None for a series it never saw."""
        if series_id in self.stats:
            return self.stats[series_id]
        if self.single_series:
            return next(iter(self.stats.values()))
        return None


def training_statistics(scaler) -> Mapping[str, Statistics]:
    """A fitted StandardScaler's per-series statistics: series id -> (mean [F], std [F]), views into its
    arrays (a million series add no per-series objects)."""
    return scaler.pairs


@dataclass
class Windows:
    """Model inputs for N windows and what maps their forecasts back to real units."""

    x: np.ndarray  # [N, L, C + P + K] float32: scaled values, then known channels (calendar, static, future)
    known_future: np.ndarray  # [N, H, K] float32: the known channels of the horizon
    future_times: np.ndarray  # [N, H] datetime64: the times the forecast steps fall on
    mean: np.ndarray  # [N, F] float64
    std: np.ndarray  # [N, F] float64

    def __len__(self) -> int:
        return len(self.x)

    def to_real(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled forecasts back to the data's units. Shape: [N, H, C] or [N, H, C, Q] -> the same."""
        n_targets = scaled.shape[2]
        mean, std = self.mean[:, None, :n_targets], self.std[:, None, :n_targets]  # [N, 1, C]
        if scaled.ndim == 4:
            mean, std = mean[..., None], std[..., None]
        return scaled.astype(np.float64) * std + mean


def last_windows(
    spec: WindowSpec, chunk: Sequence[Series], future: np.ndarray | None = None, static: np.ndarray | None = None
) -> Windows:
    """The window ending at each series' last row, for forecasting the steps after it.

    Every series needs at least L rows; the caller checks (and names the short ones).

    Args:
        future: the future covariates of the H steps after each series' end, real units [B, H, U]; required
            when the model has any (spec.n_future), None otherwise.
        static: each series' static code [B, E] (WindowSpec.static_codes); required with static covariates.
    """
    lookback = spec.lookback
    values = np.stack([s.values[-lookback:] for s in chunk])  # [B, L, F]
    past_times = np.stack([s.time[-lookback:].to_numpy() for s in chunk])  # [B, L]
    stats = [spec.known(s.id) or mean_and_std(s.values) for s in chunk]
    mean, std = np.stack([m for m, _ in stats]), np.stack([s for _, s in stats])  # [B, F] each
    return tail_windows(spec, values, past_times, mean, std, future, static)


def tail_windows(
    spec: WindowSpec,
    values: np.ndarray,
    past_times: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    future: np.ndarray | None = None,
    static: np.ndarray | None = None,
) -> Windows:
    """Windows from the last L rows of B series, already gathered (the streaming reader gathers them itself).

    Shapes: values [B, L, F] real units, past_times [B, L] datetime64, mean and std [B, F], future [B, H, U]
    real units and static [B, E] (see last_windows).
    """
    lookback, horizon = spec.lookback, spec.horizon
    future_times = future_grid(past_times[:, -1], spec.freq, horizon)  # [B, H]
    times = np.concatenate([past_times, future_times], axis=1)  # [B, L + H]
    # Series of one file mostly share their timestamps: the calendar of each distinct time, computed once.
    distinct, where = np.unique(times.reshape(-1), return_inverse=True)
    calendar = calendar_features(pd.DatetimeIndex(distinct), spec.calendar)[where]
    calendar = calendar.reshape(len(values), lookback + horizon, -1)  # [B, L + H, K]
    return _assemble(spec, values, future, mean, std, calendar, future_times, static)


def origin_windows(spec: WindowSpec, series: Series, origins: np.ndarray, static: np.ndarray | None = None) -> Windows:
    """The windows of one series that forecast from each origin: rows [o - L, o) in, rows [o, o + H) out.

    An origin may be len(series), the step after the last row: its forecast steps lie on the future grid
    (not for a model with future covariates: their values after the last row are not in the series).
    Each origin needs at least L rows before it. `static` is the series' static code [E], with static covariates.
    """
    lookback, horizon = spec.lookback, spec.horizon
    values = series.values
    known = spec.known(series.id)
    if known is not None:
        mean, std = (np.broadcast_to(s, (len(origins), s.shape[-1])) for s in known)  # [N, F]
    else:
        mean, std = expanding_mean_and_std(values, origins)  # each origin: its rows before it only
    beyond = max(int(origins.max()) + horizon - len(series.time), 0)  # future steps past the last row
    if beyond and spec.n_future:
        raise ValueError("origin_windows: a model with future covariates forecasts from origins inside the series")
    times = series.time.to_numpy()
    if beyond:
        times = np.concatenate([times, future_grid(times[-1:], spec.freq, beyond)[0]])
    first = int(origins.min()) - lookback  # the calendar of the rows any window touches, computed once
    calendar = calendar_features(pd.DatetimeIndex(times[first:]), spec.calendar)  # [T', K]
    rows = origins[:, None] + np.arange(-lookback, horizon)  # [N, L + H]
    # The future covariates after each origin are rows of the series itself: known ahead, observed here.
    future = values[rows[:, lookback:], values.shape[1] - spec.n_future :] if spec.n_future else None  # [N, H, U]
    past = values[rows[:, :lookback]]  # [N, L, F]
    codes = None if static is None else np.broadcast_to(static, (len(origins), len(static)))  # [N, E]
    return _assemble(spec, past, future, mean, std, calendar[rows - first], times[rows[:, lookback:]], codes)


def _assemble(spec: WindowSpec, values, future, mean, std, calendar, future_times, static=None) -> Windows:
    """Scale and lay out the model's inputs: known channels are [calendar, static code, future covariates].

    Shapes: values [N, L, F] and future [N, H, U] (or None when U = 0), real units; mean/std [N, F];
    calendar [N, L + H, K']; future_times [N, H]; static [N, E] (or None without static covariates).
    """
    lookback, n_future = spec.lookback, spec.n_future
    observed = values.shape[-1] - n_future  # C + P
    if spec.static is not None and (static is None or static.shape != (len(values), spec.static.width)):
        raise ValueError(f"the model reads a static code of {spec.static.width} channels per window")
    known_ahead = None
    if n_future:
        if future is None or future.shape != (len(values), spec.horizon, n_future):
            raise ValueError(f"the model reads {n_future} future covariates over {spec.horizon} steps per window")
        # [N, L, U] ++ [N, H, U] -> [N, L + H, U], scaled with the same statistics as the history
        known_ahead = np.concatenate([values[..., observed:], future], axis=1)
        known_ahead = ((known_ahead - mean[:, None, observed:]) / std[:, None, observed:]).astype(np.float32)
    known = known_channels(calendar, static if spec.static is not None else None, known_ahead)  # [N, L + H, K]
    scaled = ((values[..., :observed] - mean[:, None, :observed]) / std[:, None, :observed]).astype(np.float32)
    x = np.concatenate([scaled, known[:, :lookback]], axis=-1)  # [N, L, C + P + K]
    return Windows(x, np.ascontiguousarray(known[:, lookback:]), future_times, mean, std)


def future_grid(last: np.ndarray, freq: pd.DateOffset, steps: int) -> np.ndarray:
    """The `steps` stamps after each of `last` on the data's grid. Shape: [N] -> [N, steps] datetime64."""
    if isinstance(freq, pd.offsets.Tick | pd.offsets.Day):  # a fixed step on naive times: arithmetic
        return last[:, None] + np.arange(1, steps + 1) * np.timedelta64(int(pd.Timedelta(freq).value), "ns")
    # months, business days...: the calendar decides
    return np.stack([pd.date_range(t, periods=steps + 1, freq=freq)[1:].to_numpy() for t in last])


def predict(
    forecaster: torch.nn.Module,
    windows: Windows,
    batch_size: int = 1024,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The forecaster's output for every window, scaled. Shape: -> [N, H, C] or [N, H, C, Q] float32."""
    device = next(forecaster.parameters(), torch.empty(0)).device
    outputs = []
    for begin in range(0, len(windows), batch_size):
        batch = {
            "x": torch.from_numpy(windows.x[begin : begin + batch_size]).to(device),
            "known_future": torch.from_numpy(windows.known_future[begin : begin + batch_size]).to(device),
        }
        with torch.inference_mode():
            outputs.append(forecaster(batch)["y_hat"].float().cpu().numpy())
        if on_batch is not None:
            on_batch(min(begin + batch_size, len(windows)))
    return np.concatenate(outputs)
