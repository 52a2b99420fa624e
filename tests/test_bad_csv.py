"""Every malformed CSV in tests/data/bad gets its own one-line message, directly and through `tsattn train`.

The command runs in-process here (the same `main` the console script calls), one case after another; the
one real `tsattn train` process on a bad file is in test_import_hygiene.py, where it also shows that the
file is refused before torch and Lightning are imported.
"""

from __future__ import annotations

import contextlib
import io
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import BAD_CSV_DIR
from tsattn.cli import main
from tsattn.data.datamodule import ForecastDataModule
from tsattn.data.io import read_series
from tsattn.errors import TsattnError

# file, extra data.* settings, what the message must say
CASES = {
    "not_utf8": ("not_utf8.csv", {}, "is not UTF-8 text (byte 0xe9"),
    "empty": ("empty.csv", {}, "is empty; it needs a header line"),
    "header_only": ("header_only.csv", {}, "has a header but no data rows"),
    "ragged_row": ("ragged_row.csv", {}, "is not a well-formed CSV (line 5 has 3 fields, the header 2)"),
    "short_row": ("short_row.csv", {}, "is not a well-formed CSV (line 6 has 1 field, the header 2)"),
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
    "duplicate_columns": (
        "duplicate_columns.csv",
        {},
        "column 'value' appears 2 times in the header (columns 2, 3); give each column its own name",
    ),
    "semicolons": (
        "semicolon.csv",
        {},
        "reads as a single column 'time;value': its fields look separated by ';', not ','; set data.sep=';'",
    ),
    "directory": (".", {}, "is a directory; give the CSV file itself (data.path)"),
    "empty_column": (
        "empty_column.csv",
        {},
        "column 'sensor' is empty in every row; delete it from the file or leave it out (data.targets=[value])",
    ),
    "offsets_mixed_with_none": (
        "offsets_mixed_with_none.csv",
        {},
        "line 6: column 'time' mixes timestamps with and without a UTC offset ('2021-03-27T17:00')",
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
    assert str(BAD_CSV_DIR) in message  # names the file


def test_the_good_twin_reads():
    """The corpus files are broken copies of this one, which must pass: the failures above are the defects."""
    datamodule = ForecastDataModule(str(BAD_CSV_DIR / "good.csv"), **WINDOW)
    datamodule.setup()
    assert len(datamodule.datasets["test"]) > 0


def test_the_separator_the_message_names_reads_the_file():
    good = read_series(BAD_CSV_DIR / "good.csv")
    semicolons = read_series(BAD_CSV_DIR / "semicolon.csv", sep=";")
    np.testing.assert_array_equal(semicolons.series[0].values, good.series[0].values)


@pytest.mark.parametrize("sep", ["\r", "\n", '"', ";;"])
def test_a_separator_no_csv_can_use_is_one_line(sep):
    """A line end splits records and the quote opens quoted cells: neither can separate fields (pandas would
    raise its own error, or read the file wrongly)."""
    with pytest.raises(TsattnError, match=r"^data\.sep=.*(cannot separate fields|must be one character)"):
        read_series(BAD_CSV_DIR / "good.csv", sep=sep)


def test_day_first_dates_name_the_time_format_and_month_first_ones_read(tmp_path):
    """13/01/2024 cannot be month first: one line naming data.time_format (pandas would read 01/02 as
    January 2 and the rest day first, then call the rows out of order). Month-first dates read as before."""
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    for written, refused in (("%d/%m/%Y", True), ("%m/%d/%Y", False), ("%d.%m.%y", True)):
        path = tmp_path / "dates.csv"
        pd.DataFrame({"date": days.strftime(written), "y": np.arange(40.0)}).to_csv(path, index=False)
        if refused:
            message = rf"line 14: .* is written day first \(13 is not a month\); set data.time_format='{written}'"
            with pytest.raises(TsattnError, match=message):
                read_series(path)
            assert list(read_series(path, time_format=written).series[0].time) == list(days)
        else:
            assert list(read_series(path).series[0].time) == list(days)


def test_changing_utc_offsets_are_read_as_utc_on_a_regular_grid():
    """A daylight-saving switch in local time: 01:00+01:00 is followed by 03:00+02:00, one hour later."""
    collection = read_series(BAD_CSV_DIR / "dst_offsets.csv")
    (series,) = collection.series
    assert collection.freq.freqstr == "h" and len(series.time) == 40
    assert series.time[0] == pd.Timestamp("2021-03-27 12:00")  # 13:00+01:00
    assert (np.diff(series.time.to_numpy()) == np.timedelta64(1, "h")).all()  # no hour lost or doubled
    good = read_series(BAD_CSV_DIR / "good.csv")
    np.testing.assert_array_equal(series.values, good.series[0].values)


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """`tsattn train` on every corpus file, in this process: exit code, stdout and stderr of each."""
    workdir = tmp_path_factory.mktemp("bad_csv_cli")
    results = {}
    for case, (filename, settings, _) in CASES.items():
        overrides = [f"data.{key}=[{','.join(value)}]" for key, value in settings.items()]
        args = ["train", "data=csv", f"data.path={BAD_CSV_DIR / filename}", "data.lookback=4", "data.horizon=2"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*args, f"paths.log_dir={workdir / case}", *overrides])
        results[case] = (code, out.getvalue(), err.getvalue())
    return workdir, results


@pytest.mark.parametrize("case", CASES)
def test_cli_exit_code_2_one_line_no_traceback(case, cli_results):
    code, out, err = cli_results[1][case]
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tsattn: error: ") and CASES[case][2] in lines[0]
    assert "Traceback" not in out + err


def test_cli_opens_no_mlflow_store_on_bad_data(cli_results):
    # Validation happens before the logger exists: no store, no half-recorded run.
    workdir, results = cli_results
    assert all(code == 2 for code, _, _ in results.values())
    assert not list(workdir.rglob("mlflow.db"))
    assert not list(workdir.rglob("*.ckpt"))


def test_unknown_model_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["notebook", "--its-own-flag"])
    assert main(["train", "model=nonexistent", f"paths.log_dir={tmp_path}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "model/nonexistent" in line and "lstm_seq2seq" in line
    assert sys.argv == ["notebook", "--its-own-flag"]  # Hydra read the overrides from sys.argv; the caller's are back


def test_non_ascii_names_in_overrides_say_how_to_quote_them(tmp_path, capsys):
    assert main(["train", "data=csv", "data.targets=[온도,습도]", f"paths.log_dir={tmp_path}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert 'write \'data.targets=["온도","습도"]\'' in line
    assert main(["train", "data=csv", "data.path=데이터.csv", f"paths.log_dir={tmp_path}"]) == 2
    assert "write 'data.path=\"데이터.csv\"'" in capsys.readouterr().err
    # The quoting it suggests is accepted: the file is then simply not there.
    assert main(["train", "data=csv", 'data.path="데이터.csv"', f"paths.log_dir={tmp_path}"]) == 2
    assert "데이터.csv: no such file; check data.path" in capsys.readouterr().err
