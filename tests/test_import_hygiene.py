"""What a fresh process imports: --help and a refused CSV never load torch or Lightning; training never
loads the dashboard. One real process for all three (each starts from an interpreter with nothing loaded)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import BAD_CSV_DIR, tsattn_env

PROBE = """
import contextlib, io, json, sys, time
from tsattn.cli import main

def heavy():
    return {name: name in sys.modules for name in ("torch", "lightning", "mlflow")}

report = {}
with contextlib.redirect_stdout(io.StringIO()):
    main(["--help"])
report["help"] = heavy()

err = io.StringIO()
started = time.perf_counter()
with contextlib.redirect_stderr(err):
    code = main(["train", "data=csv", "data.path=" + sys.argv[1], "data.lookback=4", "data.horizon=2",
                 "paths.log_dir=" + sys.argv[2]])
report["bad_csv"] = {"code": code, "stderr": err.getvalue(), "seconds": time.perf_counter() - started, **heavy()}

import tsattn.module, tsattn.train, tsattn.tracking.artifacts  # noqa: E401  (what training loads)
report["training_loads_dashboard"] = "tsattn.dashboard" in sys.modules
print(json.dumps(report))
"""


def test_help_and_a_bad_csv_never_import_torch_and_training_never_imports_the_dashboard(tmp_path):
    bad = BAD_CSV_DIR / "non_numeric.csv"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(bad), str(tmp_path / "logs")],
        capture_output=True,
        text=True,
        env=tsattn_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["help"] == {"torch": False, "lightning": False, "mlflow": False}
    refused = report["bad_csv"]
    assert refused["code"] == 2 and refused["stderr"].startswith("tsattn: error: ")
    assert "line 11: 'abc' in column 'value' is not a number" in refused["stderr"]
    assert not refused["torch"] and not refused["lightning"] and not refused["mlflow"], refused
    print(f"bad CSV refused in {refused['seconds']:.2f} s")  # shown with pytest -s; never asserted
    assert report["training_loads_dashboard"] is False
    assert not list(tmp_path.rglob("mlflow.db")) and not list(tmp_path.rglob("*.ckpt"))  # no run recorded


def test_the_console_script_answers(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tsattn", "--version"], capture_output=True, text=True, env=tsattn_env()
    )
    assert result.returncode == 0 and result.stdout.startswith("tsattn ")
