"""The row-per-series layout (M4's files): read as data, trained on, forecast from, and its mistakes in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import build_bundle, m4_hourly_path
from tsattn.cli import main
from tsattn.data.io import read_series
from tsattn.errors import TsattnError


@pytest.fixture(scope="module")
def m4_rows(tmp_path_factory):
    """30 series of M4 Hourly's own training file as the competition ships it: the header, then rows 155 to 184,
    whose histories are 700 and 960 values long (ragged rows, the shorter padded with empty cells)."""
    path = tmp_path_factory.mktemp("rows") / "Hourly-train-30.csv"
    with (m4_hourly_path() / "Hourly-train.csv").open() as handle:
        lines = handle.readlines()
    path.write_text("".join([lines[0], *lines[155:185]]))
    return path


def test_rows_are_read_as_series_that_start_at_data_start(m4_rows):
    collection = read_series(m4_rows, layout="rows", start="2000-01-01", freq="h")
    raw = pd.read_csv(m4_rows)  # pandas' own reading of the same file: NaN after each series' last value
    assert [s.id for s in collection.series] == sorted(raw["V1"])  # sorted by id, as every layout
    assert (collection.id_col, collection.time_col, collection.targets) == ("V1", "time", ["value"])
    by_id = {s.id: s for s in collection.series}
    for _, row in raw.iterrows():
        values = row.iloc[1:].dropna().to_numpy(dtype=float)
        series = by_id[row["V1"]]
        np.testing.assert_array_equal(series.values[:, 0], values)  # ragged: each to its own last value
        assert series.time[0] == pd.Timestamp("2000-01-01") and len(series.time) == len(values)
    assert {len(s.time) for s in collection.series} == {700, 960}


@pytest.mark.parametrize(
    ("text", "settings", "message"),
    [
        ("id,v1,v2\na,1,2\n", {"freq": "h"}, "has no timestamps; set data.start"),
        ("id,v1,v2\na,1,x\n", {}, "line 2: 'x' in column 'v2' of series 'a' is not a number"),
        ("id,v1,v2\na,1,2\na,3,4\n", {}, "line 3: series 'a' has a second row"),
        ("id,v1,v2\na,1,2\nb,,\n", {}, "line 3: series 'b' has no values"),
        ("id,v1,v2\na,1,2\n", {"layout": "columns"}, "data.layout='columns': choose auto"),
    ],
)
def test_mistakes_in_a_rows_file_are_one_line(tmp_path, text, settings, message):
    path = tmp_path / "rows.csv"
    path.write_text(text)
    options = {"layout": "rows", "start": "2000-01-01", "freq": "h"} | settings
    if "start" not in settings and "freq" in settings:
        options.pop("start")
    with pytest.raises(TsattnError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_series(path, **options)


def test_a_gap_inside_a_row_is_a_missing_value_for_data_missing(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("id,v1,v2,v3,v4\na,1,,3,4\nb,5,6,,\n")
    with pytest.raises(TsattnError, match="data.missing"):
        read_series(path, layout="rows", start="2000-01-01", freq="D")
    collection = read_series(path, layout="rows", start="2000-01-01", freq="D", missing="interpolate")
    np.testing.assert_array_equal(collection.series[0].values[:, 0], [1, 2, 3, 4])
    assert len(collection.series[1].time) == 2  # b ends at its last value


def test_a_model_trained_on_rows_forecasts_from_rows_as_from_the_long_file(m4_rows, tmp_path):
    from tsattn.data.rows import rows_to_long
    from tsattn.data.io import read_frame

    overrides = ["data=csv", f"data.path={m4_rows}", "data.layout=rows", "data.start=2000-01-01", "data.freq=h"]
    overrides += ["data.lookback=48", "data.horizon=24", "data.split=tail", "model.net.hidden_size=8"]
    bundle, run = build_bundle(tmp_path, *overrides, fit=False)
    assert len(run.datamodule.collection.series) == 30
    assert all(b.test_end - b.val_end == 24 for b in run.datamodule.borders.values())  # the tail split
    rows_out, long_out = tmp_path / "from_rows.csv", tmp_path / "from_long.csv"
    command = ["forecast", str(bundle), str(m4_rows), "--rows-start", "2000-01-01", "-o", str(rows_out), "--quiet"]
    assert main(command) == 0
    long = rows_to_long(read_frame(m4_rows), str(m4_rows), "2000-01-01", "h")
    long.to_csv(tmp_path / "long.csv", index=False)
    assert main(["forecast", str(bundle), str(tmp_path / "long.csv"), "-o", str(long_out), "--quiet"]) == 0
    from_rows, from_long = pd.read_csv(rows_out), pd.read_csv(long_out)
    assert list(from_rows.columns) == ["V1", "time", "step", "value"] and len(from_rows) == 30 * 24
    pd.testing.assert_frame_equal(from_rows, from_long)
    # Each series' forecast starts after its own last value: 700 or 960 hours after 2000-01-01 00:00.
    first = pd.to_datetime(from_rows.groupby("V1")["time"].first()) - pd.Timestamp("2000-01-01")
    assert set(first.dt.total_seconds() // 3600) == {700, 960}
