"""`tsattn forecast` streams a long file block by block and gives what reading it whole gives; Parquet in and
out; files streaming cannot take are read whole, with the same results and the same one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import build_bundle
from tsattn.cli import main

LOOKBACK, HORIZON = 96, 24


@pytest.fixture(scope="module")
def etth1_long(etth1_path, tmp_path_factory):
    """ETTh1's seven columns as seven series of a long file (id, time, value), and an LSTM trained on it."""
    root = tmp_path_factory.mktemp("streaming")
    wide = pd.read_csv(etth1_path)
    long = wide.melt(id_vars="date", var_name="id", value_name="value").rename(columns={"date": "time"})
    long = long[["id", "time", "value"]]
    path = root / "etth1_long.csv"
    long.to_csv(path, index=False)
    overrides = ["data=csv", f"data.path={path}", "data.id_col=id", "data.targets=[value]"]
    # Normalisation off: with it, any per-series scaling cancels out, and a wrong statistic could not show.
    sizes = [f"data.lookback={LOOKBACK}", f"data.horizon={HORIZON}", "model.net.hidden_size=16"]
    sizes.append("model.normalization=none")
    bundle, _ = build_bundle(root, *overrides, *sizes)
    return root, long, str(bundle)


def _whole(bundle: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The in-memory path: every series validated at once, then forecast."""
    import tsattn

    return tsattn.load(bundle).forecast(frame)


def _forecast(bundle, source, out, capsys, *extra) -> tuple[int, str]:
    code = main(["forecast", bundle, str(source), "-o", str(out), *extra])
    return code, capsys.readouterr().err


def _equal(streamed: pd.DataFrame, whole: pd.DataFrame, history: pd.DataFrame) -> None:
    """The same rows, and values equal in scaled units: within 1e-5 of each series' std in `history`.

    A relative tolerance would let a series at 1e7 differ by 100; float32 rounding of the inputs alone
    (10000001.7 read as 10000002.0) moves a series of std 7 by 0.04 of a std, far outside this one.
    """
    streamed = streamed.sort_values(["id", "step"]).reset_index(drop=True)
    whole = whole.sort_values(["id", "step"]).reset_index(drop=True)
    assert list(streamed.columns) == list(whole.columns) == ["id", "time", "step", "value"]
    assert (streamed["id"] == whole["id"]).all() and (streamed["step"] == whole["step"]).all()
    assert (pd.to_datetime(streamed["time"]).to_numpy() == pd.to_datetime(whole["time"]).to_numpy()).all()
    std = whole["id"].map(history.groupby("id")["value"].std()).to_numpy()
    np.testing.assert_array_less(np.abs(streamed["value"].to_numpy() - whole["value"].to_numpy()), 1e-5 * std)


def test_a_streamed_file_in_small_blocks_equals_the_whole_file(etth1_long, tmp_path, capsys, monkeypatch):
    import tsattn.inference.streaming as streaming

    _, long, bundle = etth1_long
    # Series in another order than training's, and blocks of 64 KB: most series span several blocks and most
    # blocks end inside a series.
    order = ["OT", "HUFL", "LULL", "MUFL", "HULL", "LUFL", "MULL", "new"]
    # A series the model never saw, at a level where float32 and float64 inputs would differ: it is scaled
    # by its own statistics, computed here as its rows go by.
    new = long[long["id"] == "OT"].assign(id="new", value=lambda f: f["value"] * 7 + 1e7)
    shuffled = pd.concat([long[long["id"] == name] for name in order[:-1]] + [new])
    source = tmp_path / "shuffled.csv"
    shuffled.to_csv(source, index=False)
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 64 << 10)
    code, err = _forecast(bundle, source, tmp_path / "out.csv", capsys)
    assert code == 0, err
    assert "(streamed:" in err and "reading" in err and "forward" in err  # it did stream, and says where time went
    streamed = pd.read_csv(tmp_path / "out.csv")
    assert list(streamed["id"].unique()) == order  # written as read
    _equal(streamed, _whole(bundle, shuffled), shuffled)


def test_parquet_in_and_out_equal_csv(etth1_long, tmp_path, capsys):
    _, long, bundle = etth1_long
    csv_in, parquet_in = tmp_path / "in.csv", tmp_path / "in.parquet"
    long.to_csv(csv_in, index=False)
    typed = long.assign(time=pd.to_datetime(long["time"]))  # Parquet keeps types: times as timestamps
    typed.to_parquet(parquet_in, index=False)
    directory = tmp_path / "parts"  # a directory of Parquet files, as Spark writes them
    directory.mkdir()
    for i, name in enumerate(sorted(long["id"].unique())):
        typed[typed["id"] == name].to_parquet(directory / f"part-{i:03d}.parquet", index=False)
    results = {}
    for label, source, out in [
        ("csv", csv_in, tmp_path / "a.csv"),
        ("parquet", parquet_in, tmp_path / "b.parquet"),
        ("directory", directory, tmp_path / "c.csv"),
    ]:
        code, err = _forecast(bundle, source, out, capsys)
        assert code == 0 and "(streamed:" in err, (label, err)
        results[label] = pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)
    assert results["parquet"]["time"].dtype.kind == "M" and results["parquet"]["step"].dtype.kind == "i"
    for label in ("parquet", "directory"):
        _equal(results[label], results["csv"], long)


def test_files_streaming_cannot_take_are_read_whole_with_the_same_result(etth1_long, tmp_path, capsys):
    _, long, bundle = etth1_long
    # Rows of two series interleaved: no series ends until the file does.
    two = long[long["id"].isin(["OT", "HUFL"])]
    interleaved = two.sort_values(["time", "id"], kind="stable")
    source = tmp_path / "interleaved.csv"
    interleaved.to_csv(source, index=False)
    code, err = _forecast(bundle, source, tmp_path / "out.csv", capsys)
    assert code == 0, err
    assert "are not all together: reading" in err and "whole instead of streaming it" in err
    assert "(read whole:" in err
    _equal(pd.read_csv(tmp_path / "out.csv"), _whole(bundle, two), two)


def test_a_gap_is_named_by_its_line_whether_or_not_the_file_could_stream(etth1_long, tmp_path, capsys):
    _, long, bundle = etth1_long
    gappy = long.drop(index=long.index[(long["id"] == "LULL")][5000:5003])  # three hours missing in one series
    source = tmp_path / "gappy.csv"
    gappy.to_csv(source, index=False)
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    code, err = _forecast(bundle, source, out, capsys)
    assert code == 2
    assert "series 'LULL' has a gap" in err  # why it could not stream
    assert err.strip().splitlines()[-1].startswith("tsattn: error: ") and "missing 3 timestamps" in err
    assert out.read_text() == "old\n"  # untouched


def test_short_series_are_refused_or_skipped_while_streaming(etth1_long, tmp_path, capsys):
    _, long, bundle = etth1_long
    short = pd.DataFrame({"id": "tiny", "time": long["time"].iloc[:10], "value": np.arange(10.0)})
    source = tmp_path / "with_short.csv"
    pd.concat([long[long["id"] == "OT"], short]).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    code, err = _forecast(bundle, source, out, capsys)
    assert code == 2 and "1 series have fewer than the 96 rows needed ('tiny')" in err and not out.exists()
    code, err = _forecast(bundle, source, out, capsys, "--skip-short")
    assert code == 0 and "skipped 1 series shorter than 96 rows: 'tiny'" in err
    assert set(pd.read_csv(out)["id"]) == {"OT"}


def test_run_statistics_equal_the_two_pass_ones():
    from tsattn.data.scaling import mean_and_std, run_mean_and_std

    rng = np.random.default_rng(0)
    values = rng.normal(1e4, 3.0, size=(50, 2))  # a level far above the spread: the naive formula loses digits
    starts = np.array([0, 7, 20, 21, 40])
    mean, std = run_mean_and_std(values, starts)
    for i, (begin, end) in enumerate(zip(starts, [*starts[1:], 50], strict=True)):
        expected_mean, expected_std = mean_and_std(values[begin:end])
        np.testing.assert_allclose(mean[i], expected_mean, rtol=1e-12)
        np.testing.assert_allclose(std[i], expected_std, rtol=1e-9)


def test_a_duplicated_column_is_refused_as_reading_whole_refuses_it(etth1_long, tmp_path, capsys):
    _, long, bundle = etth1_long
    source = tmp_path / "twice.csv"
    long[long["id"] == "OT"].assign(again=1.0).rename(columns={"again": "value"}).to_csv(source, index=False)
    code, err = _forecast(bundle, source, tmp_path / "out.csv", capsys)
    assert code == 2 and "column 'value' appears 2 times in the header" in err  # never streamed on the first
    assert not (tmp_path / "out.csv").exists()


def test_batches_of_a_file_share_one_time_format(tmp_path):
    """One batch of midnights, one not: written alike, so the file parses as one column of times."""
    from tsattn.inference.output import TableWriter

    midnights = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=2, freq="D"), "v": [1.0, 2.0]})
    hours = pd.DataFrame({"time": pd.date_range("2024-01-03 01:00", periods=2, freq="h"), "v": [3.0, 4.0]})
    with TableWriter(tmp_path / "out.csv") as writer:
        writer.write(midnights)
        writer.write(hours)
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines == ["time,v", "2024-01-01 00:00:00,1", "2024-01-02 00:00:00,2", "2024-01-03 01:00:00,3",
                     "2024-01-03 02:00:00,4"]  # fmt: skip
