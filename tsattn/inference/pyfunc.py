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
    """predict(history, params={"horizon": h}) -> forecasts: the history table in the training file's
    layout (time as datetime or ISO text), forecasts in real units, h steps (default: the trained horizon)."""

    def load_context(self, context) -> None:
        from tsattn.inference.api import Model

        self.model = Model.from_directory(context.artifacts["bundle"])

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.model.forecast(model_input, horizon=(params or {}).get("horizon"))


set_model(TsattnForecaster())
