"""Shared fixtures: the real datasets and a way to run the real `tsattn` command."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WEATHER = REPO / "data" / "weather_temps.csv"
BAD_CSV_DIR = Path(__file__).resolve().parent / "data" / "bad"


@pytest.fixture(scope="session")
def etth1_path() -> Path:
    """ETTh1 from ../shared (or $TSATTN_ETTH1). Skips where it is absent, but fails under CI=true."""
    path = Path(os.environ.get("TSATTN_ETTH1", REPO.parent / "shared" / "data" / "ett" / "ETTh1.csv"))
    if not path.is_file():
        reason = f"ETTh1 not found at {path}; set TSATTN_ETTH1 to run the ETTh1 tests"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def m4_hourly_path() -> Path:
    """The M4 hourly directory from ../shared (or $TSATTN_M4). Skips where absent, but fails under CI=true."""
    path = Path(os.environ.get("TSATTN_M4", REPO.parent / "shared" / "data" / "m4"))
    if not (path / "Hourly-train.csv").is_file() or not (path / "Hourly-test.csv").is_file():
        reason = f"M4 hourly not found in {path}; set TSATTN_M4 to the folder of Hourly-train.csv and Hourly-test.csv"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def weather_path() -> Path:
    return WEATHER


@pytest.fixture(scope="session")
def weather_temperature(weather_path):
    """The bundled weather data's temperature per city, L=48, H=12, set up: windows for direct module tests."""
    from tsattn.data.datamodule import ForecastDataModule

    datamodule = ForecastDataModule(
        str(weather_path), targets=["temperature"], id_col="city", missing="interpolate", lookback=48, horizon=12
    )
    datamodule.setup()
    return datamodule


@pytest.fixture(scope="session")
def ett_long_path(etth1_path, tmp_path_factory) -> Path:
    """ETTh1's first 4,000 hours as two series of a long file (id, date, the 7 columns): a real long table
    with columns to give as future covariates (the loads), for tests of --future and of parity; and two
    static columns, a site (a level) and a capacity (a number) per series."""
    import pandas as pd

    frame = pd.read_csv(etth1_path, nrows=4000)
    frame.insert(0, "id", ["first"] * 2000 + ["second"] * 2000)
    frame["site"] = ["north"] * 2000 + ["south"] * 2000
    frame["capacity"] = [40.0] * 2000 + [25.0] * 2000
    path = tmp_path_factory.mktemp("ett_long") / "ett_long.csv"
    frame.to_csv(path, index=False)
    return path


def tsattn_env(threads: str | None = "inherit") -> dict[str, str]:
    """The caller's environment without MLflow and Hydra settings that would redirect a run.

    Args:
        threads: OMP_NUM_THREADS for the child: "inherit" keeps the caller's (one thread per test worker
            under xdist, see pytest_configure), None removes it so the child decides for itself.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
    if threads is None:
        env.pop("OMP_NUM_THREADS", None)
    return env


def run_tsattn(args: list[str], cwd: Path, timeout: float = 300, env=None) -> subprocess.CompletedProcess:
    """Run the installed CLI in a fresh process, isolated from the caller's MLflow settings."""
    return subprocess.run(
        [sys.executable, "-m", "tsattn", *args],
        cwd=cwd,
        env=env or tsattn_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """Each test starts with the root logger it had before: `tsattn train` run in-process configures logging
    the Hydra way, with handlers bound to that test's captured output, which is closed after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _mlflow_tracking_uri_restored():
    """Each test starts with the caller's MLflow tracking URI: code under test may set it process-wide."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if os.environ.get("MLFLOW_TRACKING_URI") != before:
        import mlflow

        mlflow.set_tracking_uri(before)


# Under `make test` (pytest-xdist, --dist loadfile) each test module runs on one worker, so its shared
# fixtures are built once. The longest modules (measured) start first, so both workers finish together.
LONGEST_FIRST = (
    "test_faults",
    "test_sweeps",
    "test_benchmarks",
    "test_configs",
    "test_reporting",
    "test_spark",
    "test_models",
    "test_fit",
    "test_module",
    "test_train_e2e",
    "test_import_hygiene",
    "test_forecast_cli",
    "test_bad_csv",
    "test_parity",
    "test_run_modes",
    "test_backtest",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        module = item.module.__name__.rpartition(".")[2]
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: file order within a rank


def pytest_configure(config):
    """Import torch and Lightning before any test captures output, and give each xdist worker one thread.

    torch and Lightning give their loggers a stream handler on sys.stderr when first imported: imported
    inside a test that captures stderr, the handler keeps that test's capture, closed once it ends, and a
    later warning fails with "--- Logging error ---". Under pytest-xdist each worker gets one core's worth of
    threads, and so do the processes it starts: two workers with two torch threads each on two cores would
    spin against each other.
    """
    import lightning.pytorch  # noqa: F401
    import torch

    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


# Enough to build and run a model in seconds; tests add their own data and model settings.
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def build_bundle(directory: Path, *overrides: str, fit: bool = True):
    """A model trained in this process (no MLflow, no checkpoints) and saved as a bundle.

    Returns:
        (bundle directory, the tsattn.training.train.Training that built it)
    """
    from tsattn.config import compose
    from tsattn.inference.bundle import save_bundle
    from tsattn.training.train import Training

    # The two-city weather data (long layout, hourly), which tests of ids, calendars and many series build
    # on, unless the overrides choose data (or an experiment, which does).
    chooses_data = any(o.startswith(("data=", "experiment=")) for o in overrides)
    settings = [] if chooses_data else ["data=weather"]
    settings += ["logger=none", "callbacks=none", "test=false", f"train={str(fit).lower()}", *QUIET]
    settings += ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1"]
    run = Training(compose([*settings, *overrides, f"paths.log_dir={directory / 'logs'}"]), track=False)
    run.run()
    name = run.model_name
    return save_bundle(directory / "bundle", run.model, run.datamodule, run.cfg, name, run.net_options), run
