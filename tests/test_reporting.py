"""Reporting from a real sweep: `tsattn compare` equals the numbers read straight from MLflow, and `tsattn
dashboard` is a self-contained page that a real headless Chromium renders. Both read one sweep, built once
(this module runs on one test worker)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, run_tsattn, tsattn_env
from tsattn.cli import main

ARTIFACTS = Path(os.environ.get("TSATTN_TEST_ARTIFACTS", REPO / "test-artifacts"))


SWEEP_TINY = [
    "data=weather",
    "data.lookback=48",
    "data.horizon=12",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """A real sweep, attention seq2seq and DLinear x seeds 0 and 1, two jobs at a time in joblib processes,
    plus a FAILED run, in a temporary store.

    Returns:
        (workdir, tracking URI, MlflowClient, experiment id)
    """
    from mlflow import MlflowClient

    workdir = tmp_path_factory.mktemp("sweep")
    args = [
        "train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model=attention_seq2seq,linear",
        "seed=0,1",
        *SWEEP_TINY,
        f"paths.log_dir={workdir / 'logs'}",
    ]
    # Without OMP_NUM_THREADS: each job chooses its threads from the cores and hydra.launcher.n_jobs.
    result = run_tsattn(args, cwd=workdir, env=tsattn_env(threads=None))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database is locked" not in result.stdout + result.stderr
    uri = f"sqlite:///{workdir / 'logs' / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("weather").experiment_id
    tags = {
        "tsattn.model": "attention_seq2seq",
        "tsattn.data": "weather",
        "tsattn.seed": "2",
        "tsattn.error": "NaN loss",
    }
    failed = client.create_run(experiment, run_name="attention_seq2seq-weather-seed2", tags=tags)
    client.log_metric(failed.info.run_id, "test/mse", 99.0)  # must not be averaged in
    client.set_terminated(failed.info.run_id, "FAILED")
    return workdir, uri, client, experiment


def test_a_parallel_sweep_shares_one_store_and_the_cores(tiny_sweep):
    """tiny_sweep: 4 jobs, 2 at a time in joblib processes, into one sqlite store (above)."""
    _, _, client, experiment = tiny_sweep
    runs = client.search_runs([experiment])
    (parent,) = [r for r in runs if r.data.tags.get("tsattn.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("tsattn.role") != "sweep"]
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/runs"] == 4
    assert "seed=0,1" in parent.data.tags["tsattn.sweep_overrides"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children if r.info.status == "FINISHED"} == {parent.info.run_id}
    finished = [r for r in children if r.info.status == "FINISHED"]
    # Seeds in the names, and the job number keeps them apart even when other overrides are swept.
    assert sorted(r.info.run_name for r in finished) == [
        "attention_seq2seq-weather-seed0-job0",
        "attention_seq2seq-weather-seed1-job1",
        "linear-weather-seed0-job2",
        "linear-weather-seed1-job3",
    ]
    cores = len(os.sched_getaffinity(0))
    for child in finished:
        assert "test/mse" in child.data.metrics and child.data.params["trainer/max_epochs"] == "2"
        assert {"bundle", "model", "forecasts"} <= {a.path for a in client.list_artifacts(child.info.run_id)}
        # Two jobs at a time share the cores: each takes its half, so neither spins against the other.
        assert child.data.params["threads"] == str(max(1, cores // 2))


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
        best_naive=("metrics.test/best_naive_mse", "mean"),
    )
    groups = {(g["model"], g["data"]): g for g in report["groups"]}
    assert set(groups) == set(expected.index) == {("attention_seq2seq", "weather"), ("linear", "weather")}
    for key, row in expected.iterrows():
        assert groups[key]["runs"] == row["runs"] == 2
        assert groups[key]["mean"] == pytest.approx(row["mean"])
        assert groups[key]["std"] == pytest.approx(row["std"])  # sample std over seeds, as pandas computes it
        for baseline in ("last_value", "seasonal_naive", "best_naive"):
            assert groups[key][baseline] == pytest.approx(row[baseline])
            assert groups[key][f"skill_{baseline}"] == pytest.approx(1 - row["mean"] / row[baseline])
        # On hourly temperatures yesterday's value at the same hour is hard to beat; the last value is not.
        assert row["seasonal_naive"] < row["last_value"] / 10
        # Chosen on validation among the last value and a day (24) of hourly data: the day, as on test.
        assert groups[key]["best_naive_rule"] == "seasonal_naive_24"
        assert row["best_naive"] == pytest.approx(row["seasonal_naive"])
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
        "best_naive",
        "skill_best_naive",
        "best_naive_rule",
        "settings",
    ]
    assert np.all(frame["runs"] == 2)
    assert np.all(frame["settings"] == "-")  # the sweep's runs differ in their seed alone: nothing split


def test_grouping_by_a_param_filtering_and_mistakes(tiny_sweep, capsys):
    _, uri, _, _ = tiny_sweep
    base = ["compare", "--experiment", "weather", "--tracking-uri", uri, "--format", "json"]
    assert main([*base, "--group-by", "model/_target_"]) == 0
    targets = {g["model/_target_"] for g in json.loads(capsys.readouterr().out)["groups"]}
    assert targets == {"tsattn.training.module.ForecastModule"}
    assert main([*base, "--filter", "tags.tsattn.seed = '1'"]) == 0
    assert {g["runs"] for g in json.loads(capsys.readouterr().out)["groups"]} == {1}
    assert main(["compare", "--experiment", "nope", "--tracking-uri", uri]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err
    assert main([*base, "--group-by", "colour"]) == 2
    assert "--group-by colour" in capsys.readouterr().err


@pytest.fixture(scope="module")
def report(tiny_sweep, tmp_path_factory):
    _, uri, _, _ = tiny_sweep
    path = tmp_path_factory.mktemp("dashboard") / "report.html"
    # The one real `tsattn dashboard` process.
    result = run_tsattn(["dashboard", "--experiment", "weather", "--tracking-uri", uri, "-o", str(path)], path.parent)
    assert result.returncode == 0, result.stderr
    return path


def _chromium() -> str:
    """The headless browser the dashboard is checked in. Skips where it is absent, but fails under CI=true,
    as a missing ETTh1 or Java does: CI must not pass by skipping the page's only real test."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    reason = "no Chromium on this machine (.ci/run installs Debian's chromium; apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _chromium_run(*args: str) -> subprocess.CompletedProcess:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_page_is_one_file_that_asks_for_nothing_outside(report):
    html = report.read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # No external scripts, styles, images or links: every src/href would be a request.
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!data:)""", html)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)  # the SVG namespace is a name, not a fetch
    assert report.stat().st_size < 2_000_000


def test_headless_chromium_renders_every_section_without_errors(report, tiny_sweep):
    dom_result = _chromium_run("--dump-dom", report.as_uri())
    assert dom_result.returncode == 0, dom_result.stderr[-2000:]
    dom = dom_result.stdout
    console = [line for line in dom_result.stderr.splitlines() if "CONSOLE" in line or "Refused" in line]
    assert console == [], console  # no script error, no blocked (network) request
    assert 'data-rendered="ok"' in dom
    assert re.search(r'<pre id="errors" hidden=""></pre>', dom)

    sections = {
        name: _section(dom, name) for name in ("leaderboard", "curves", "horizon", "forecasts", "attention", "configs")
    }
    assert sections["leaderboard"].count("<tr>") == 1 + 2  # header + attention_seq2seq and linear
    assert "attention_seq2seq-weather-seed2 FAILED (NaN loss)" in sections["leaderboard"]
    assert sections["curves"].count('class="series"') >= 2 * 2 * 2  # 2 models x 2 runs x (train, val) curves
    assert sections["horizon"].count('class="series"') == 5  # two models and three baselines (best naive too)
    assert sections["forecasts"].count('class="series"') >= 2 * 2  # actual and forecast, both models
    assert sections["attention"].count('class="cell"') == 12 * 48  # H x L weights of the attention model
    assert "model/net/_target_" in sections["configs"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    shot = _chromium_run("--window-size=1400,3200", f"--screenshot={screenshot}", report.as_uri())
    assert shot.returncode == 0 and screenshot.stat().st_size > 20_000


def test_leaderboard_sorts_when_a_column_is_clicked(report, tmp_path):
    # The page sorts itself: click "mean" twice (ascending, then descending) and dump the result.
    clicking = report.read_text().replace(
        "</body>",
        "<script>const th = [...document.querySelectorAll('#leaderboard th')].find(t => t.textContent === 'mean');"
        "th.click(); th.click();</script></body>",
    )
    page = tmp_path / "clicked.html"
    page.write_text(clicking)
    dom = _chromium_run("--dump-dom", page.as_uri()).stdout
    body = _section(dom, "leaderboard").split("<tbody>")[1]
    rows = [re.findall(r'<td class="[^"]*" data-value="([^"]*)">', row) for row in re.findall(r"<tr>(.*?)</tr>", body)]
    means = [float(row[3]) for row in rows]  # rank, model, data, mean, ...
    assert len(means) == 2 and means == sorted(means, reverse=True)
    assert 'class="sorted"' in dom  # descending after the second click


def _section(dom: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', dom, re.S)
    assert match, f"section {name} missing"
    return match.group(1)


HOSTILE = "</script><script>document.title='pwned'</script><img src=x onerror=alert(1)> & __CSS__ __PAYLOAD__"


def test_every_string_from_mlflow_is_escaped(tmp_path):
    """Experiment, run, model and setting names come from a store anyone may write to: none becomes markup."""
    import json

    from tsattn.reporting.dashboard import render

    payload = {
        "experiment": HOSTILE,
        "summary": HOSTILE,
        "leaderboard": {
            "columns": ["rank", "model", "mean"],
            "text_columns": ["model"],
            "percent_columns": [],
            "rows": [[1, HOSTILE, 0.5]],
            "apart": [{"run": HOSTILE, "run_id": "x", "status": "FAILED", "why": HOSTILE}],
        },
        "curves": {},
        "horizon": {"metric": "mse", "models": {HOSTILE: [0.1, 0.2]}, "baselines": {}},
        "forecasts": {},
        "attention": {},
        "configs": {"columns": [HOSTILE], "rows": [[HOSTILE, HOSTILE]]},
    }
    page = render(payload)
    assert "<img" not in page
    assert page.count("<script") == page.count("</script>") == 2  # the payload and the page's script, no more
    assert "<title>tsattn: &lt;/script&gt;&lt;script&gt;" in page
    embedded = page.split('<script id="payload" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded)["leaderboard"]["rows"][0][1] == HOSTILE  # intact once parsed

    path = tmp_path / "hostile.html"
    path.write_text(page)
    dom = _chromium_run("--dump-dom", path.as_uri()).stdout
    assert 'data-rendered="ok"' in dom and "<img" not in dom.lower()
    title = dom.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title.startswith("tsattn: &lt;/script&gt;")  # text: a script that ran would have made it "pwned"
    assert "__CSS__ __PAYLOAD__" in page.split("</title>", 1)[0]  # markers in a name are not filled in
