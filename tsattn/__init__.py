"""tsattn: classic sequence models for time series forecasting, trained by config and tracked in MLflow.

import tsattn
run = tsattn.fit("sales.csv", model="transformer", overrides=["seed=1"])   # or a DataFrame
model = tsattn.load("path/to/bundle")   # or runs:/<run id>, models:/<name>/<version>, or run.model
model.forecast(history_frame)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tsattn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "fit", "load"]


def __getattr__(name: str):
    # Lazy: `import tsattn` (the CLI's first import) stays free of torch until a model is loaded.
    if name == "load":
        from tsattn.inference.api import load

        return load
    if name == "fit":
        from tsattn.training.fit import fit

        return fit
    raise AttributeError(f"module 'tsattn' has no attribute {name!r}")
