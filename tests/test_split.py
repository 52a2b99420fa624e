"""Splits by name (`data.split=tail`), the ratio split's fall-back for short series, and series without windows."""

from __future__ import annotations

import csv
import logging

import pandas as pd
import pytest

from tests.conftest import m4_hourly_path
from tsattn.data.datamodule import ForecastDataModule
from tsattn.data.split import Borders, RatioSplit, RowSplit, TailSplit, resolve_split, windowless_series
from tsattn.errors import TsattnError


@pytest.fixture(scope="module")
def short_series_csv(tmp_path_factory):
    """A competition set as users bring it: 60 real M4 Hourly series cut to 80, 87, ... 493 values (long CSV)."""
    with (m4_hourly_path() / "Hourly-train.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))[1:61]
    frames = []
    for i, row in enumerate(rows):
        values = [float(v) for v in row[1:] if v][: 80 + 7 * i]
        times = pd.date_range("2000-01-01", periods=len(values), freq="h")
        frames.append(pd.DataFrame({"id": row[0], "time": times, "value": values}))
    path = tmp_path_factory.mktemp("short") / "short.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path


def _setup(path, split):
    datamodule = ForecastDataModule(str(path), id_col="id", lookback=48, horizon=24, split=split, calendar="none")
    datamodule.setup()
    return datamodule


def test_splits_by_name_and_a_wrong_name_in_one_line():
    lengths = {"a": 1000, "b": 700}
    tail, note = resolve_split("tail", lengths, lookback=96, horizon=24)
    assert isinstance(tail, TailSplit) and (tail.val, tail.test) == (24, 24) and note is None
    ratio, note = resolve_split("ratio", lengths, lookback=96, horizon=24)
    assert isinstance(ratio, RatioSplit) and (ratio.train, ratio.val) == (0.7, 0.1) and note is None
    rows = RowSplit(500, 600)
    assert resolve_split(rows, lengths, 96, 24) == (rows, None)  # an explicit splitter is kept as it is
    with pytest.raises(TsattnError, match=r"^data.split='weekly': choose one of ratio, tail, or a splitter config"):
        resolve_split("weekly", lengths, 96, 24)
    with pytest.raises(TsattnError, match="short_series='drop': choose tail or keep"):
        RatioSplit(short_series="drop")


def test_windowless_series_name_the_split_and_the_reason():
    # 200 rows, L=48, H=24: train rows [0, 100) give windows; val [100, 110) is shorter than H; test [110, 200)
    # is fine. A second series' 40 training rows cannot hold L + H, and 40 rows come before its validation.
    borders = {"long": Borders(100, 110, 200), "short": Borders(40, 70, 100)}
    missing = windowless_series(borders, lookback=48, horizon=24)
    assert missing == {
        "train": {"short": "40 train rows hold no lookback of 48 and horizon of 24"},
        "val": {
            "long": "10 val rows, fewer than the horizon of 24",
            "short": "40 rows before its val rows, fewer than the lookback of 48",
        },
        "test": {},
    }


def test_a_ratio_split_that_leaves_short_series_without_windows_becomes_a_tail_split(short_series_csv, caplog):
    with caplog.at_level(logging.WARNING, logger="tsattn.data.datamodule"):
        kept = _setup(short_series_csv, RatioSplit(short_series="keep"))
    # 10% of 80 to 300 rows is fewer than H=24 validation rows: 23 of the 60 series give no validation window.
    counts = {split: len(ids) for split, ids in kept.windowless.items()}
    assert counts == {"train": 4, "val": 23, "test": 5}
    assert "23 of 60 series give no val window (series 'H1': 8 val rows, fewer than the horizon of 24)" in caplog.text
    assert len(kept.datasets["val"]) == 490  # the 37 others' windows only

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tsattn.data.datamodule"):
        default = _setup(short_series_csv, None)  # RatioSplit() with short_series="tail": data=csv's default
    expected = "leave 23 of 60 series without a window (of 4 train, 23 val, 5 test); splitting each series from its end"
    assert expected in caplog.text
    # Each series' last 24 values are its test window, the 24 before them its validation window.
    assert all(b.test_end - b.val_end == 24 and b.val_end - b.train_end == 24 for b in default.borders.values())
    assert len(default.datasets["test"]) == 60
    # The three series whose 32 training rows come before a validation window that needs a lookback of 48:
    assert {len(ids) for ids in default.windowless.values()} == {6, 3, 0}
    assert len(default.datasets["val"]) == 57
    assert default.split_used == "TailSplit(val=24, test=24)" and kept.split_used.startswith("RatioSplit(")
    # `data.split=tail` gives the same borders without the detour.
    assert _setup(short_series_csv, "tail").borders == default.borders


def test_the_bundled_data_keeps_its_ratio_split(weather_path):
    """Long series that all give windows under the ratio split keep it: the fall-back changes nothing there."""
    datamodule = ForecastDataModule(
        str(weather_path), targets=["temperature"], id_col="city", missing="interpolate", lookback=48, horizon=12
    )
    datamodule.setup()
    lengths = {sid: b.test_end for sid, b in datamodule.borders.items()}
    assert all(b.train_end == int(0.7 * lengths[sid]) for sid, b in datamodule.borders.items())
    assert datamodule.windowless == {"train": {}, "val": {}, "test": {}}
