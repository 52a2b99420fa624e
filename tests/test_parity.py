"""One model, two paths: `forecast()` from a history cut at a test origin equals what training scored there.

Training scores test windows built by the datamodule (scaler, calendar, windows as tensors); forecasting
rebuilds the same window from a user's table through the bundle. Any drift between the two (a calendar
feature, an off-by-one row, the scaler, a fold) would make the reported test metrics describe a model that
users never run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import build_bundle

WEATHER = ["data=weather", "data.lookback=48", "data.horizon=12"]
MODELS = {
    "lstm_seq2seq": ["model=lstm_seq2seq", "model.net.hidden_size=8"],
    "attention_seq2seq": ["model=attention_seq2seq", "model.net.hidden_size=8", "model.net.score=additive"],
    "gru_seq2seq_parallel": [
        "model=lstm_seq2seq",
        "model.net.hidden_size=8",
        "model.net.cell=gru",
        "model.net.decoding=parallel",
    ],
    "transformer_generative": [
        "model=transformer",
        "model.net.d_model=16",
        "model.net.label_len=12",
        "model.segment_len=1",
    ],
    "transformer_autoregressive": [
        "model=transformer",
        "model.net.d_model=16",
        "model.net.decoder_mode=autoregressive",
    ],
    "linear": ["model=linear"],
    "rlinear": ["model=rlinear"],
    "last_value": ["model=last_value"],
    "seasonal_naive": ["model=seasonal_naive"],
}


def _check_parity(bundle_dir, run, frame_of, picks: int = 3) -> int:
    """Cut every series at `picks` test origins, forecast, and compare with the module on the test windows."""
    from tsattn.inference.bundle import load_bundle
    from tsattn.inference.forecast import forecast, history_from_frame
    from tsattn.inference.future import future_from_frame

    bundle = load_bundle(bundle_dir)
    datamodule = run.datamodule
    dataset, collection = datamodule.datasets["test"], datamodule.collection
    targets = collection.targets
    checked = 0
    for pick in range(picks):
        chosen, cut = [], {}
        for i, series in enumerate(collection.series):
            windows = torch.nonzero(dataset.series == i).squeeze(1)
            window = int(windows[(len(windows) - 1) * pick // max(picks - 1, 1)])
            chosen.append(window)
            cut[series.id] = int(dataset.first_target[window])  # the origin: rows before it are the history
        batch = dataset[chosen]
        with torch.no_grad():
            scored = run.model.eval()(batch)["y_hat"]  # [B, H, C(, Q)], scaled, as the test step scores it
        history = pd.concat([frame_of(series, cut[series.id]) for series in collection.series], ignore_index=True)
        validated = history_from_frame(bundle, history)
        future = None
        if collection.future_covariates:  # the table a user hands --future: the H rows after each cut
            horizon = datamodule.horizon
            ahead = [frame_of(s, cut[s.id] + horizon).iloc[cut[s.id] :] for s in collection.series]
            observed = collection.targets + collection.covariates + collection.static_covariates
            table = pd.concat(ahead, ignore_index=True).drop(columns=observed)
            future = future_from_frame(bundle.schema, validated, table, "future")
        result = forecast(bundle, validated, future=future)
        for row, series in enumerate(collection.series):
            expected = datamodule.scaler.inverse_transform(series.id, run.model.point(scored[row]).numpy())  # [H, C]
            got = result if collection.id_col is None else result[result[collection.id_col] == series.id]
            np.testing.assert_allclose(got[targets].to_numpy(), expected, rtol=2e-5, atol=2e-5 * np.abs(expected).max())
            for qi, level in enumerate(bundle.schema["quantiles"] or ()):  # every level, calibrated or not
                level_expected = datamodule.scaler.inverse_transform(series.id, scored[row][..., qi].numpy())
                level_got = got[[f"{t}_q{level:g}" for t in targets]].to_numpy()
                atol = 2e-5 * np.abs(level_expected).max()
                np.testing.assert_allclose(level_got, level_expected, rtol=2e-5, atol=atol)
            expected_times = series.time[cut[series.id] : cut[series.id] + datamodule.horizon]
            assert list(pd.to_datetime(got[collection.time_col])) == list(expected_times)
            checked += 1
    return checked


def _long_frame(collection):
    def frame_of(series, end):
        columns = {collection.id_col: series.id, collection.time_col: series.time[:end].astype(str)}
        columns.update({name: series.values[:end, i] for i, name in enumerate(collection.columns)})
        columns.update({name: collection.static[series.id][name] for name in collection.static_covariates})
        return pd.DataFrame(columns)

    return frame_of


@pytest.mark.parametrize("model", MODELS)
def test_forecast_from_a_cut_history_equals_the_test_predictions(model, tmp_path):
    bundle_dir, run = build_bundle(tmp_path, *WEATHER, *MODELS[model])
    assert _check_parity(bundle_dir, run, _long_frame(run.datamodule.collection)) == 3 * 2


def test_parity_holds_through_channel_folds_segments_and_quantiles(tmp_path, etth1_path):
    """ETTh1, wide, 7 channels: channel independent, the last value subtracted, segments of 12, conformal quantiles."""
    overrides = [
        "experiment=etth1_attention_seq2seq",
        f"data.path={etth1_path}",
        "data.lookback=48",
        "data.horizon=24",
        "model.segment_len=12",
        "model.net.hidden_size=8",
        "model.net.quantiles=[0.1,0.5,0.9]",
        "model.conformal=true",  # the bundle applies the calibrated offsets as training's test did
        "data.calendar=auto",
    ]
    bundle_dir, run = build_bundle(tmp_path, *overrides)
    collection = run.datamodule.collection

    def wide_frame(series, end):
        columns = {collection.time_col: series.time[:end].astype(str)}
        columns.update({name: series.values[:end, i] for i, name in enumerate(collection.columns)})
        return pd.DataFrame(columns)

    assert _check_parity(bundle_dir, run, wide_frame, picks=4) == 4


@pytest.mark.parametrize(
    "model",
    [
        "lstm_seq2seq",
        "attention_seq2seq",
        "gru_seq2seq_parallel",
        "transformer_generative",
        "transformer_autoregressive",
    ],
)
def test_parity_holds_with_future_and_static_covariates(model, tmp_path, ett_long_path):
    """Two loads given as future covariates (beside a past covariate), and a site and a capacity per series
    as static covariates, reach every decoder the same way in training and in forecast(future=...), which
    takes the loads' horizon rows from the --future table and the static values from the history."""
    overrides = [
        "data=csv",
        f"data.path={ett_long_path}",
        "data.id_col=id",
        "data.targets=[MUFL]",
        "data.covariates=[OT]",
        "data.future_covariates=[HUFL,HULL]",
        "data.static_covariates=[site,capacity]",
        "data.lookback=48",
        "data.horizon=12",
    ]
    bundle_dir, run = build_bundle(tmp_path, *overrides, *MODELS[model])
    collection = run.datamodule.collection
    assert collection.columns == ["MUFL", "OT", "HUFL", "HULL"]
    assert collection.static == {
        "first": {"site": "north", "capacity": 40.0},
        "second": {"site": "south", "capacity": 25.0},
    }
    assert _check_parity(bundle_dir, run, _long_frame(collection)) == 3 * 2
