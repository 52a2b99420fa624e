"""Scaling: fit on training rows only (a leak test), invertible, and saved as plain JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from tsattn.data.datamodule import ForecastDataModule
from tsattn.data.scaling import StandardScaler
from tsattn.data.split import RowSplit

ETT_SPLIT = RowSplit(train_end=8640, val_end=11520, test_end=14400)


def _fitted_stats(path):
    datamodule = ForecastDataModule(str(path), lookback=96, horizon=96, split=ETT_SPLIT)
    datamodule.setup()
    return datamodule.scaler.to_dict()["stats"]["ETTh1"], datamodule


def test_values_after_the_training_border_do_not_move_the_scaler(tmp_path, etth1_path):
    frame = pd.read_csv(etth1_path)
    original, datamodule = _fitted_stats(etth1_path)
    # The statistics the losses in the data's units read (scaler mean and std, MASE's seasonal scale) as well.
    original_units = datamodule.datasets["train"].units
    assert set(original_units) == {"target_mean", "target_std", "seasonal_scale", "smape_reference"}

    # Wreck everything from the border on: any leak into the statistics would show.
    rng = np.random.default_rng(0)
    changed = frame.copy()
    value_columns = changed.columns[1:]
    changed.loc[8640:, value_columns] = rng.normal(1000.0, 500.0, size=(len(frame) - 8640, len(value_columns)))
    changed_path = tmp_path / "ETTh1.csv"
    changed.to_csv(changed_path, index=False)
    after, datamodule = _fitted_stats(changed_path)
    assert after == original
    for key, table in datamodule.datasets["test"].units.items():
        assert torch.equal(table, original_units[key]), key

    # And the one row before the border does count: the test above can fail.
    changed.loc[8639, value_columns] += 100.0
    changed.to_csv(changed_path, index=False)
    moved, datamodule = _fitted_stats(changed_path)
    assert moved["mean"] != original["mean"]
    for key in ("seasonal_scale", "smape_reference"):
        assert not torch.equal(datamodule.datasets["train"].units[key], original_units[key]), key


def test_statistics_are_those_of_the_training_rows(etth1_path):
    stats, _ = _fitted_stats(etth1_path)
    train = pd.read_csv(etth1_path).iloc[:8640, 1:].to_numpy(np.float64)
    np.testing.assert_allclose(stats["mean"], train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats["std"], train.std(axis=0), rtol=1e-4)


def test_round_trip_through_json_and_inverse(etth1_path):
    _, datamodule = _fitted_stats(etth1_path)
    scaler = StandardScaler.from_json(datamodule.scaler.to_json())
    raw = datamodule.collection.series[0].values[:500]
    scaled = scaler.transform("ETTh1", raw)
    np.testing.assert_allclose(scaler.inverse_transform("ETTh1", scaled), raw, rtol=1e-5, atol=1e-4)
    # Targets alone (the first C channels) invert too: forecasts carry only targets.
    np.testing.assert_allclose(scaler.inverse_transform("ETTh1", scaled[:, :2]), raw[:, :2], rtol=1e-5, atol=1e-4)


def test_the_scaler_travels_in_the_datamodule_state(etth1_path):
    _, datamodule = _fitted_stats(etth1_path)
    state = datamodule.state_dict()
    assert state["borders"]["ETTh1"] == {"train_end": 8640, "val_end": 11520, "test_end": 14400}
    fresh = ForecastDataModule(str(etth1_path), lookback=96, horizon=96, split=ETT_SPLIT)
    fresh.load_state_dict(state)
    assert fresh.scaler.to_dict() == datamodule.scaler.to_dict()


def test_a_state_loaded_before_setup_keeps_its_scaler(tmp_path, etth1_path):
    """Restoring a checkpoint's datamodule state first, then setting up, must not refit the scaler."""
    _, trained = _fitted_stats(etth1_path)
    shifted = pd.read_csv(etth1_path)
    shifted["OT"] = shifted["OT"] + 10.0  # other data: a fresh fit would give another mean
    shifted.to_csv(tmp_path / "ETTh1.csv", index=False)  # the same series name, other values

    restored = ForecastDataModule(str(tmp_path / "ETTh1.csv"), lookback=96, horizon=96, split=ETT_SPLIT)
    restored.load_state_dict(trained.state_dict())
    restored.setup()
    assert restored.scaler.to_dict() == trained.scaler.to_dict()
    # The windows are scaled with the restored statistics: OT sits 10 / std higher than in the original.
    ot, std = trained.collection.columns.index("OT"), trained.scaler.stats["ETTh1"]["std"]
    difference = restored.datasets["train"][[0]]["x"][0, :, ot] - trained.datasets["train"][[0]]["x"][0, :, ot]
    np.testing.assert_allclose(difference.numpy(), 10.0 / std[ot], rtol=1e-4)

    fresh = ForecastDataModule(str(tmp_path / "ETTh1.csv"), lookback=96, horizon=96, split=ETT_SPLIT)
    fresh.setup()
    assert fresh.scaler.to_dict() != trained.scaler.to_dict()  # the control: without the state, a new fit


def test_statistics_are_two_arrays_read_through_views():
    """A million series' statistics are [S, F] arrays, not two small arrays per series (the bundle memory
    bound rests on it): every read is a view into them, and none can change the fitted statistics."""
    import pytest

    stats = {f"s{i}": {"mean": [float(i), 2.0 * i], "std": [1.0 + i, 1.0]} for i in range(5)}
    scaler = StandardScaler(["a", "b"], stats)
    assert list(scaler.stats) == list(stats) and len(scaler.pairs) == 5 and "s9" not in scaler.stats
    mean, std = scaler.pairs["s3"]
    assert mean.tolist() == [3.0, 6.0] and std.tolist() == [4.0, 1.0]
    assert mean.base is scaler.stats["s1"]["mean"].base is not None  # one [S, F] array behind every series
    with pytest.raises(ValueError, match="read-only"):
        mean[0] = 0.0
    np.testing.assert_allclose(scaler.transform("s3", np.array([[7.0, 6.0]])), [[1.0, 0.0]])
    assert StandardScaler.from_json(scaler.to_json()).to_dict() == scaler.to_dict() == {
        "columns": ["a", "b"],
        "stats": {sid: {k: [float(v) for v in s[k]] for k in ("mean", "std")} for sid, s in stats.items()},
    }
