"""Reading CSVs: both layouts, time column detection, ordering and gap policies, on real data."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from tsattn.data.io import read_series
from tsattn.errors import TsattnError


def test_reads_wide_etth1_as_one_multivariate_series(etth1_path):
    collection = read_series(etth1_path)
    assert collection.targets == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert collection.freq.freqstr == "h"
    (series,) = collection.series
    assert series.values.shape == (17420, 7)
    assert series.values.dtype == np.float64  # the file's digits, all of them: float32 only once scaled
    raw = pd.read_csv(etth1_path)
    np.testing.assert_array_equal(series.values, raw[collection.targets].to_numpy(np.float64))
    assert series.time[0] == pd.Timestamp("2016-07-01 00:00")


def test_reads_long_weather_one_series_per_city(weather_path, caplog):
    with caplog.at_level(logging.WARNING):
        collection = read_series(weather_path, targets=["temperature"], id_col="city", missing="interpolate")
    assert [s.id for s in collection.series] == ["san_francisco", "seattle"]
    for s in collection.series:
        assert len(s.time) == 8760  # all of 2010, the DST hour restored
    assert "filled 2 missing timestamps" in caplog.text


def test_gap_policy_error_names_the_missing_hour(weather_path):
    with pytest.raises(TsattnError, match=r"missing 1 timestamp.*2010-03-14 03:00.*data.missing=interpolate"):
        read_series(weather_path, targets=["temperature"], id_col="city")


def test_interpolate_and_ffill_fill_a_gap_as_documented(tmp_path, weather_path):
    frame = pd.read_csv(weather_path)
    seattle = frame[frame.city == "seattle"].iloc[:48].drop(columns="city")
    seattle = seattle.drop(index=seattle.index[[10, 11]])  # hours 10 and 11 go missing
    path = tmp_path / "gappy.csv"
    seattle.to_csv(path, index=False)
    before, after = seattle["temperature"].iloc[9], seattle["temperature"].iloc[10]

    linear = read_series(path, targets=["temperature"], missing="interpolate").series[0].values[:, 0]
    np.testing.assert_allclose(
        linear[10:12], [before + (after - before) / 3, before + 2 * (after - before) / 3], rtol=1e-5
    )
    carried = read_series(path, targets=["temperature"], missing="ffill").series[0].values[:, 0]
    np.testing.assert_allclose(carried[10:12], [before, before])


def test_unsorted_rows_are_sorted_and_reported(tmp_path, weather_path, caplog):
    frame = pd.read_csv(weather_path).iloc[:500]
    shuffled = tmp_path / "shuffled.csv"
    frame.sample(frac=1.0, random_state=0).to_csv(shuffled, index=False)
    with caplog.at_level(logging.WARNING):
        got = read_series(shuffled, targets=["temperature"], id_col="city").series[0]
    assert "not in time order" in caplog.text
    np.testing.assert_array_equal(got.values[:, 0], frame["temperature"].to_numpy(np.float64))


def test_time_column_is_detected_by_content(tmp_path, weather_path):
    frame = pd.read_csv(weather_path).iloc[:100].rename(columns={"time": "when"})
    path = tmp_path / "renamed.csv"
    frame.to_csv(path, index=False)
    collection = read_series(path, targets=["temperature"], id_col="city")
    assert collection.series[0].time[0] == pd.Timestamp("2010-01-01 00:00")


def test_covariates_follow_targets(etth1_path):
    collection = read_series(etth1_path, targets=["OT"], covariates=["HUFL", "LULL"])
    raw = pd.read_csv(etth1_path, nrows=5)
    np.testing.assert_array_equal(collection.series[0].values[:5], raw[["OT", "HUFL", "LULL"]].to_numpy(np.float64))


def test_gaps_are_filled_from_rows_before_each_split_border(tmp_path, weather_path):
    """Rows 66-73 are missing around the training border (row 70) and rows 85-87 inside the test split (from
    row 80): training rows take values from training rows only, and the test rows the last value before
    them, however the later rows change."""
    from tsattn.data.datamodule import ForecastDataModule
    from tsattn.data.split import RatioSplit

    frame = pd.read_csv(weather_path)
    seattle = frame[frame.city == "seattle"].iloc[:100].drop(columns="city").reset_index(drop=True)
    gappy = seattle.drop(index=[*range(66, 74), 85, 86, 87])

    def filled(table, name):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        datamodule = ForecastDataModule(
            str(tmp_path / f"{name}.csv"), missing="interpolate", lookback=4, horizon=2, split=RatioSplit(0.7, 0.1)
        )
        datamodule.setup()
        assert (datamodule.borders[name].train_end, datamodule.borders[name].val_end) == (70, 80)
        return datamodule.collection.series[0].values[:, 0], datamodule.scaler.to_dict()["stats"][name]

    values, stats = filled(gappy, "gappy")
    temperature = seattle["temperature"].to_numpy()
    np.testing.assert_allclose(values[66:70], temperature[65], rtol=1e-6)  # carried to the border, not bridged
    np.testing.assert_allclose(values[85:88], temperature[84], rtol=1e-6)  # a test input holds no later value
    for after in (74, 88):
        changed = gappy.copy()
        changed.loc[changed.index >= after, "temperature"] += 50.0
        moved, moved_stats = filled(changed, f"changed{after}")
        np.testing.assert_array_equal(moved[:after], values[:after])
        assert moved_stats == stats
    # The control: interpolated over the whole file at once, those rows lean on the rows after them.
    whole = read_series(tmp_path / "gappy.csv", missing="interpolate").series[0].values[:, 0]
    assert not np.allclose(whole[66:70], values[66:70]) and not np.allclose(whole[85:88], values[85:88])


def test_no_error_is_swallowed_by_a_broad_except():
    """A bare `except:` or `except Exception` that does not re-raise hides real errors behind a fallback
    (the CSV reader used to: any pyarrow failure, memory errors included, became a second read)."""
    import ast
    from pathlib import Path

    import tsattn

    broad = {"Exception", "BaseException"}
    offenders = []
    for path in Path(tsattn.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ExceptHandler):
                continue
            names = [n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)] if node.type else ["bare"]
            reraises = any(isinstance(n, ast.Raise) for n in ast.walk(node))
            if (not names or set(names) & (broad | {"bare"})) and not reraises:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_zone_aware_times_from_python_or_parquet_read_as_text_with_offsets_does():
    """A constant offset keeps the wall clock; a daylight-saving switch is read as UTC, on a regular grid."""
    from tsattn.data.io import series_from_frame

    berlin = pd.date_range("2024-10-26 22:00", periods=8, freq="h", tz="Europe/Berlin")  # crosses 27 Oct 03:00
    across = series_from_frame(pd.DataFrame({"time": berlin, "v": np.arange(8.0)}), "x", "s")
    assert (np.diff(across.series[0].time.asi8) == 3600 * 10**9).all()
    assert across.series[0].time[0] == pd.Timestamp("2024-10-26 20:00")  # 22:00 CEST is 20:00 UTC
    summer = pd.date_range("2024-07-01 00:00", periods=8, freq="h", tz="Europe/Berlin")
    steady = series_from_frame(pd.DataFrame({"time": summer, "v": np.arange(8.0)}), "x", "s")
    assert steady.series[0].time[0] == pd.Timestamp("2024-07-01 00:00")  # the wall clock, as the file states it


def test_ragged_rows_are_found_as_csv_splits_records_and_only_they_are_refused(tmp_path):
    """A quoted name after a space, blank and whitespace lines, CRLF line ends and a cell with a line break
    read as before; a short row is refused with its line, counted as the file counts it."""
    from tsattn.data.io import read_frame

    fine = tmp_path / "fine.csv"
    fine.write_bytes(b'\r\ntime, "load, MW"\r\n2024-01-01 00:00,1\r\n   \r\n"2024-01-01\n01:00",2\r\n')
    frame = read_frame(fine)
    assert list(frame.columns) == ["time", "load, MW"] and frame["load, MW"].tolist() == ["1", "2"]
    short = tmp_path / "short.csv"
    short.write_bytes(b"\r\ntime,load\r\n2024-01-01 00:00,1\r\n\r\n2024-01-01 01:00\r\n2024-01-01 02:00,3\r\n")
    with pytest.raises(TsattnError, match=r"short\.csv is not a well-formed CSV \(line 5 has 1 field, the header 2\)"):
        read_frame(short)
