"""Argument parsing for each subcommand (forecast, backtest, compare, dashboard).

The work itself lives in tsattn.inference and tsattn.reporting.
"""
