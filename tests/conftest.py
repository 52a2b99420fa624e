"""Shared fixtures: the real datasets and a way to run the real `tsattn` command."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def weather_path() -> Path:
    return WEATHER


def tsattn_env() -> dict[str, str]:
    """The caller's environment without MLflow and Hydra settings that would redirect a run."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}


def run_tsattn(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed CLI in a fresh process, isolated from the caller's MLflow settings."""
    return subprocess.run(
        [sys.executable, "-m", "tsattn", *args],
        cwd=cwd,
        env=tsattn_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
