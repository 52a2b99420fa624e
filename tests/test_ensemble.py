"""Ensembles: `tsattn ensemble`, forecasts and backtests that combine the members, the contract, and tampering."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import tsattn
from tests.conftest import build_bundle
from tsattn.cli import main

MEMBER = ("data.horizon=12", "model.net.hidden_size=8")


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Three LSTM seq2seq models of the bundled weather data (seeds 0, 1, 2; the third reads L=72, not 48)."""
    workdir = tmp_path_factory.mktemp("members")
    looks = {0: 48, 1: 48, 2: 72}
    return [
        str(build_bundle(workdir / f"m{seed}", *MEMBER, f"data.lookback={looks[seed]}", f"seed={seed}")[0])
        for seed in looks
    ]


@pytest.fixture(scope="module")
def history(weather_path):
    return pd.read_csv(weather_path)


@pytest.fixture(scope="module")
def ensemble(members, tmp_path_factory):
    output = tmp_path_factory.mktemp("ensemble") / "weather-mean"
    assert main(["ensemble", *members, "-o", str(output)]) == 0
    return output


def test_an_ensemble_forecasts_the_mean_of_its_members(ensemble, members, history, tmp_path):
    manifest = json.loads((ensemble / "ensemble.json").read_text())
    assert manifest["format"] == "tsattn-ensemble" and manifest["combine"] == "mean"
    hashes = sorted(m["sha256"] for m in manifest["members"])
    assert [p.name for p in sorted((ensemble / "members").iterdir())] == hashes
    assert [m["source"] for m in manifest["members"]] == members
    singles = [tsattn.load(m).forecast(history) for m in members]
    out = tmp_path / "forecast.csv"
    assert main(["forecast", str(ensemble), "data/weather_temps.csv", "-o", str(out), "--quiet"]) == 0
    combined = pd.read_csv(out)
    assert list(combined.columns) == list(singles[0].columns) and len(combined) == 2 * 12
    mean = np.mean([s["temperature"].to_numpy() for s in singles], axis=0)
    np.testing.assert_allclose(combined["temperature"].to_numpy(), mean, rtol=1e-5)
    # Not one member's forecast: the members differ, and the seed-2 member reads 72 steps, the others 48.
    assert min(np.abs(s["temperature"].to_numpy() - mean).max() for s in singles) > 1e-3
    assert tsattn.load(str(ensemble)).lookback == 72


def test_a_median_ensemble_and_a_backtest_combine_the_members_too(members, history, tmp_path):
    output = tmp_path / "median"
    assert main(["ensemble", *members, "-o", str(output), "--combine", "median"]) == 0
    model = tsattn.load(str(output))
    singles = [tsattn.load(m).forecast(history) for m in members]
    median = np.median([s["temperature"].to_numpy() for s in singles], axis=0)
    np.testing.assert_allclose(model.forecast(history)["temperature"].to_numpy(), median, rtol=1e-5)
    # With an even number of members, each step's median is the midpoint of the two middle forecasts.
    fourth = str(build_bundle(tmp_path / "m3", *MEMBER, "data.lookback=48", "seed=3", fit=False)[0])
    assert main(["ensemble", *members, fourth, "-o", str(tmp_path / "median4"), "--combine", "median"]) == 0
    four = [*singles, tsattn.load(fourth).forecast(history)]
    midpoint = np.median([s["temperature"].to_numpy() for s in four], axis=0)  # numpy's: the midpoint
    combined = tsattn.load(str(tmp_path / "median4")).forecast(history)["temperature"].to_numpy()
    np.testing.assert_allclose(combined, midpoint, rtol=1e-5)
    assert not np.allclose(combined, np.mean([s["temperature"].to_numpy() for s in four], axis=0), rtol=1e-5)
    tail = history.groupby("city").tail(400)  # a few origins per city, each from its own rows before it
    start = pd.Timestamp(tail["time"].iloc[100])  # one first origin for all: the members' origins then coincide
    rows = model.backtest(tail, start=start, step=48).rows
    member_rows = [tsattn.load(m).backtest(tail, start=start, step=48).rows for m in members]
    key = ["city", "origin", "step"]
    stacked = pd.concat(member_rows).groupby(key)["model"]
    assert stacked.count().eq(3).all() and len(rows) == len(member_rows[0]) > 0
    got = rows.set_index(key)["model"].sort_index()
    np.testing.assert_allclose(got.to_numpy(), stacked.median().sort_index().to_numpy(), rtol=1e-5)


def test_members_must_forecast_the_same_data_the_same_way(members, tmp_path, capsys):
    other_horizon = str(build_bundle(tmp_path / "h24", "data.horizon=24", "model.net.hidden_size=8")[0])
    assert main(["ensemble", members[0], other_horizon, "-o", str(tmp_path / "e1")]) == 2
    assert "differ in horizon (24 against 12)" in capsys.readouterr().err
    other_split = str(build_bundle(tmp_path / "split", *MEMBER, "data.split.train=0.6", fit=False)[0])
    assert main(["ensemble", members[0], other_split, "-o", str(tmp_path / "e2")]) == 2
    assert "were trained on different rows (another file, or other test borders)" in capsys.readouterr().err
    assert main(["ensemble", members[0], members[0], "-o", str(tmp_path / "e3")]) == 2
    assert "is the same model as" in capsys.readouterr().err
    assert main(["ensemble", members[0], "-o", str(tmp_path / "e4")]) == 2
    assert "an ensemble has 2 to 64 members; 1 given" in capsys.readouterr().err
    assert not any(p.name.startswith(("e1", "e2", "e3", "e4", ".e")) for p in tmp_path.iterdir())


def _tampered(ensemble, tmp_path, change):
    copy = tmp_path / "tampered"
    shutil.copytree(ensemble, copy)
    manifest = json.loads((copy / "ensemble.json").read_text())
    change(copy, manifest)
    if manifest:  # emptied by a change that wrote (and moved) the manifest itself
        (copy / "ensemble.json").write_text(json.dumps(manifest))
    return copy


def _first(copy, manifest):
    return copy / "members" / manifest["members"][0]["sha256"]


def _outside(copy, manifest):
    manifest["members"][0]["sha256"] = "../../" + "0" * 58


def _weights_changed(copy, manifest):
    weights = _first(copy, manifest) / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))


def _not_a_bundle(copy, manifest):
    (_first(copy, manifest) / "schema.json").unlink()


def _linked_elsewhere(copy, manifest):
    member = _first(copy, manifest)
    shutil.move(member, copy.parent / "elsewhere")
    member.symlink_to(copy.parent / "elsewhere")


def _nested(copy, manifest):
    # A member that holds an ensemble manifest of its own (its three files still match its hash).
    shutil.copyfile(copy / "ensemble.json", _first(copy, manifest) / "ensemble.json")


def _a_million_members(copy, manifest):
    manifest["members"] = [{"sha256": "0" * 64}] * 1_000_000


def _too_many_members(copy, manifest):
    manifest["members"] = manifest["members"] * 22  # 66


def _code_as_combine(copy, manifest):
    manifest["combine"] = "os.system"


def _named_twice(copy, manifest):
    manifest["members"][1] = manifest["members"][0]  # one member's vote counted twice


def _missing_member(copy, manifest):
    manifest["members"][0]["sha256"] = "f" * 64  # a valid-looking hash with no directory


def _manifest_linked(copy, manifest):
    (copy / "ensemble.json").write_text(json.dumps(manifest))
    shutil.move(copy / "ensemble.json", copy.parent / "manifest.json")
    (copy / "ensemble.json").symlink_to(copy.parent / "manifest.json")
    manifest.clear()


def _weights_linked(copy, manifest):
    weights = _first(copy, manifest) / "weights.safetensors"
    shutil.move(weights, copy.parent / "weights.safetensors")
    weights.symlink_to(copy.parent / "weights.safetensors")


def _huge_scaler(copy, manifest):
    # 65 MB that take no disk (a sparse file): refused on its size, before a byte is hashed or parsed.
    with (_first(copy, manifest) / "scaler.json").open("r+b") as handle:
        handle.truncate(65 * 2**20)


def _version_zero(copy, manifest):
    manifest["format_version"] = 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_outside, "members[0].sha256 must be 64 hex digits"),
        (_weights_changed, "do not match the hash that names it"),
        (_not_a_bundle, "is not a model bundle: schema.json is missing"),
        (_linked_elsewhere, "is not a directory of"),
        (_nested, "an ensemble member is a model bundle, not another ensemble"),
        (_a_million_members, "an ensemble names at most 64 members"),
        (_too_many_members, "66 members; an ensemble has 2 to 64"),
        (_code_as_combine, "combine must be mean or median"),
        (_named_twice, "is named twice; each member counts once"),
        (_missing_member, "member ffffffffffff... is not a directory of"),
        (_manifest_linked, "ensemble.json is a link"),
        (_weights_linked, "weights.safetensors is missing or not a plain file"),
        (_version_zero, "format_version must be a whole number from 1"),
        (_huge_scaler, "scaler.json: over 64 MB, the limit on a bundle's JSON files"),
    ],
)
def test_a_tampered_ensemble_is_one_line_exit_2_and_nothing_written(ensemble, tmp_path, capsys, change, message):
    copy = _tampered(ensemble, tmp_path, change)
    out = tmp_path / "forecast.csv"
    assert main(["forecast", str(copy), "data/weather_temps.csv", "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_members_chosen_among_an_experiments_runs_by_validation_only(tmp_path, history, capsys):
    from mlflow import MlflowClient

    from tsattn.config import compose
    from tsattn.training.train import train

    tiny = ["data=weather", *MEMBER, "data.lookback=48", "trainer.max_epochs=1", "+trainer.limit_train_batches=3"]
    tiny += ["+trainer.limit_val_batches=2", "+trainer.limit_test_batches=1", f"paths.log_dir={tmp_path / 'logs'}"]
    tiny += ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    for seed in (0, 1, 2):
        train(compose([*tiny, f"seed={seed}"]))
    uri = f"sqlite:///{tmp_path / 'logs' / 'mlflow' / 'mlflow.db'}"
    runs = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("weather").experiment_id])
    best = sorted(runs, key=lambda r: r.data.metrics["val/loss_best"])[:2]
    common = ["--experiment", "weather", "--tracking-uri", uri, "-o"]
    assert main(["ensemble", *common, str(tmp_path / "test-chosen"), "--metric", "test/mse", "--top", "2"]) == 2
    assert "chosen on a validation metric (val/...), never on the test split" in capsys.readouterr().err
    peek = ["--filter", "metrics.`test/mse` < 1", "--top", "2"]
    assert main(["ensemble", *common, str(tmp_path / "test-filtered"), *peek]) == 2
    assert "the filter reads a test metric" in capsys.readouterr().err
    assert main(["ensemble", *common, str(tmp_path / "top2"), "--top", "2"]) == 0
    manifest = json.loads((tmp_path / "top2" / "ensemble.json").read_text())
    assert [m["source"] for m in manifest["members"]] == [f"runs:/{r.info.run_id}" for r in best]
    singles = [tsattn.load(f"runs:/{r.info.run_id}", tracking_uri=uri).forecast(history) for r in best]
    np.testing.assert_allclose(
        tsattn.load(str(tmp_path / "top2")).forecast(history)["temperature"].to_numpy(),
        np.mean([s["temperature"].to_numpy() for s in singles], axis=0),
        rtol=1e-5,
    )
    # A run trained with another loss reports val/loss on another scale: ranking by it is refused, by val/mae not.
    train(compose([*tiny, "seed=3", "model.loss=mae"]))
    assert main(["ensemble", *common, str(tmp_path / "mixed"), "--top", "2"]) == 2
    assert "the runs trained with different losses (mae, mse)" in capsys.readouterr().err
    assert main(["ensemble", *common, str(tmp_path / "by-mae"), "--top", "2", "--metric", "val/mae"]) == 0


def test_a_sweeps_ensemble_is_a_run_tested_on_its_members_windows(tmp_path, monkeypatch, history):
    """`tsattn train -m seed=0,1,2 +ensemble=mean`: a fourth run under the sweep's parent, whose test/mse is the
    MSE of the members' mean forecast over the members' own test windows (recomputed here from their bundles)."""
    import torch
    from hydra.utils import instantiate
    from mlflow import MlflowClient

    from tsattn.config import compose
    from tsattn.inference.bundle import load_bundle
    from tsattn.inference.model_source import bundle_directory

    monkeypatch.chdir(tmp_path)
    settings = ["data=weather", *MEMBER, "data.lookback=48", "model.net.linear_path=false", "trainer.max_epochs=1"]
    settings += ["+trainer.limit_train_batches=3", "+trainer.limit_val_batches=2", "trainer.enable_progress_bar=false"]
    assert main(["train", "-m", "seed=0,1,2", *settings, "+ensemble=avg"]) == 2  # before any job runs
    assert not (tmp_path / "logs").exists()
    assert main(["train", "-m", "seed=0,1,2", *settings, "+ensemble=mean"]) == 0
    uri = f"sqlite:///{tmp_path / 'logs' / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("weather").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("tsattn.role") == "sweep"]
    (ensemble,) = [r for r in runs if r.data.tags.get("tsattn.role") == "ensemble"]
    members = [r for r in runs if r.data.tags.get("tsattn.seed") in ("0", "1", "2")]
    assert ensemble.data.tags["mlflow.parentRunId"] == parent.info.run_id and ensemble.info.status == "FINISHED"
    assert ensemble.data.tags["tsattn.model"] == "ensemble-mean(lstm_seq2seqx3)"
    assert sorted(json.loads(ensemble.data.params["ensemble/members"])) == sorted(r.info.run_id for r in members)
    mses = [r.data.metrics["test/mse"] for r in members]
    assert len(set(mses)) == 3  # the seeds differ (no linear path start shared by all)

    datamodule = instantiate(compose([*settings, "logger=none"]).data)
    datamodule.setup()
    test = datamodule.datasets["test"]
    batch = test[list(range(len(test)))]
    forecasts = []
    for run in members:
        with bundle_directory(f"runs:/{run.info.run_id}", uri) as directory, torch.inference_mode():
            forecasts.append(load_bundle(directory).forecaster(batch)["y_hat"])
    mean_mse = float(((torch.stack(forecasts).mean(dim=0) - batch["y"]) ** 2).mean())
    assert ensemble.data.metrics["test/mse"] == pytest.approx(mean_mse, rel=1e-4)
    assert ensemble.data.metrics["test/mse"] < np.mean(mses)  # averaging removes part of each seed's error
    assert ensemble.data.metrics["test/snaive_mse"] == pytest.approx(members[0].data.metrics["test/snaive_mse"])
    # tsattn compare and the dashboard list it beside its members.
    board = tmp_path / "board.json"
    store = ["--experiment", "weather", "--tracking-uri", uri]
    assert main(["compare", *store, "--format", "json", "-o", str(board)]) == 0
    assert "ensemble-mean(lstm_seq2seqx3)" in board.read_text()
    page = tmp_path / "report.html"
    assert main(["dashboard", *store, "-o", str(page)]) == 0
    assert "ensemble-mean(lstm_seq2seqx3)" in page.read_text()
    # Its bundle is an ensemble, and forecasts from runs:/ like any run's; its pyfunc model registers and loads.
    import mlflow.pyfunc

    expected = tsattn.load(f"runs:/{ensemble.info.run_id}", tracking_uri=uri).forecast(history)
    client.create_registered_model("weather-ensemble")
    client.create_model_version("weather-ensemble", f"{ensemble.info.artifact_uri}/model", ensemble.info.run_id)
    registered = tsattn.load("models:/weather-ensemble/1", tracking_uri=uri).forecast(history)
    pd.testing.assert_frame_equal(registered, expected)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    served = mlflow.pyfunc.load_model(f"runs:/{ensemble.info.run_id}/model").predict(history)
    np.testing.assert_allclose(served["temperature"].to_numpy(), expected["temperature"].to_numpy(), rtol=1e-6)
