"""tsattn: classic sequence models for time series forecasting, trained by config and tracked in MLflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tsattn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
