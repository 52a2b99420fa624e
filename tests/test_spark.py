"""The Spark engine forecasts what the local engine forecasts, and refuses bad input in one line.

A model trained here on the M4 hourly series (414 of them, the last 200 hours of each), a local[1] Spark
session, and the same history through `Model.forecast`, `tsattn.spark.forecast` and the CLI's
`run_forecast` (Parquet in, CSV out; CSV in, Parquet out).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import build_bundle, m4_hourly_path
from tsattn.errors import TsattnError

pytest.importorskip("pyspark", reason="the Spark engine needs the spark extra: pip install 'tsattn[spark]'")
# PySpark 4 says so at every pandas conversion while pandas 3 is installed; the tests hold the results equal.
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

ROWS = 200  # per series: enough for L=48, H=48 windows in each split, small enough to stay quick
END = pd.Timestamp("2017-03-26 00:00")  # the last training hour of every series (no timestamps in M4)


def long_m4(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, forecast history) as long frames (id, time, value) with a synthesised hourly index.

    M4 rows are an id then the values, padded with empty cells. Every series' training part ends at END
    and its 48 test values follow; the history to forecast from is the last ROWS hours of both.
    """
    train = pd.read_csv(path / "Hourly-train.csv", index_col=0)
    test = pd.read_csv(path / "Hourly-test.csv", index_col=0)
    fitted, history = [], []
    for sid, row in train.iterrows():
        seen, future = row.dropna().to_numpy(), test.loc[sid].dropna().to_numpy()
        values = np.concatenate([seen, future])[-(ROWS + len(future)) :]
        times = pd.date_range(end=END + pd.Timedelta(hours=len(future)), periods=len(values), freq="h")
        series = pd.DataFrame({"id": sid, "time": times, "value": values})
        fitted.append(series.iloc[:ROWS])
        history.append(series.iloc[len(future) :])
    return pd.concat(fitted, ignore_index=True), pd.concat(history, ignore_index=True)


def require_java() -> None:
    """Spark runs on Java 17 (.ci/run installs it). Skips where it is absent, but fails under CI=true."""
    home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (home and (Path(home) / "bin" / "java").is_file()):
        reason = "no java here; the Spark engine needs Java 17 (apt-get install openjdk-17-jre-headless)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    require_java()

    # Spark's Python workers run PYSPARK_PYTHON (else `python3` from PATH, which lacks tsattn); it is read
    # once, when the context starts.
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        session = (
            # One core, and a JVM that compiles little and collects garbage on one thread: the other pytest
            # worker trains models on the second core meanwhile.
            SparkSession.builder.master("local[1]")
            .appName("tsattn tests")
            .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    finally:
        if before is None:
            os.environ.pop("PYSPARK_PYTHON")
        else:
            os.environ["PYSPARK_PYTHON"] = before
    session.sparkContext.setLogLevel("OFF")  # failed tasks are the point of some tests: no Java stacks
    yield session
    session.stop()


@pytest.fixture(scope="module")
def m4(tmp_path_factory):
    """A small LSTM seq2seq trained on M4 hourly, the history to forecast from, and its local forecast."""
    import tsattn

    workdir = tmp_path_factory.mktemp("m4")
    fitted, history = long_m4(m4_hourly_path())
    fitted.to_csv(workdir / "train.csv", index=False)
    bundle, _ = build_bundle(
        workdir,
        "data=csv",
        f"data.path={workdir / 'train.csv'}",
        "data.id_col=id",
        "data.time_col=time",
        "data.targets=[value]",
        "data.lookback=48",
        "data.horizon=48",
        "data.split.train=0.5",
        "data.split.val=0.25",
        "model=lstm_seq2seq",
        "model.net.hidden_size=16",
    )
    history.to_csv(workdir / "history.csv", index=False)
    local = tsattn.load(bundle).forecast(history)
    return workdir, str(bundle), history, local


def assert_same_forecast(spark_rows: pd.DataFrame, local: pd.DataFrame) -> None:
    """Same columns in the same order, same series, times and steps, values equal to float32 rounding.

    The local engine forecasts all 414 series in one forward pass, an executor the series of its partition:
    float32 matmuls over other batch sizes may round differently (measured: at most 2 parts in 10^8).
    """
    assert list(spark_rows.columns) == list(local.columns) == ["id", "time", "step", "value"]
    assert spark_rows["id"].nunique() == 414
    got = spark_rows.sort_values(["id", "step"]).reset_index(drop=True)
    want = local.sort_values(["id", "step"]).reset_index(drop=True)
    assert len(got) == len(want) == 414 * 48
    assert got["id"].astype(str).tolist() == want["id"].astype(str).tolist()
    assert (pd.to_datetime(got["time"]).to_numpy() == want["time"].to_numpy()).all()
    assert (got["step"].to_numpy() == want["step"].to_numpy()).all()
    np.testing.assert_allclose(got["value"].to_numpy(), want["value"].to_numpy(), rtol=1e-5, atol=1e-5)


def test_spark_forecast_equals_the_local_engine(spark, m4):
    import tsattn.spark

    workdir, bundle, _, local = m4
    history = spark.read.csv(str(workdir / "history.csv"), header=True)  # every column text: tsattn parses it
    future = tsattn.spark.forecast(history, bundle)
    assert [(f.name, f.dataType.simpleString()) for f in future.schema.fields] == [
        ("id", "string"),
        ("time", "timestamp_ntz"),
        ("step", "int"),
        ("value", "double"),
    ]
    assert_same_forecast(tsattn.spark.to_pandas(future), local)


def test_an_ensemble_forecasts_on_spark_as_it_does_locally(spark, m4, tmp_path):
    """The executors receive the ensemble's manifest and each member's files, and combine as the local engine."""
    import tsattn
    import tsattn.spark
    from tsattn.cli import main

    workdir, bundle, history, _ = m4
    # A second member of the same data: its untrained weights differ, its scaler is the same.
    overrides = [f"data.path={workdir / 'train.csv'}", "data.id_col=id", "data.time_col=time", "data.targets=[value]"]
    overrides += ["data.lookback=24", "data.horizon=48", "data.split.train=0.5", "data.split.val=0.25"]
    second, _ = build_bundle(tmp_path / "second", "data=csv", *overrides, "model.net.hidden_size=16", fit=False)
    assert main(["ensemble", bundle, str(second), "-o", str(tmp_path / "ensemble"), "--combine", "median"]) == 0
    local = tsattn.load(str(tmp_path / "ensemble")).forecast(history)
    frame = spark.read.csv(str(workdir / "history.csv"), header=True)
    assert_same_forecast(tsattn.spark.to_pandas(tsattn.spark.forecast(frame, str(tmp_path / "ensemble"))), local)


def test_cli_engine_reads_parquet_and_csv_and_writes_csv_and_parquet(spark, m4, tmp_path, capsys):
    from tsattn.cli import main
    from tsattn.inference.spark_engine import run_forecast

    workdir, bundle, history, local = m4
    parquet_in = tmp_path / "history"  # a directory of Parquet files, as Spark and others write them
    parquet_in.mkdir()
    half = len(history) // 2
    history.iloc[:half].to_parquet(parquet_in / "part-0.parquet")
    history.iloc[half:].to_parquet(parquet_in / "part-1.parquet")
    csv_out = tmp_path / "forecast.csv"
    assert run_forecast(bundle, parquet_in, csv_out, quiet=True) == 414 * 48
    written = pd.read_csv(csv_out, dtype={"time": str})
    assert written["time"].iloc[0] == "2017-03-28 01:00:00"  # the local engine's text format
    assert_same_forecast(written, local)

    parquet_out = tmp_path / "forecast.parquet"  # through the command line this time
    command = ["forecast", bundle, str(workdir / "history.csv"), "-o", str(parquet_out), "--engine", "spark"]
    assert main([*command, "--spark-master", "local[1]"]) == 0
    assert "tsattn: forecast on Spark (local[1])" in capsys.readouterr().err
    assert_same_forecast(pd.read_parquet(parquet_out), local)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forecast.csv", "forecast.parquet", "history"]


def test_a_missing_column_or_a_long_horizon_is_one_line_before_any_job(spark, m4, tmp_path):
    import tsattn.spark
    from tsattn.inference.spark_engine import run_forecast

    workdir, bundle, history, _ = m4
    without = spark.read.csv(str(workdir / "history.csv"), header=True).drop("value")
    with pytest.raises(TsattnError) as refused:
        tsattn.spark.forecast(without, bundle)
    assert str(refused.value) == "input has no column 'value' (the model's data.targets); columns are: id, time"
    with pytest.raises(TsattnError, match=r"^--horizon 49: this model forecasts 1 to 48 steps; "):
        tsattn.spark.forecast(without, bundle, horizon=49)

    csv_in = tmp_path / "history.csv"
    history.rename(columns={"id": "series"}).to_csv(csv_in, index=False)
    with pytest.raises(TsattnError) as refused:
        run_forecast(bundle, csv_in, tmp_path / "out.csv", quiet=True)
    assert str(refused.value) == (
        f"{csv_in} has no column 'id' (the model's data.id_col); columns are: series, time, value"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_a_bad_cell_in_one_series_is_one_line_naming_it(spark, m4, tmp_path):
    from tsattn.inference.spark_engine import run_forecast

    _, bundle, history, _ = m4
    bad = history.astype({"value": str})
    bad.loc[bad.index[bad["id"] == "H7"][10], "value"] = "n/a?"
    csv_in = tmp_path / "history.csv"
    bad.to_csv(csv_in, index=False)
    output = tmp_path / "out.csv"
    output.write_text("an earlier forecast\n")
    with pytest.raises(TsattnError) as refused:
        run_forecast(bundle, csv_in, output, quiet=True)
    assert str(refused.value) == (
        f"{csv_in}: series 'H7': 'n/a?' in column 'value' is not a number; "
        "fix the value or leave the cell empty to mark it missing"
    )
    assert output.read_text() == "an earlier forecast\n"  # untouched, and nothing half-written beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv", "out.csv"]


def test_without_pyspark_the_engine_says_how_to_install_it(monkeypatch):
    import tsattn.spark

    monkeypatch.setitem(sys.modules, "pyspark", None)  # what `import pyspark` meets where it is not installed
    with pytest.raises(TsattnError, match=r"^the Spark engine needs pyspark: pip install 'tsattn\[spark\]'"):
        tsattn.spark.forecast(object(), "bundle")


def test_without_java_the_engine_says_so(m4, tmp_path, monkeypatch):
    from pyspark.sql import SparkSession

    from tsattn.inference.spark_engine import run_forecast

    _, bundle, history, _ = m4
    csv_in = tmp_path / "history.csv"
    history.head(10).to_csv(csv_in, index=False)
    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))  # as in a fresh process
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    with pytest.raises(TsattnError, match=r"^the Spark engine needs Java 17: install it"):
        run_forecast(bundle, csv_in, tmp_path / "out.csv", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_local_only_options_are_refused_with_the_spark_engine(m4, tmp_path, capsys):
    from tsattn.cli import main

    workdir, bundle, _, _ = m4
    base = ["forecast", bundle, str(workdir / "history.csv"), "-o", str(tmp_path / "out.csv"), "--engine", "spark"]
    for extra, named in ((["--skip-short"], "--skip-short"), (["--device", "cpu"], "--device")):
        assert main([*base, *extra]) == 2
        assert f"{named} is not available with --engine spark" in capsys.readouterr().err
    assert main([*base[:4], str(tmp_path / "out[1].csv"), "--engine", "spark"]) == 2
    assert "reads OUTPUT paths as patterns" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_spark_csv_output_guards_formulas_as_the_local_engine_does(spark):
    """The same cells prefixed with ' on both engines: text starting with = + - @ that is not a number."""
    from tsattn.inference.output import formula_safe
    from tsattn.inference.spark_engine import _formula_safe

    ids = ["=1+2", "@SUM(1)", "-1.5", "-x", "+3", "-", "plain", "-inf", "-1d", " =1", "\t1", "\uff1d1"]
    frame = pd.DataFrame({"id": ids, "value": [-1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]})
    frame = frame.rename(columns={"value": "=value"})
    got = _formula_safe(spark.createDataFrame(frame)).toPandas()
    want = formula_safe(frame)
    guarded = ["'=1+2", "'@SUM(1)", "-1.5", "'-x", "+3", "-", "plain", "'-inf", "'-1d", "' =1", "'\t1", "'\uff1d1"]
    assert got["id"].tolist() == want["id"].tolist() == guarded
    assert list(got.columns) == ["id", "'=value"] and got["'=value"].tolist() == frame["=value"].tolist()


def test_an_output_name_means_the_same_format_on_both_engines(tmp_path):
    """`-o forecast` (no extension) is CSV on Spark as it is locally; .parquet and .pq are Parquet on both."""
    from tsattn.inference.output import is_parquet
    from tsattn.inference.spark_engine import _output_kind

    for name in ("forecast", "forecast.csv", "forecast.parquet", "forecast.pq", "forecast.txt"):
        assert _output_kind(tmp_path / name) == ("parquet" if is_parquet(tmp_path / name) else "csv"), name
    assert _output_kind(tmp_path / "forecast") == "csv"


def test_the_same_csv_reads_the_same_on_both_engines_or_is_refused_the_same(spark, m4, tmp_path, capsys):
    """A quote doubled inside a quoted id is one quote on both engines (Spark's default escape would keep
    both and the backslash), and a row with more or fewer fields than the header is one line on both
    (Spark's permissive mode would drop the extra field or fill the missing one)."""
    from tsattn.cli import main
    from tsattn.inference.spark_engine import run_forecast

    _, bundle, history, local = m4
    # A column the model never reads: Spark would parse only the model's columns (CSV column pruning), and a
    # row missing that field would pass there while the local engine refuses it.
    few = history[history["id"].isin(["H1", "H2"])].replace({"id": {"H1": 'H"1'}}).assign(note="unread")
    quoted = tmp_path / "quoted.csv"
    few.to_csv(quoted, index=False)
    assert '"H""1"' in quoted.read_text()  # as pandas and spreadsheets write it
    run_forecast(bundle, quoted, tmp_path / "spark.csv", quiet=True)
    assert main(["forecast", bundle, str(quoted), "-o", str(tmp_path / "local.csv"), "--quiet"]) == 0
    on_spark, on_local = pd.read_csv(tmp_path / "spark.csv"), pd.read_csv(tmp_path / "local.csv")
    assert sorted(on_spark["id"].unique()) == sorted(on_local["id"].unique()) == ['H"1', "H2"]
    np.testing.assert_allclose(on_spark["value"], on_local["value"], rtol=1e-5)
    want = local[local["id"] == "H2"]["value"].to_numpy()
    np.testing.assert_allclose(on_spark[on_spark["id"] == "H2"]["value"], want, rtol=1e-5)

    lines = quoted.read_text().splitlines()
    # Line 8 without its note: the field the model never reads, which Spark's column pruning would not parse.
    # (A field too many is refused by the same FAILFAST read; the local reader's cases are in test_bad_csv.py.)
    for row in (lines[7].rsplit(",", 1)[0],):
        ragged = tmp_path / "ragged.csv"
        ragged.write_text("\n".join([*lines[:7], row, *lines[8:]]) + "\n")
        with pytest.raises(TsattnError) as refused:
            run_forecast(bundle, ragged, tmp_path / "out.csv", quiet=True)
        assert str(refused.value).startswith(f"{ragged} is not a well-formed CSV (a row's fields do not match")
        assert repr(row) in str(refused.value) and "\n" not in str(refused.value)
        capsys.readouterr()
        assert main(["forecast", bundle, str(ragged), "-o", str(tmp_path / "out.csv"), "--quiet"]) == 2
        refusal = f"{ragged} is not a well-formed CSV (line 8 has {len(row.split(','))} fields, the header 4)"
        assert refusal in capsys.readouterr().err
        assert not (tmp_path / "out.csv").exists()


def test_the_spark_engine_refuses_storage_uris_in_one_line(m4, tmp_path):
    """The result is renamed into place on the driver's file system: S3 or HDFS paths go through the API."""
    from tsattn.inference.spark_engine import run_forecast

    workdir, bundle, _, _ = m4
    for source, target in ((workdir / "history.csv", "s3://bucket/out.csv"), ("hdfs://nn/history.csv", tmp_path / "o")):
        with pytest.raises(TsattnError, match=r"the Spark engine reads INPUT and writes OUTPUT on a file system"):
            run_forecast(bundle, source, target, quiet=True)
    assert not list(tmp_path.iterdir())
