"""Probabilistic runs through tracking: `compare --metric test/crps` ranks quantile and point runs together,
coverage ranks by its distance to the nominal level, and the dashboard draws the interval as a band."""

from __future__ import annotations

import json

import pytest

from tests.test_reporting import _chromium_run, _section
from tsattn.cli import main

TINY = [
    "data=weather",
    "data.lookback=48",
    "data.horizon=12",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
QUANTILE = ["model=lstm_seq2seq", "model.net.hidden_size=8", "model.net.quantiles=[0.05,0.1,0.5,0.9,0.95]"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A quantile LSTM and a point DLinear, tracked in one MLflow store (in this process)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("probabilistic")
    for model in (QUANTILE, ["model=linear"]):
        assert main(["train", *TINY, *model, f"paths.log_dir={root / 'logs'}"]) == 0
    uri = f"sqlite:///{root / 'logs' / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("weather").experiment_id
    runs = {r.data.tags["tsattn.model"]: r.data.metrics for r in client.search_runs([experiment])}
    return root, uri, runs


def _compare(uri, metric, capsys) -> dict:
    capsys.readouterr()
    args = ["compare", "--experiment", "weather", "--metric", metric, "--tracking-uri", uri, "--format", "json"]
    assert main(args) == 0
    return {g["model"]: g for g in json.loads(capsys.readouterr().out)["groups"]}


def test_compare_ranks_point_and_quantile_runs_on_crps_beside_the_baselines(store, capsys):
    _, uri, runs = store
    lstm, linear = runs["lstm_seq2seq"], runs["linear"]
    assert linear["test/crps"] == pytest.approx(linear["test/mae"])  # a point forecast's CRPS is its MAE
    assert lstm["test/crps"] != pytest.approx(lstm["test/mae"])
    assert {"test/coverage_80", "test/coverage_90", "test/width_80", "test/coverage_90_h12"} <= set(lstm)
    assert not any(key.startswith("test/coverage") for key in linear)
    groups = _compare(uri, "test/crps", capsys)
    assert groups["lstm_seq2seq"]["mean"] == pytest.approx(lstm["test/crps"])
    assert groups["linear"]["mean"] == pytest.approx(linear["test/crps"])
    # The baselines on the same windows, as CRPS (their MAE): skills compare like with like.
    assert groups["lstm_seq2seq"]["last_value"] == pytest.approx(lstm["test/naive_mae"])
    assert groups["linear"]["seasonal_naive"] == pytest.approx(linear["test/snaive_mae"])
    assert list(groups) == sorted(groups, key=lambda m: groups[m]["mean"])  # lower CRPS first


def test_quantile_runs_logged_before_the_crps_integral_are_not_ranked_on_crps(store, capsys):
    """A quantile run without the tsattn.crps tag logged the mean pinball loss of its levels: compare lists it
    apart with the reason when ranking by CRPS, and still ranks it by MSE."""
    from mlflow import MlflowClient

    from tsattn.intervals import CRPS_METHOD

    _, uri, _ = store
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("weather").experiment_id
    (lstm,) = [r for r in client.search_runs([experiment]) if r.data.tags["tsattn.model"] == "lstm_seq2seq"]
    assert lstm.data.tags["tsattn.crps"] == CRPS_METHOD
    client.delete_tag(lstm.info.run_id, "tsattn.crps")
    try:
        capsys.readouterr()
        args = ["compare", "--experiment", "weather", "--tracking-uri", uri, "--format", "json"]
        assert main([*args, "--metric", "test/crps"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert [g["model"] for g in report["groups"]] == ["linear"]
        (apart,) = report["not_averaged"]
        assert apart["run_id"] == lstm.info.run_id
        assert "mean pinball loss of levels [0.05, 0.1, 0.5, 0.9, 0.95]" in apart["why"]
        assert "retrain to compare" in apart["why"]
        assert main([*args, "--metric", "test/mse"]) == 0
        assert {g["model"] for g in json.loads(capsys.readouterr().out)["groups"]} == {"linear", "lstm_seq2seq"}
    finally:
        client.set_tag(lstm.info.run_id, "tsattn.crps", CRPS_METHOD)


def test_coverage_ranks_closest_to_its_level_and_has_no_point_baselines(store, capsys):
    _, uri, runs = store
    groups = _compare(uri, "test/coverage_80", capsys)
    assert list(groups) == ["lstm_seq2seq"]  # the point model has no interval
    assert groups["lstm_seq2seq"]["mean"] == pytest.approx(runs["lstm_seq2seq"]["test/coverage_80"])
    assert groups["lstm_seq2seq"]["last_value"] is None
    assert main(["compare", "--experiment", "weather", "--metric", "test/coverage_80", "--tracking-uri", uri]) == 0
    assert "test/coverage_80 (closest to 0.80 is better)" in capsys.readouterr().out

    from tsattn.reporting.compare import rank_key

    assert sorted([0.95, 0.7, 0.82], key=rank_key("test/coverage_80")) == [0.82, 0.7, 0.95]
    assert sorted([0.3, 0.1], key=rank_key("test/skill_mse")) == [0.3, 0.1]


def test_the_dashboard_draws_the_quantile_models_interval_as_a_band(store, capsys):
    root, uri, runs = store
    page = root / "report.html"
    args = ["dashboard", "--experiment", "weather", "--metric", "test/crps", "--tracking-uri", uri, "-o", str(page)]
    assert main(args) == 0
    result = _chromium_run("--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert 'data-rendered="ok"' in dom
    forecasts = _section(dom, "forecasts")
    panels = forecasts.split('class="panel"')[1:]
    lstm = [panel for panel in panels if "<h3>lstm_seq2seq: " in panel]
    linear = [panel for panel in panels if "<h3>linear: " in panel]
    assert lstm and linear and len(lstm) + len(linear) == len(panels)
    assert all(panel.count('class="band"') == 1 for panel in lstm)  # the quantile model's windows
    assert not any('class="band"' in panel for panel in linear)  # a point model has no interval
    covered = f"{runs['lstm_seq2seq']['test/coverage_90']:.0%}"
    assert f"90% interval (covers {covered} of the test split)" in forecasts  # the widest pair of levels
    assert "test crps by horizon step" in _section(dom, "horizon")


def test_each_test_windows_error_is_logged_and_they_average_to_test_mse(store):
    """forecasts/test_window_errors.csv: one row per test window (series, origin, MSE in test/mse's units),
    so a score over some windows (what drop_last would leave) can be recomputed from the run."""
    import pandas as pd
    from mlflow import MlflowClient

    root, uri, runs = store
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("weather").experiment_id
    found = client.search_runs([experiment])
    assert len(found) == 2
    for run in found:
        path = client.download_artifacts(run.info.run_id, "forecasts/test_window_errors.csv", str(root))
        windows = pd.read_csv(path, parse_dates=["origin"])
        assert list(windows.columns) == ["series", "origin", "mse"]
        assert set(windows["series"]) == {"san_francisco", "seattle"}
        assert windows["mse"].mean() == pytest.approx(run.data.metrics["test/mse"], rel=1e-5)
        for _, origins in windows.groupby("series")["origin"]:  # each series' windows one hour apart, in order
            assert (origins.diff().dropna() == pd.Timedelta(hours=1)).all()
        assert windows["mse"].std() > 0
