"""Windows: the ETTh1 protocol counts, alignment with the file's rows, borders, and layout independence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tsattn.data.calendar import calendar_features
from tsattn.data.datamodule import ForecastDataModule
from tsattn.data.split import SPLITS, RatioSplit, RowSplit
from tsattn.errors import TsattnError

ETT_SPLIT = dict(train_end=8640, val_end=11520, test_end=14400)


@pytest.fixture(scope="module")
def ett(etth1_path):
    datamodule = ForecastDataModule(
        str(etth1_path), lookback=96, horizon=96, split=RowSplit(**ETT_SPLIT), calendar="none"
    )
    datamodule.setup()
    return datamodule


def _all_windows(datamodule, split):
    dataset = datamodule.datasets[split]
    return dataset[list(range(len(dataset)))]


def test_etth1_protocol_window_counts(ett):
    assert len(ett.datasets["test"]) == 2785
    assert len(ett.datasets["val"]) == 2785
    assert len(ett.datasets["train"]) == 8640 - 96 - 96 + 1


def test_repeating_the_last_value_scores_the_published_protocol_figure(ett):
    """Over the protocol's 2785 scaled test windows (M), repeating the last value must give the figure the
    protocol's papers publish for it, 1.295: with nothing trained, that checks the borders, the scaler fit on
    the training rows and the window count at once (benchmarks/accuracy.py checks S, 0.069, end to end)."""
    batch = _all_windows(ett, "test")
    y = batch["y"]  # [2785, 96, 7]
    last = batch["x"][:, -1:, : y.shape[-1]]  # [2785, 1, 7]: the targets come first among the inputs
    assert abs(float(((last - y) ** 2).mean()) - 1.295) < 0.0015


def test_windows_align_with_the_file_rows(ett, etth1_path):
    raw = pd.read_csv(etth1_path)[ett.collection.targets].to_numpy(np.float32)
    scaled = ett.scaler.transform("ETTh1", raw)  # [T, 7]
    batch = _all_windows(ett, "test")
    first_target = batch["first_target"].numpy()
    assert first_target[0] == 11520
    assert first_target[-1] + 96 == 14400
    for w in (0, 1, 1000, 2784):
        t0 = first_target[w]
        # The input ends on the row before the first target; the targets are the next 96 rows.
        np.testing.assert_allclose(batch["x"][w].numpy(), scaled[t0 - 96 : t0], rtol=1e-6)
        np.testing.assert_allclose(batch["y"][w].numpy(), scaled[t0 : t0 + 96], rtol=1e-6)


@pytest.mark.parametrize("split", SPLITS)
def test_no_target_crosses_a_split_border(ett, split):
    first_target = _all_windows(ett, split)["first_target"].numpy()
    low, high = {"train": (0, 8640), "val": (8640, 11520), "test": (11520, 14400)}[split]
    assert first_target.min() >= max(low, 96)
    assert first_target.max() + 96 <= high
    assert np.all(np.diff(first_target) == 1)  # every window, stride 1, in time order


def test_training_stride_thins_only_training_windows(etth1_path):
    datamodule = ForecastDataModule(
        str(etth1_path), lookback=96, horizon=96, split=RowSplit(**ETT_SPLIT), stride=4, calendar="none"
    )
    datamodule.setup()
    assert len(datamodule.datasets["train"]) == len(range(0, 8640 - 192 + 1, 4))
    assert len(datamodule.datasets["test"]) == 2785


def test_train_tail_keeps_the_training_windows_whose_targets_end_the_training_rows(etth1_path, ett_long_path):
    """N-BEATS's history limit: training targets from the last train_tail rows before each series' border only."""

    def windows(path, **kwargs):
        datamodule = ForecastDataModule(
            str(path), lookback=96, horizon=96, calendar="none", train_tail=960, split=RatioSplit(0.7, 0.1), **kwargs
        )  # the loads as targets: the site and capacity columns are static covariates, not values
        datamodule.setup()
        return datamodule

    long = windows(ett_long_path, id_col="id", targets=["MUFL"])
    train = _all_windows(long, "train")
    for series in range(len(long.collection.series)):
        border = long.borders[long.collection.series[series].id].train_end
        first = train["first_target"][train["series"] == series].numpy()
        # Every series gives the same windows: targets from border - 960 to the border, every one.
        np.testing.assert_array_equal(first, np.arange(border - 960, border - 96 + 1))
    full = ForecastDataModule(
        str(ett_long_path), id_col="id", targets=["MUFL"], lookback=96, horizon=96, calendar="none"
    )
    full.setup()
    assert len(full.datasets["train"]) > len(long.datasets["train"])  # the control: without it, every window
    for split in ("val", "test"):  # evaluation windows are never thinned
        assert len(full.datasets[split]) == len(long.datasets[split])
    # With a stride, the grid counts back from the border: the window ending on it is kept, every series alike.
    strided = windows(ett_long_path, id_col="id", targets=["MUFL"], stride=5)
    train = _all_windows(strided, "train")
    for series in range(len(strided.collection.series)):
        border = strided.borders[strided.collection.series[series].id].train_end
        first = train["first_target"][train["series"] == series].numpy()
        np.testing.assert_array_equal(first, np.arange(border - 96, border - 960 - 1, -5)[::-1])
    with pytest.raises(TsattnError, match="data.train_tail=48 leaves no training window of horizon 96"):
        ForecastDataModule(str(etth1_path), lookback=96, horizon=96, train_tail=48)


def test_long_and_wide_forms_give_identical_windows(tmp_path, etth1_path):
    """One multivariate series written wide, and two of its halves written long, against two wide files."""
    frame = pd.read_csv(etth1_path, nrows=2000)
    wide = tmp_path / "wide.csv"
    frame.to_csv(wide, index=False)
    long = tmp_path / "long.csv"
    frame.assign(site="a").to_csv(long, index=False)

    def windows(path, **kwargs):
        datamodule = ForecastDataModule(str(path), lookback=48, horizon=24, split=RatioSplit(0.6, 0.2), **kwargs)
        datamodule.setup()
        return {split: _all_windows(datamodule, split) for split in SPLITS}

    from_wide, from_long = windows(wide), windows(long, id_col="site")
    for split in SPLITS:
        for key in ("x", "y", "known_future", "first_target"):
            torch.testing.assert_close(from_wide[split][key], from_long[split][key], rtol=0, atol=0)

    # Two series in one long file: the same windows as each series read alone, and none spans both.
    halves = [frame.iloc[:1000].assign(site="a"), frame.iloc[1000:].assign(site="b")]
    pd.concat(halves).to_csv(long, index=False)
    both = windows(long, id_col="site")
    for i, half in enumerate(halves):
        alone_path = tmp_path / f"half{i}.csv"
        half.drop(columns="site").to_csv(alone_path, index=False)
        alone = windows(alone_path)
        mine = both["test"]["series"] == i
        torch.testing.assert_close(both["test"]["x"][mine], alone["test"]["x"], rtol=0, atol=0)
        torch.testing.assert_close(both["test"]["y"][mine], alone["test"]["y"], rtol=0, atol=0)


def test_evaluation_loaders_keep_the_last_short_batch(ett):
    ett.eval_batch_size = 1000
    sizes = [len(batch["y"]) for batch in ett.test_dataloader()]
    assert sizes == [1000, 1000, 785]


@pytest.mark.parametrize("batches, world", [(1, 4), (2, 5), (3, 2), (5, 2), (4, 4)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_rank_gets_as_many_batches_and_evaluation_scores_each_window_once(monkeypatch, batches, world, shuffle):
    """Under DDP a rank with fewer batches would wait forever at a collective the others never reach."""
    from tsattn.data import windows
    from tsattn.data.windows import Padding, WindowBatchSampler

    size = batches * 10 - 3  # the last batch is short
    per_rank = []
    for rank in range(world):
        monkeypatch.setattr(windows, "_rank_and_world", lambda rank=rank: (rank, world))
        sampler = WindowBatchSampler(size, batch_size=10, shuffle=shuffle, seed=0)
        yielded = list(sampler)
        assert len(yielded) == len(sampler) >= 1
        per_rank.append(yielded)
    assert len({len(r) for r in per_rank}) == 1  # the same number on every rank
    every = torch.cat([b.index if isinstance(b, Padding) else b for r in per_rank for b in r])
    assert set(every.tolist()) == set(range(size))  # every window is seen
    if not shuffle:  # evaluation: the windows that are scored are every window, exactly once
        scored = torch.cat([b for r in per_rank for b in r if not isinstance(b, Padding)])
        assert sorted(scored.tolist()) == list(range(size))


def test_future_covariates_are_known_channels_of_the_lookback_and_the_horizon(ett_long_path):
    """A window's inputs are [targets, past covariates, calendar, future covariates] over its lookback rows,
    and its horizon block is [calendar, future covariates] over the rows it forecasts, each scaled with its
    series' training statistics; no target or past covariate reaches the horizon block."""
    datamodule = ForecastDataModule(
        str(ett_long_path),
        targets=["MUFL"],
        covariates=["OT"],
        future_covariates=["HUFL", "HULL"],
        id_col="id",
        lookback=24,
        horizon=12,
        split=RatioSplit(0.7, 0.1),
    )
    datamodule.setup()
    frame = pd.read_csv(ett_long_path)
    n_calendar = 2 * len(datamodule.calendar_names)
    assert n_calendar == 6  # hourly data: hour of day, day of week and day of year as sin/cos pairs
    assert datamodule.dims == {"n_features": 2 + n_calendar + 2, "n_targets": 1, "n_known": n_calendar + 2}
    dataset = datamodule.datasets["test"]
    picks = [0, len(dataset) // 2, len(dataset) - 1]
    batch = dataset[picks]
    for row, window in enumerate(picks):
        series_id = datamodule.collection.series[int(dataset.series[window])].id
        rows = frame[frame["id"] == series_id].reset_index(drop=True)
        origin = int(dataset.first_target[window])
        stats = datamodule.scaler.stats[series_id]
        scaled = (rows[["MUFL", "OT", "HUFL", "HULL"]].to_numpy() - stats["mean"]) / stats["std"]  # [T, 4]
        past, ahead = scaled[origin - 24 : origin], scaled[origin : origin + 12]
        x, future = batch["x"][row].numpy(), batch["known_future"][row].numpy()
        np.testing.assert_allclose(x[:, :2], past[:, :2], rtol=1e-5, atol=1e-5)  # values: MUFL, OT
        np.testing.assert_allclose(x[:, -2:], past[:, 2:], rtol=1e-5, atol=1e-5)  # known: HUFL, HULL
        np.testing.assert_allclose(future[:, -2:], ahead[:, 2:], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batch["y"][row].numpy()[:, 0], ahead[:, 0], rtol=1e-5, atol=1e-5)
        # The calendar channels of the horizon are those of the forecast steps, beside the covariates.
        times = pd.DatetimeIndex(pd.to_datetime(rows["date"])[origin : origin + 12])
        np.testing.assert_allclose(
            future[:, :n_calendar], calendar_features(times, datamodule.calendar_names), atol=1e-6
        )
    # Scaling statistics come from training rows only, for future covariates as for targets.
    first = frame[frame["id"] == "first"]
    train_end = datamodule.borders["first"].train_end
    np.testing.assert_allclose(
        datamodule.scaler.stats["first"]["mean"][2:], first[["HUFL", "HULL"]].iloc[:train_end].mean(), rtol=1e-6
    )
