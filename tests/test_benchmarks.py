"""The benchmark scripts: the ETTh1 protocol they reproduce, the tables they write, and MLflow behind them."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, tsattn_env

sys.path.insert(0, str(REPO / "benchmarks"))

from report import replace_section

QUICK = ["trainer.max_epochs=1", "+trainer.limit_train_batches=5", "+trainer.limit_val_batches=2"]


def _script(name: str, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / name), *args],
        cwd=REPO,
        env=tsattn_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_report_sections_replace_only_their_own_table(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    replace_section(path, "speed-cpu", "old speed")
    replace_section(path, "accuracy-M-H96", "accuracy table")
    replace_section(path, "speed-cpu", "new speed")
    text = path.read_text()
    assert text.startswith("# Benchmarks")
    assert "new speed" in text and "old speed" not in text and "accuracy table" in text
    assert text.index("new speed") < text.index("accuracy table")  # replaced in place, not moved


def test_accuracy_table_judges_every_bar_on_the_seed_means():
    from accuracy import Row, render

    rows = [
        Row("transformer", [0.370, 0.380, 0.378], [0.40] * 3, [80.0] * 3, [9] * 3),  # mean 0.376
        Row("attention_seq2seq", [0.43] * 3, [0.41] * 3, [70.0] * 3, [8] * 3),
        Row("lstm_seq2seq", [0.52] * 3, [0.45] * 3, [30.0] * 3, [8] * 3),
        Row("seasonal_naive", [0.512] * 3, [0.433] * 3, [1.0] * 3, [0] * 3),
    ]
    table = render("M", 96, rows, [0, 1, 2])
    assert "| tsattn transformer | 0.3760 +- 0.0053 |" in table
    assert "<= 0.4: met" in table and "<= 0.42: missed by 0.0100" in table and "<= 0.45: missed by 0.0700" in table
    assert "- Best forecaster: transformer, 0.3760; bar <= 0.375: missed by 0.0010." in table
    assert "- Better than seasonal naive (0.5120): not lstm_seq2seq." in table
    s_table = render("S", 96, [Row("lstm_seq2seq", [0.06] * 3, [0.18] * 3, [9.0] * 3, [5] * 3)], [0, 1, 2])
    assert "bar <= 0.062: met" in s_table and "<= 0.45" not in s_table


@pytest.mark.slow
def test_accuracy_reproduces_the_protocol_baselines_and_records_every_run(tmp_path, etth1_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    output = tmp_path / "BENCHMARKS.md"
    # Repeating the last value trains nothing: the runs cost their evaluation only (trained models are
    # measured by the script itself in `make bench`, and trained by every other test module).
    args = ["--settings", "M", "S", "--models", "last_value", "--seeds", "0"]
    args += ["--data", str(etth1_path), "--tracking-uri", uri, "--output", str(output)]
    args += [f"--override={o}" for o in [*QUICK, f"paths.log_dir={tmp_path / 'logs'}"]]
    result = _script("accuracy.py", args)

    text = output.read_text()
    for setting in ("M", "S"):
        section = text.split(f"<!-- accuracy-{setting}-H96 -->")[1].split(f"<!-- /accuracy-{setting}-H96 -->")[0]
        assert "python benchmarks/accuracy.py --settings M S" in section
        assert "| tsattn last_value |" in section and "| repeat last value (published) |" in section
        # Repeating the last value has no parameters: over the protocol's 2785 scaled test windows it must
        # give the published figure, which checks the borders, the scaler and the window count at once.
        last_value = re.search(r"\| tsattn last_value \| ([0-9.]+) \|", section)
        published = {"M": 1.295, "S": 0.069}[setting]
        assert last_value and abs(float(last_value[1]) - published) < 0.0015, section
    assert "| TimeMixer (published) | 0.375 | 0.400 |" in text
    assert "| NLinear (L=336) (published) | 0.053 | 0.177 |" in text
    assert "| tsattn last_value |" in result.stdout  # the table is printed too

    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("etth1-benchmark-S-H96").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED" and runs[0].data.tags["tsattn.model"] == "last_value"
    assert "benchmark" in runs[0].data.tags
    s_section = text.split("<!-- accuracy-S-H96 -->")[1]
    assert f"| tsattn last_value | {runs[0].data.metrics['test/mse']:.4f} |" in s_section  # the table's is MLflow's


@pytest.mark.parametrize("script", ["accuracy.py", "speed.py"])
def test_benchmarks_refuse_a_missing_dataset_in_one_line(tmp_path, script):
    output = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / script),
            "--data",
            str(tmp_path / "none.csv"),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and f"{script}: {tmp_path / 'none.csv'} not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not output.exists()


@pytest.mark.slow
def test_speed_compares_tsattn_with_the_plain_loop_and_times_decoding(tmp_path, etth1_path):
    output = tmp_path / "BENCHMARKS.md"
    args = [
        "--models",
        "lstm_seq2seq",
        "--batches",
        "3",
        "--epochs",
        "1",
        "--decode-windows",
        "16",
        "--phase-repeats",
        "1",
    ]
    _script("speed.py", [*args, "--data", str(etth1_path), "--output", str(output)])
    text = output.read_text()
    row = re.search(r"\| lstm_seq2seq \| [0-9,]+ \| \d+ \| ([0-9,]+) \| ([0-9,]+) \| ([0-9.]+)x \|", text)
    assert row, text
    tsattn, plain, ratio = (float(g.replace(",", "")) for g in row.groups())
    assert tsattn > 0 and plain > 0 and abs(ratio - tsattn / plain) < 0.01 + 0.01 * ratio
    phases = re.search(r"\| lstm_seq2seq \| ([0-9.]+) \| ([0-9,]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+)x \|", text)
    assert phases, text
    _, windows, validation, plain_validation, val_ratio = (float(g.replace(",", "")) for g in phases.groups())
    assert windows == 2785 and validation > 0 and plain_validation > 0
    assert abs(val_ratio - validation / plain_validation) < 0.01 + 0.01 * val_ratio
    for decoder in ("lstm_seq2seq", "attention_seq2seq", "transformer (autoregressive)"):
        times = re.search(rf"\| {re.escape(decoder)} \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \|", text)
        assert times, decoder
        assert float(times[3]) > float(times[1])  # 336 steps take longer than 24
