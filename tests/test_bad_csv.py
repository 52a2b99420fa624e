"""Every malformed CSV in tests/data/bad gets its own one-line message, directly and through `tsattn train`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import BAD_CSV_DIR, run_tsattn
from tsattn.data.datamodule import ForecastDataModule
from tsattn.errors import TsattnError

# file, extra data.* settings, what the message must say
CASES = {
    "not_utf8": ("not_utf8.csv", {}, "is not UTF-8 text (byte 0xe9"),
    "empty": ("empty.csv", {}, "is empty; it needs a header line"),
    "header_only": ("header_only.csv", {}, "has a header but no data rows"),
    "ragged_row": ("ragged_row.csv", {}, "is not a well-formed CSV"),
    "no_time_column": ("no_time_column.csv", {}, "no time column found; name it with data.time_col"),
    "bad_timestamp": ("bad_timestamp.csv", {}, "line 4: cannot parse 'not-a-date' in column 'time'"),
    "duplicate_timestamp": ("duplicate_timestamp.csv", {}, "duplicate timestamp 2010-01-01 03:00:00 (lines 5 and 6)"),
    "missing_timestamps": (
        "missing_timestamps.csv",
        {},
        "is missing 2 timestamps of its h grid (first: 2010-01-01 05:00",
    ),
    "irregular_timestamps": ("irregular_timestamps.csv", {}, "line 9: timestamp 2010-01-01 07:30:00"),
    "non_numeric": ("non_numeric.csv", {}, "line 11: 'abc' in column 'value' is not a number"),
    "empty_value": ("empty_value.csv", {}, "line 10: empty value in column 'value'"),
    "constant_column": ("constant_column.csv", {}, "column 'sensor' of series 'constant_column' is constant"),
    "too_short": ("too_short.csv", {}, "has 4 rows but one window (lookback 4 + horizon 2) needs at least 6"),
    "unknown_column": (
        "good.csv",
        {"targets": ["sales"]},
        "has no column 'sales' (from data.targets); columns are: time, value",
    ),
}
WINDOW = {"lookback": 4, "horizon": 2}


@pytest.mark.parametrize("case", CASES)
def test_data_layer_message(case):
    filename, settings, expected = CASES[case]
    datamodule = ForecastDataModule(str(BAD_CSV_DIR / filename), **WINDOW, **settings)
    with pytest.raises(TsattnError) as raised:
        datamodule.setup()
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert filename in message or "data." in message


def test_the_good_twin_reads():
    """The corpus files are broken copies of this one, which must pass: the failures above are the defects."""
    datamodule = ForecastDataModule(str(BAD_CSV_DIR / "good.csv"), **WINDOW)
    datamodule.setup()
    assert len(datamodule.datasets["test"]) > 0


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """Run `tsattn train` on every corpus file, two processes at a time."""
    workdir = tmp_path_factory.mktemp("bad_csv_cli")

    def run(case: str):
        filename, settings, _ = CASES[case]
        overrides = [f"data.{key}=[{','.join(value)}]" for key, value in settings.items()]
        args = [
            "train",
            "data=csv",
            f"data.path={BAD_CSV_DIR / filename}",
            "data.lookback=4",
            "data.horizon=2",
            f"paths.log_dir={workdir / case}",
            *overrides,
        ]
        return case, run_tsattn(args, cwd=workdir)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return workdir, dict(pool.map(run, CASES))


@pytest.mark.parametrize("case", CASES)
def test_cli_exit_code_2_one_line_no_traceback(case, cli_results):
    result = cli_results[1][case]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tsattn: error: ") and CASES[case][2] in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_opens_no_mlflow_store_on_bad_data(cli_results):
    # Validation happens before the logger exists: no store, no half-recorded run.
    workdir, results = cli_results
    assert all(result.returncode == 2 for result in results.values())
    assert not list(workdir.rglob("mlflow.db"))
    assert not list(workdir.rglob("*.ckpt"))


def test_unknown_model_is_one_line(tmp_path):
    result = run_tsattn(["train", "model=nonexistent", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "model/nonexistent" in line and "lstm_seq2seq" in line
