"""The `tsattn forecast` and `tsattn backtest` commands."""
