"""A plain (non-editable) install finds conf/ and the bundled dataset inside the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_wheel_ships_configs_and_dataset_and_finds_them(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tsattn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "tsattn/conf/train.yaml",
        "tsattn/conf/model/lstm_seq2seq.yaml",
        "tsattn/bundled/weather_temps.csv",
        "tsattn/bundled/co2_weekly.csv",
        "tsattn/conf/hparams_search/transformer_optuna.yaml",
        "hydra_plugins/tsattn_optuna_sweeper/sweeper.py",
        "tsattn/dashboards/template.html",
        "tsattn/dashboards/dashboard.js",
    } <= names
    assert "hydra_plugins/__init__.py" not in names  # a namespace package, shared with other Hydra plugins

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "from tsattn.resources import config_dir, bundled_dataset; "
        "print(config_dir()); print(bundled_dataset('weather_temps.csv'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(site / "tsattn" / "conf"), str(site / "tsattn" / "bundled" / "weather_temps.csv")]
