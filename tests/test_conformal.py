"""Conformal calibration of quantile intervals (model.conformal=true) on ETTh1's validation windows."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import build_bundle
from tsattn.errors import TsattnError
from tsattn.intervals import interval_pairs
from tsattn.models.conformal import widen

LEVELS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]


@pytest.fixture(scope="module")
def calibrated(etth1_path, tmp_path_factory):
    overrides = [
        "experiment=etth1_lstm_seq2seq",
        f"data.path={etth1_path}",
        "data.lookback=48",
        "data.horizon=12",
        "model.net.hidden_size=8",
        f"model.net.quantiles=[{','.join(map(str, LEVELS))}]",
        "model.conformal=true",
    ]
    return build_bundle(tmp_path_factory.mktemp("conformal"), *overrides)


def _outputs(module, dataset, offsets: bool):
    """Every window's quantiles, with or without the offsets, and the actuals. [N, H, C, Q], [N, H, C]."""
    saved = module.forecaster.interval_offsets
    module.forecaster.set_interval_offsets(saved if offsets else None)
    batch = dataset[list(range(len(dataset)))]
    with torch.no_grad():
        y_hat = module.eval()(batch)["y_hat"]
    module.forecaster.set_interval_offsets(saved)
    return y_hat, batch["y"]


def test_offsets_are_the_conformal_quantiles_of_the_validation_scores(calibrated):
    """Recomputed by hand from the validation windows: the ceil((n+1)(1-a))-th smallest score of each
    interval, step and channel; with them every interval covers at least its nominal share there."""
    _, run = calibrated
    module, dataset = run.model, run.datamodule.datasets["val"]
    offsets = module.forecaster.interval_offsets.numpy()  # [H, C, P]
    assert offsets.shape == (12, 7, 3)
    raw, y = (t.numpy() for t in _outputs(module, dataset, offsets=False))
    n = len(y)
    for p, (lower, upper, percent) in enumerate(interval_pairs(LEVELS)):
        scores = np.maximum(raw[..., lower] - y, y - raw[..., upper])  # [N, H, C]
        rank = math.ceil((n + 1) * percent / 100)
        np.testing.assert_allclose(offsets[..., p], np.sort(scores, axis=0)[rank - 1], rtol=1e-6, atol=1e-7)
    calibrated_out, _ = _outputs(module, dataset, offsets=True)
    calibrated_out = calibrated_out.numpy()
    for lower, upper, percent in interval_pairs(LEVELS):
        # An actual on the boundary is inside; float32 rounding of bound + offset is allowed for.
        inside = (calibrated_out[..., lower] - 1e-5 <= y) & (y <= calibrated_out[..., upper] + 1e-5)  # [N, H, C]
        assert (inside.mean(axis=0) >= percent / 100).all()
    # The median is the point forecast, unchanged; the levels stay ordered.
    np.testing.assert_allclose(calibrated_out[..., 3], raw[..., 3], rtol=1e-6)
    assert (np.diff(calibrated_out, axis=-1) >= 0).all()


def test_the_bundle_carries_the_offsets_and_forecasts_with_them(calibrated):
    from tsattn.inference.bundle import load_bundle

    bundle_dir, run = calibrated
    bundle = load_bundle(bundle_dir)
    np.testing.assert_allclose(
        np.asarray(bundle.schema["interval_offsets"]), run.model.forecaster.interval_offsets.numpy(), rtol=1e-6
    )
    batch = run.datamodule.datasets["test"][[0, 100, 500]]
    with torch.no_grad():
        expected = run.model.eval()(batch)["y_hat"]
        got = bundle.forecaster(batch)["y_hat"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_a_tampered_offset_list_and_conformal_without_quantiles_are_one_line(calibrated, tmp_path, etth1_path):
    from tsattn.inference.bundle import load_bundle

    bundle_dir, _ = calibrated
    copy = shutil.copytree(bundle_dir, tmp_path / "tampered")
    schema = json.loads((copy / "schema.json").read_text())
    schema["interval_offsets"] = schema["interval_offsets"][:3]  # 3 steps instead of 12
    (copy / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(TsattnError, match=r"interval_offsets"):
        load_bundle(copy)
    for levels in ([], ["model.net.quantiles=[0.1,0.9]"]):  # no quantiles, or no 0.5 level to keep in place
        with pytest.raises(TsattnError, match=r"model\.conformal=true calibrates the intervals of a quantile model"):
            build_bundle(
                tmp_path / f"point{len(levels)}",
                "experiment=etth1_lstm_seq2seq",
                f"data.path={etth1_path}",
                "model.conformal=true",
                *levels,
            )


def test_widen_moves_each_interval_by_its_own_offset_and_never_past_the_median():
    y_hat = torch.tensor([[[[1.0, 2.0, 3.0, 4.0, 5.0]]]])  # [1, 1, 1, Q]: levels 0.1, 0.25, 0.5, 0.75, 0.9
    levels = [0.1, 0.25, 0.5, 0.75, 0.9]
    wider = widen(y_hat, torch.tensor([[[0.5, 0.25]]]), levels)  # 80% interval out by 0.5, 50% by 0.25
    assert wider.flatten().tolist() == [0.5, 1.75, 3.0, 4.25, 5.5]
    # In past the median the 80% interval stops there, and then it is widened to the 50% one inside it.
    narrower = widen(y_hat, torch.tensor([[[-3.0, -0.5]]]), levels)
    assert narrower.flatten().tolist() == [2.5, 2.5, 3.0, 3.5, 3.5]
    # An inner interval widened past the outer one takes the outer one with it; it is never narrowed.
    crossing = widen(y_hat, torch.tensor([[[0.0, 2.0]]]), levels)
    assert crossing.flatten().tolist() == [0.0, 0.0, 3.0, 6.0, 6.0]


class _Picked:
    """The windows of `dataset` at `indices`, indexed as the dataset is (a list of positions -> one batch)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions):
        return self.dataset[[self.indices[p] for p in positions]]


def test_offsets_cover_their_level_on_windows_they_were_not_computed_on(calibrated):
    """Calibrated on a random half of the validation windows, each interval covers its nominal share of the
    other half (the windows are exchangeable within the split), within 3 points; the intervals as trained
    miss at least one level by more, so the check is not passed by the network alone."""
    _, run = calibrated
    module, dataset = run.model, run.datamodule.datasets["val"]
    saved = module.forecaster.interval_offsets
    order = np.random.default_rng(0).permutation(len(dataset))
    fit_half, held_back = _Picked(dataset, order[::2]), _Picked(dataset, order[1::2])
    try:
        module.calibrate_intervals(fit_half, batch_size=512)
        widened, y = (t.numpy() for t in _outputs(module, held_back, offsets=True))
        raw, _ = (t.numpy() for t in _outputs(module, held_back, offsets=False))
    finally:
        module.forecaster.set_interval_offsets(saved)
    misses_as_trained = []
    for lower, upper, percent in interval_pairs(LEVELS):
        covered = ((widened[..., lower] <= y) & (y <= widened[..., upper])).mean()
        assert covered == pytest.approx(percent / 100, abs=0.03), (percent, covered)
        misses_as_trained.append(abs(((raw[..., lower] <= y) & (y <= raw[..., upper])).mean() - percent / 100))
    assert max(misses_as_trained) > 0.03, misses_as_trained
