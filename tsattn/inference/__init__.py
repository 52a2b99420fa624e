"""Inference: model bundles and where they come from, the forecast and backtest paths, the pyfunc model.

Nothing here imports Lightning or Hydra: a forecast needs torch, pandas and the bundle only.
"""
