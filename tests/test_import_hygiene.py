"""What a fresh process imports: --help and a refused CSV never load torch or Lightning; training never
loads the dashboard (one process, in that order); forecast, backtest and tsattn.load never load Lightning,
Hydra, OmegaConf or MLflow (a second process, which has loaded nothing before them)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import BAD_CSV_DIR, build_bundle, tsattn_env

PROBE = """
import contextlib, io, json, sys, time
from tsattn.cli import main
argv = list(sys.argv)  # train hands its own arguments to Hydra through sys.argv

def heavy():
    return {name: name in sys.modules for name in ("torch", "lightning", "mlflow")}

report = {}
with contextlib.redirect_stdout(io.StringIO()):
    main(["--help"])
report["help"] = heavy()

err = io.StringIO()
started = time.perf_counter()
with contextlib.redirect_stderr(err):
    code = main(["train", "data=csv", "data.path=" + argv[1], "data.lookback=4", "data.horizon=2",
                 "paths.log_dir=" + argv[2]])
report["bad_csv"] = {"code": code, "stderr": err.getvalue(), "seconds": time.perf_counter() - started, **heavy()}


import tsattn.training.module, tsattn.training.train, tsattn.tracking.artifacts  # noqa: E401  (what training loads)
report["training_loads_dashboard"] = "tsattn.reporting.dashboard" in sys.modules
print(json.dumps(report))
"""

# Forecast, backtest and tsattn.load in an interpreter that has loaded nothing before them.
INFERENCE_PROBE = """
import json, sys
import pandas as pd
import tsattn
from tsattn.cli import main
bundle, history, out = sys.argv[1], sys.argv[2], sys.argv[3]
codes = [main(["forecast", bundle, history, "-o", out, "--quiet"]),
         main(["backtest", bundle, history, "-o", out, "--quiet", "--start", "earliest"])]
rows = len(tsattn.load(bundle).forecast(pd.read_csv(history)))
heavy = ("lightning", "pytorch_lightning", "hydra", "omegaconf", "mlflow")
loaded = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy})
print(json.dumps({"codes": codes, "rows": rows, "loaded": loaded, "torch": "torch" in sys.modules}))
"""


def _probe(code: str, cwd, *args) -> dict:
    """Run `code` in a fresh interpreter; its last printed line is a JSON report."""
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=tsattn_env(),
        cwd=cwd,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_what_each_path_imports(tmp_path):
    bad = BAD_CSV_DIR / "non_numeric.csv"
    good = BAD_CSV_DIR / "good.csv"
    bundle, _ = build_bundle(tmp_path / "model", "data=csv", f"data.path={good}", "data.lookback=8", "data.horizon=2")
    report = _probe(PROBE, tmp_path, bad, tmp_path / "logs")
    assert report["help"] == {"torch": False, "lightning": False, "mlflow": False}
    refused = report["bad_csv"]
    assert refused["code"] == 2 and refused["stderr"].startswith("tsattn: error: ")
    assert "line 11: 'abc' in column 'value' is not a number" in refused["stderr"]
    assert not refused["torch"] and not refused["lightning"] and not refused["mlflow"], refused
    print(f"bad CSV refused in {refused['seconds']:.2f} s")  # shown with pytest -s; never asserted
    inference = _probe(INFERENCE_PROBE, tmp_path, bundle, good, tmp_path / "out.csv")
    assert inference["codes"] == [0, 0] and inference["rows"] == 2 and inference["torch"], inference
    assert inference["loaded"] == [], f"forecasting imported {inference['loaded']}"
    assert report["training_loads_dashboard"] is False
    assert not list((tmp_path / "logs").rglob("mlflow.db")) and not list((tmp_path / "logs").rglob("*.ckpt"))


def test_the_console_script_answers(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tsattn", "--version"], capture_output=True, text=True, env=tsattn_env()
    )
    assert result.returncode == 0 and result.stdout.startswith("tsattn ")
