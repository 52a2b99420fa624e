"""The Python entry point to a trained model: `tsattn.load(model)` -> forecast and backtest on DataFrames.

    import tsattn
    model = tsattn.load("runs:/<run id>", tracking_uri="sqlite:///logs/mlflow/mlflow.db")
    future = model.forecast(history)            # history: the training file's columns, any number of series
    # a model trained with data.future_covariates also takes future=<their values after each series' end>
    result = model.backtest(history, step=24)   # result.rows, result.metrics

The same validation, windows and forward pass as `tsattn forecast` and `tsattn backtest`; nothing here
imports Lightning or Hydra. Mistakes in the input raise tsattn.errors.TsattnError with one clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tsattn.errors import TsattnError


@dataclass
class Model:
    """A loaded model bundle with forecast and backtest over DataFrames. Build it with tsattn.load."""

    bundle: Any  # tsattn.inference.bundle.Bundle

    @classmethod
    def from_directory(cls, directory: str | Path, device: str = "cpu") -> Model:
        from tsattn.inference.bundle import load_bundle

        return cls(load_bundle(directory, device=device))

    @property
    def lookback(self) -> int:
        return self.bundle.lookback

    @property
    def horizon(self) -> int:
        return self.bundle.horizon

    @property
    def schema(self) -> dict[str, Any]:
        """The bundle's schema: columns, layout, frequency, L, H, the series it was trained on."""
        return self.bundle.schema

    def forecast(
        self,
        history: pd.DataFrame,
        horizon: int | None = None,
        batch_size: int = 1024,
        future: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """The `horizon` steps (default: the trained horizon) after each series' last row, in real units.

        Args:
            history: the training file's layout: its time column (datetime or text), its id column for a
                long model, its targets and covariates; at least `lookback` rows per series.
            future: for a model trained with future covariates (required then, refused otherwise): the
                time column, the id column of a long model and each future covariate, one row for each of
                the trained horizon's steps after each series' last row.

        Returns:
            The same table `tsattn forecast` writes: id (long models), time, step, one column per target,
            and `<target>_q<level>` columns for quantile models.
        """
        from tsattn.inference.forecast import check_horizon, forecast, history_from_frame
        from tsattn.inference.future import future_from_frame, require_future_choice

        horizon = None if horizon is None else _whole(horizon, "horizon")
        if horizon is not None:
            check_horizon(self.bundle, horizon)
        require_future_choice(self.schema, future is not None, option="future=")
        collection = history_from_frame(self.bundle, _frame(history), name="history")
        if future is not None:  # a DataFrame: rows are named by position in messages
            future = future_from_frame(self.schema, collection, _frame(future, "future"), "future", lines=False)
        return forecast(self.bundle, collection, horizon, batch_size, future=future)

    def backtest(
        self,
        history: pd.DataFrame,
        step: int | None = None,
        start: str | pd.Timestamp | None = None,
        batch_size: int = 1024,
        season: int | None = None,
    ):
        """Rolling-origin evaluation beside last value and seasonal naive, as `tsattn backtest` runs it.

        Args:
            step: steps between origins (default: the horizon).
            season: the seasonal lag of MASE's in-sample scale (default: the model's season length).
            start: None (as `tsattn backtest --start auto`; "test" and "auto" mean the same) starts each series
                the model was trained on (by id) at its test border, since origins before it are in-sample,
                and every other series as early as its history allows; "earliest" every origin the history
                allows (`.in_sample` counts those before the border); or a time at or after which the first
                forecast step falls.

        Returns:
            tsattn.inference.backtest.Backtest: `.rows` (one per origin, step and target) and `.metrics`
            (forecaster -> overall and per-step MSE, MAE, sMAPE, MASE in real units), `.in_sample`.
        """
        from tsattn.inference.backtest import backtest, trained_series_starts
        from tsattn.inference.forecast import history_from_frame

        step = self.horizon if step is None else _whole(step, "step")
        collection = history_from_frame(self.bundle, _frame(history), name="history", fill="causal")
        if start == "earliest":
            starts = {}
        elif start is None or start in ("auto", "test"):
            starts = trained_series_starts(self.bundle, collection)
        else:
            try:
                when = pd.Timestamp(start)
            except (ValueError, TypeError):
                raise TsattnError(f"start={start!r}: give None, 'earliest' or a time") from None
            starts = {s.id: when for s in collection.series}
        mase_season = None if season is None else _whole(season, "season")
        return backtest(self.bundle, collection, step, batch_size, start=starts, mase_season=mase_season)


def load(model: str | Path, tracking_uri: str | None = None, device: str = "cpu") -> Model:
    """A trained model from a bundle directory, `runs:/<run id>[/path]` or `models:/<name>/<version|alias>`.

    Args:
        tracking_uri: the MLflow store runs:/ and models:/ resolve in (default: MLFLOW_TRACKING_URI, else
            ./logs/mlflow/mlflow.db).
        device: "cpu", "cuda" or "auto".
    """
    from tsattn.commands.common import choose_device
    from tsattn.inference.model_source import bundle_directory

    with bundle_directory(str(model), tracking_uri) as directory:
        return Model.from_directory(directory, device=choose_device(device))


def _frame(table: Any, name: str = "history") -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TsattnError(f"{name} must be a pandas DataFrame, not {type(table).__name__}")
    return table


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise TsattnError(f"{name}={value!r}: give a whole number of steps")
    return int(value)
