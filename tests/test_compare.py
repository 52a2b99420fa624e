"""`tsattn compare`: the leaderboard of a real sweep equals the numbers read straight from MLflow."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_tsattn
from tsattn.cli import main


def test_groups_means_stds_and_counts_equal_mlflow_search_runs(tiny_sweep, capsys):
    import mlflow

    _, uri, _, experiment = tiny_sweep
    assert main(["compare", "--experiment", "weather", "--tracking-uri", uri, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # mlflow.search_runs reads the fluent API's tracking URI
    try:
        runs = mlflow.search_runs([experiment])
    finally:
        mlflow.set_tracking_uri(previous)
    done = runs[(runs["status"] == "FINISHED") & (runs["tags.tsattn.role"] != "sweep")]
    expected = done.groupby(["tags.tsattn.model", "tags.tsattn.data"]).agg(
        mean=("metrics.test/mse", "mean"),
        std=("metrics.test/mse", "std"),
        runs=("metrics.test/mse", "size"),
        last_value=("metrics.test/naive_mse", "mean"),
        seasonal_naive=("metrics.test/snaive_mse", "mean"),
    )
    groups = {(g["model"], g["data"]): g for g in report["groups"]}
    assert set(groups) == set(expected.index) == {("attention_seq2seq", "weather"), ("linear", "weather")}
    for key, row in expected.iterrows():
        assert groups[key]["runs"] == row["runs"] == 2
        assert groups[key]["mean"] == pytest.approx(row["mean"])
        assert groups[key]["std"] == pytest.approx(row["std"])  # sample std over seeds, as pandas computes it
        for baseline in ("last_value", "seasonal_naive"):
            assert groups[key][baseline] == pytest.approx(row[baseline])
            assert groups[key][f"skill_{baseline}"] == pytest.approx(1 - row["mean"] / row[baseline])
        # On hourly temperatures yesterday's value at the same hour is hard to beat; the last value is not.
        assert row["seasonal_naive"] < row["last_value"] / 10
        assert groups[key]["seeds"] == "0,1"
    means = [g["mean"] for g in report["groups"]]
    assert means == sorted(means)  # best first
    (failed,) = report["not_averaged"]
    assert failed["status"] == "FAILED" and failed["why"] == "NaN loss"


def test_formats_table_markdown_and_csv_to_a_file(tiny_sweep, tmp_path, capsys):
    _, uri, _, _ = tiny_sweep
    base = ["compare", "--experiment", "weather", "--tracking-uri", uri]
    result = run_tsattn(base, cwd=tmp_path)  # the one real `tsattn compare` process
    assert result.returncode == 0, result.stderr
    table = result.stdout
    assert "rank" in table and "not averaged (1 runs):" in table and "attention_seq2seq-weather-seed2  FAILED" in table
    assert "last_value  skill_last_value  seasonal_naive  skill_seasonal_naive" in table
    assert main([*base, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out.splitlines()
    assert markdown[2].startswith("| rank | model | data | mean | std |") and markdown[3].startswith("|---|")
    out = tmp_path / "board.csv"
    assert main([*base, "--format", "csv", "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == [
        "model",
        "data",
        "mean",
        "std",
        "runs",
        "seeds",
        "last_value",
        "skill_last_value",
        "seasonal_naive",
        "skill_seasonal_naive",
    ]
    assert np.all(frame["runs"] == 2)


def test_grouping_by_a_param_filtering_and_mistakes(tiny_sweep, capsys):
    _, uri, _, _ = tiny_sweep
    base = ["compare", "--experiment", "weather", "--tracking-uri", uri, "--format", "json"]
    assert main([*base, "--group-by", "model/_target_"]) == 0
    targets = {g["model/_target_"] for g in json.loads(capsys.readouterr().out)["groups"]}
    assert targets == {"tsattn.module.ForecastModule"}
    assert main([*base, "--filter", "tags.tsattn.seed = '1'"]) == 0
    assert {g["runs"] for g in json.loads(capsys.readouterr().out)["groups"]} == {1}
    assert main(["compare", "--experiment", "nope", "--tracking-uri", uri]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err
    assert main([*base, "--group-by", "colour"]) == 2
    assert "--group-by colour" in capsys.readouterr().err
