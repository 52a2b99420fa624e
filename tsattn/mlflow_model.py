"""The MLflow pyfunc flavour of a tsattn bundle.

Logged as a model from code: MLflow stores this file and the bundle, never a pickled Python object, so
`mlflow.pyfunc.load_model("runs:/<id>/model").predict(history)` and `mlflow models serve` run the same
forecasting code as `tsattn forecast`.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class TsattnForecaster(mlflow.pyfunc.PythonModel):
    """predict(history) -> forecasts: the history table in the training file's layout, in real units."""

    def load_context(self, context) -> None:
        from tsattn.bundle import load_bundle

        self.bundle = load_bundle(context.artifacts["bundle"])

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from tsattn.forecast import forecast, history_from_frame

        horizon = (params or {}).get("horizon")
        return forecast(self.bundle, history_from_frame(self.bundle, model_input), horizon=horizon)


set_model(TsattnForecaster())
