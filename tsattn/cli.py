"""The `tsattn` command. Heavy libraries are imported inside the subcommands, so `tsattn --help` is instant."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence

from tsattn import __version__
from tsattn.errors import Interrupted, TsattnError, one_line

USAGE = """usage: tsattn [-h] [--version] {train,forecast,backtest,score,ensemble,compare,dashboard} ...

Forecast time series with LSTM seq2seq, attention seq2seq and Transformer models.

commands:
  train    train and test a model from the Hydra config in conf/; arguments are Hydra overrides:
             tsattn train                                  # LSTM seq2seq on the bundled CO2 data
             tsattn train data=csv data.path=sales.csv data.targets=[sales] model.net.hidden_size=128
             tsattn train -m seed=0,1,2                    # a sweep
             tsattn train --cfg job                        # print the composed config
           `tsattn train --help` lists every config group.
  forecast MODEL INPUT.csv -o OUT.csv
           forecast the steps after each series' last timestamp; MODEL is a bundle directory,
           runs:/<run id> or models:/<name>/<version>
  backtest MODEL INPUT.csv -o OUT.csv [--step N] [--start auto|earliest|TIME]
           rolling-origin evaluation over INPUT, beside the last-value and seasonal-naive baselines
  score    FORECAST.csv ACTUALS.csv [-o PER_SERIES.csv] [--season m]
           sMAPE, MASE and OWA against Naive2 (the M4 competition's definitions), MSE, MAE, CRPS and
           coverage of a forecast, per series and overall, beside Naive2, the last value and seasonal naive
  ensemble MEMBER... -o DIR [--combine mean|median] | --experiment NAME [--top K] -o DIR
           several models of the same data as one ensemble bundle, which every command takes as a model
  compare  --experiment NAME [--metric test/mse] [--group-by model,data] [--format table|csv|markdown|json]
           leaderboard of an MLflow experiment: mean and std over seeds, baseline and skill
  dashboard --experiment NAME -o report.html
           one self-contained HTML page: leaderboard, learning curves, error by horizon step,
           forecasts, attention heatmaps, configuration differences
"""

EXIT_USER_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else EXIT_USER_ERROR
    if argv[0] == "--version":
        print(f"tsattn {__version__}")
        return 0
    commands = {
        "train": _train,
        "forecast": _forecast,
        "backtest": _backtest,
        "score": _score,
        "ensemble": _ensemble,
        "compare": _compare,
        "dashboard": _dashboard,
    }
    if argv[0] not in commands and os.environ.get("LOCAL_RANK", "0") != "0":
        # A DDP rank that Lightning's ddp strategy started by re-running this program with the Hydra
        # overrides alone: it is a `tsattn train` job.
        argv = ["train", *argv]
    command, rest = argv[0], argv[1:]
    # MLflow draws a progress bar for every artifact copy or download; in tsattn's output it is noise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Likewise its information lines (database set-up, signature checks); its warnings still show.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    if command not in commands:
        print(f"tsattn: error: unknown command {command!r}; choose from: {', '.join(commands)}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        # `train` takes SIGTERM at safe points of its own (tsattn.training.train): an interrupt raised in the middle
        # of an MLflow write could leave the store locked for the KILLED status that follows.
        with sigterm_as_interrupt() if command != "train" else contextlib.nullcontext():
            code = commands[command](rest)
    except TsattnError as err:
        _report(err)
        return err.exit_code
    except KeyboardInterrupt:
        # Outputs are written to a temporary file and renamed at the very end: an interrupt leaves none.
        _report(Interrupted("interrupted; nothing written"))
        return Interrupted.exit_code
    return code or 0


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler or `kill`) ends a command the way Ctrl-C does, with the same clean-up."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _forecast(arguments: list[str]) -> None:
    from tsattn.commands.forecast import main as forecast_main

    forecast_main(arguments)


def _backtest(arguments: list[str]) -> None:
    from tsattn.commands.backtest import main as backtest_main

    backtest_main(arguments)


def _score(arguments: list[str]) -> None:
    from tsattn.commands.score import main as score_main

    score_main(arguments)


def _ensemble(arguments: list[str]) -> None:
    from tsattn.commands.ensemble import main as ensemble_main

    ensemble_main(arguments)


def _compare(arguments: list[str]) -> None:
    from tsattn.commands.compare import main as compare_main

    compare_main(arguments)


def _dashboard(arguments: list[str]) -> None:
    from tsattn.commands.dashboard import main as dashboard_main

    dashboard_main(arguments)


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _report(err: TsattnError) -> None:
    print(f"tsattn: error: {err}", file=sys.stderr)


def check_ensemble_override(overrides: Sequence[str]) -> None:
    """A sweep's `+ensemble=` is acted on when the sweep ends (Hydra turns errors there into warnings): a wrong
    rule is one line before any job runs."""
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key == "ensemble" and value not in ("mean", "median"):
            raise TsattnError(f"{override}: choose +ensemble=mean or +ensemble=median (the sweep's runs combined)")


def _train(overrides: list[str]) -> int:
    """Hand the arguments to a Hydra app, so overrides, -m, --cfg and tab completion all work."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from tsattn.config import register_resolvers
    from tsattn.resources import config_dir
    from tsattn.training.train import train

    register_resolvers()
    check_ensemble_override(overrides)
    # Raised inside Lightning on every loop with torch >= 2.13; it says nothing a tsattn user can act on.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Lightning's advice for epochs of fewer batches than log_every_n_steps: epoch metrics are logged anyway.
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")

    @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
    def app(cfg) -> dict[str, float]:
        try:
            return train(cfg)  # the metrics are the job's return value: sweepers read their objective there
        except TsattnError as err:
            # Reported here, inside the job: Hydra would otherwise add lines of its own to a failed job.
            _report(err)
            if _in_sweep() and not isinstance(err, Interrupted):
                raise  # the sweep's other jobs go on; the sweep fails at the end (an Optuna search goes on)
            raise SystemExit(err.exit_code) from None  # an interrupt stops a sweep too

    # Without this Hydra prints a trimmed traceback for config errors and exits 1; with it the exception
    # reaches us, and a mistyped override becomes one line and exit code 2.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    # Hydra parses sys.argv; the help text names the command through hydra.help.app_name.
    argv, sys.argv = sys.argv, [sys.argv[0], *overrides]
    hydra_config = HydraConfig.instance().cfg
    try:
        app()
    except SystemExit as done:
        # The job has reported its error itself (see app) and asked for this exit code; returning it,
        # rather than exiting, lets tsattn.cli.main run in-process (tests, notebooks) as well.
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    except (HydraException, OmegaConfBaseException) as err:
        # Config mistakes: unknown group option, bad override syntax, missing mandatory value.
        raise TsattnError(one_line(err) + _quoting_hint(overrides, err)) from None
    finally:
        # The caller's own, for a notebook or a test that goes on after an in-process run: its arguments, and
        # Hydra's global config (a sweep leaves it in MULTIRUN mode, which later training would read).
        sys.argv = argv
        HydraConfig.instance().cfg = hydra_config
    return 0


def _quoting_hint(overrides: list[str], err: Exception) -> str:
    """How to quote an override whose value holds characters Hydra's grammar only takes inside quotes."""
    if "Lexer" not in type(err).__name__ and "Lexer" not in str(err):
        return ""
    for override in overrides:
        key, _, value = override.partition("=")
        if value and not value.isascii():
            if value.startswith("[") and value.endswith("]"):
                quoted = "[" + ",".join(f'"{v.strip()}"' for v in value[1:-1].split(",")) + "]"
            else:
                quoted = f'"{value}"'
            return (
                f"; {key} holds characters Hydra reads only inside quotes: write '{key}={quoted}' "
                "(the outer single quotes keep the shell from removing the inner ones)"
            )
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
