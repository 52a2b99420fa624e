"""Static covariates (data.static_covariates): one value per series of a long file, numeric or a level.

On two ETTh1 series (tests/conftest.py ett_long_path) with a site (a level) and a capacity (a number) each.
Parity of training and forecasting windows with static covariates is in test_parity.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import build_bundle
from tsattn.data.static import MAX_LEVELS, StaticEncoder
from tsattn.errors import TsattnError

OVERRIDES = [
    "data=csv",
    "data.id_col=id",
    "data.targets=[MUFL]",
    "data.static_covariates=[site,capacity]",
    "data.lookback=48",
    "data.horizon=12",
    "model=lstm_seq2seq",
    "model.net.hidden_size=8",
]


@pytest.fixture(scope="module")
def static_model(ett_long_path, tmp_path_factory):
    bundle_dir, run = build_bundle(tmp_path_factory.mktemp("static"), *OVERRIDES, f"data.path={ett_long_path}")
    return str(bundle_dir), run


def test_the_code_is_a_standardised_number_and_a_one_hot_level_at_every_known_step(static_model):
    _, run = static_model
    datamodule = run.datamodule
    assert datamodule.static_encoder.to_dict() == {
        "columns": ["site", "capacity"],
        "numeric": {"capacity": [32.5, 7.5]},  # mean and std over the two series
        "categorical": {"site": ["north", "south"]},
    }
    n_calendar = 2 * len(datamodule.calendar_names)
    assert datamodule.dims["n_known"] == n_calendar + 3
    dataset = datamodule.datasets["train"]
    for series_index, code in ((0, [1.0, 0.0, 1.0]), (1, [0.0, 1.0, -1.0])):
        window = int(np.flatnonzero(dataset.series.numpy() == series_index)[5])
        batch = dataset[[window]]
        known_past = batch["x"][0, :, 1 + n_calendar :].numpy()  # [L, 3]: after MUFL and the calendar
        known_future = batch["known_future"][0, :, n_calendar:].numpy()  # [H, 3]
        np.testing.assert_allclose(known_past, np.tile(code, (48, 1)))
        np.testing.assert_allclose(known_future, np.tile(code, (12, 1)))


def test_forecast_reads_each_series_code_and_an_unseen_level_codes_as_zeros(static_model, ett_long_path):
    import tsattn

    bundle_dir, _ = static_model
    model = tsattn.load(bundle_dir)
    history = pd.read_csv(ett_long_path)[["id", "date", "MUFL", "site", "capacity"]]
    history = history[history.groupby("id").cumcount(ascending=False) >= 12]
    base = model.forecast(history)
    swapped = history.assign(site=history["site"].map({"north": "south", "south": "north"}))
    moved = model.forecast(swapped)
    assert not np.allclose(base["MUFL"], moved["MUFL"])  # the level is read
    unseen = model.forecast(history.assign(site="east"))  # a new site: the code's level part is zeros
    spec_codes = StaticEncoder.from_dict(model.schema["static"]).encode({"site": "east", "capacity": 40.0})
    np.testing.assert_allclose(spec_codes, [0.0, 0.0, 1.0])
    assert np.isfinite(unseen["MUFL"]).all()
    for known in (base, moved):  # neither north's code nor south's
        assert np.abs(unseen["MUFL"].to_numpy() - known["MUFL"].to_numpy()).max() > 1e-5
    # Backtest reads the code from the history too, and matches forecast at an origin.
    second = history[history["id"] == "second"].reset_index(drop=True)
    result = model.backtest(second, step=600)
    origin = result.rows["origin"].iloc[0]
    end = int(np.flatnonzero(pd.to_datetime(second["date"]) == origin)[0]) + 1
    expected = model.forecast(second.iloc[:end])["MUFL"]
    np.testing.assert_allclose(result.rows[result.rows["origin"] == origin]["model"], expected, rtol=1e-5)


def test_reading_mistakes_are_one_line(ett_long_path, tmp_path):
    from tsattn.data.io import read_series

    frame = pd.read_csv(ett_long_path)
    changing = frame.assign(capacity=np.where(frame.index == 1500, 41.0, frame["capacity"]))
    changing.to_csv(tmp_path / "changing.csv", index=False)
    with pytest.raises(TsattnError, match=r"static covariate 'capacity' changes within series 'first' \(40, 41\)"):
        read_series(tmp_path / "changing.csv", targets=["MUFL"], static_covariates=["capacity"], id_col="id")
    empty = frame.assign(site=np.where(frame["id"] == "second", "", frame["site"]))
    empty.to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(TsattnError, match="'site' is empty in every row of series 'second'"):
        read_series(tmp_path / "empty.csv", targets=["MUFL"], static_covariates=["site"], id_col="id")
    with pytest.raises(TsattnError, match=r"describe the series of a long file; set data\.id_col"):
        read_series(ett_long_path, targets=["MUFL"], static_covariates=["site"])
    # Empty cells beside the series' value are fine: the value is the one that is given.
    sparse = frame.assign(site=np.where(frame.index % 7 == 0, "", frame["site"]))
    sparse.to_csv(tmp_path / "sparse.csv", index=False)
    read = read_series(tmp_path / "sparse.csv", targets=["MUFL"], static_covariates=["site"], id_col="id")
    assert read.static == {"first": {"site": "north"}, "second": {"site": "south"}}


def test_too_many_levels_are_refused_and_a_constant_number_is_only_centred():
    many = {f"s{i}": {"store": f"store-{i}", "size": 3.0} for i in range(MAX_LEVELS + 1)}
    with pytest.raises(TsattnError, match=f"'store' has {MAX_LEVELS + 1} levels"):
        StaticEncoder.fit(["store", "size"], many, "stores.csv")
    encoder = StaticEncoder.fit(["size"], many, "stores.csv")
    assert encoder.numeric == {"size": (3.0, 1.0)} and encoder.encode({"size": 5.0}).tolist() == [2.0]


def test_a_tampered_static_encoder_is_refused(static_model, tmp_path):
    from tsattn.inference.bundle import load_bundle

    bundle_dir, _ = static_model
    for spoil in (
        lambda s: s["numeric"].update(capacity=[32.5, -1.0]),
        lambda s: s["categorical"].update(site=["north"] * 2),
        lambda s: s.update(columns=["site"]),
        lambda s: s["categorical"].update(site=["north", "south", "west"]),
    ):
        copy = shutil.copytree(bundle_dir, tmp_path / f"t{len(list(tmp_path.iterdir()))}")
        schema = json.loads((copy / "schema.json").read_text())
        spoil(schema["static"])
        (copy / "schema.json").write_text(json.dumps(schema))
        with pytest.raises(TsattnError) as caught:
            load_bundle(copy)
        assert "\n" not in str(caught.value) and "schema.json" in str(caught.value)


def test_levels_keep_their_text_and_a_history_reads_them_as_the_model_did():
    """ "007" is a level, not the number 7, when the training file made the column categorical; a history
    whose cells all look like numbers reads it the same way, so the series keeps its code."""
    from tsattn.data.static import read_static

    training = pd.DataFrame({"id": ["a", "b", "c"], "store": ["007", "A01", "007"]})
    static = read_static(training, training["id"], ["store"], "train.csv")
    encoder = StaticEncoder.fit(["store"], static, "train.csv")
    assert encoder.categorical == {"store": ["007", "A01"]}
    history = pd.DataFrame({"id": ["a", "a"], "store": ["007", "007"]})
    read = read_static(history, history["id"], ["store"], "history.csv", encoder.kinds)
    assert read == {"a": {"store": "007"}} and encoder.encode(read["a"]).tolist() == [1.0, 0.0]
    numeric = StaticEncoder.fit(["size"], {"a": {"size": 1.0}, "b": {"size": 3.0}}, "train.csv")
    text = pd.DataFrame({"id": ["a"], "size": ["large"]})
    with pytest.raises(TsattnError, match=r"static covariate 'size' holds 'large'.*reads it as a number"):
        read_static(text, text["id"], ["size"], "history.csv", numeric.kinds)


def test_static_levels_keep_codes_written_in_digits_as_levels(ett_long_path, tmp_path):
    """A store code "001" is a level: data.static_levels one-hot codes it with its text kept, where the
    column alone (every value a number) would be standardised as the amounts 1 and 10."""
    from tsattn.data.datamodule import ForecastDataModule
    from tsattn.data.io import read_series

    frame = pd.read_csv(ett_long_path)
    frame["store"] = np.where(frame["id"] == "first", "001", "010")
    frame.to_csv(tmp_path / "stores.csv", index=False)
    settings = dict(targets=["MUFL"], static_covariates=["store", "capacity"], id_col="id")
    as_numbers = read_series(tmp_path / "stores.csv", **settings)
    assert as_numbers.static["first"]["store"] == 1.0  # the control: without static_levels, an amount
    module = ForecastDataModule(
        str(tmp_path / "stores.csv"), lookback=48, horizon=12, static_levels=["store"], **settings
    )
    module.setup()
    assert module.collection.static == {
        "first": {"store": "001", "capacity": 40.0},
        "second": {"store": "010", "capacity": 25.0},
    }
    assert module.static_encoder.categorical == {"store": ["001", "010"]}
    assert module.static_encoder.kinds == {"store": "categorical", "capacity": "numeric"}
    with pytest.raises(TsattnError, match=r"data\.static_levels names 'site', which is not among data\.static_co"):
        read_series(tmp_path / "stores.csv", static_levels=["site"], **settings)
    # Resuming the checkpoint without static_levels would read 1.0 where it learned "001" (a code of zeros).
    resumed = ForecastDataModule(str(tmp_path / "stores.csv"), lookback=48, horizon=12, **settings)
    resumed.load_state_dict(module.state_dict())
    with pytest.raises(TsattnError, match=r"read static covariate 'store' as levels but this run reads it otherwise"):
        resumed.setup()
