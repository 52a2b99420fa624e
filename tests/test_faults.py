"""Training that survives faults: SIGKILL and resume, SIGTERM and Ctrl-C, a NaN loss, an unreachable or a real
tracking server, and reruns that give the same numbers."""

from __future__ import annotations

import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import tsattn_env
from tsattn.cli import main

# Small enough for seconds, long enough (5 epochs) to be stopped in the middle; dropout on, so a resumed
# run only matches when the random generators are restored too; one thread in every process, so the
# runs in this process and in the victims' compute the same sums in the same order.
RESUMABLE = [
    "data=weather",
    "data.lookback=48",
    "data.horizon=12",
    "model.net.hidden_size=16",
    "model.net.dropout=0.2",
    "trainer.max_epochs=5",
    "+trainer.limit_train_batches=12",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.deterministic=true",
    "callbacks.early_stopping.patience=100",
    "threads=1",
]


def _only_run(log_dir):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{log_dir / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("weather").experiment_id])
    return client, run


def _history(client, run, key):
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: the same run, never stopped, in this process."""
    from tsattn.config import compose
    from tsattn.training.train import train

    log_dir = tmp_path_factory.mktemp("uninterrupted")
    train(compose([*RESUMABLE, f"paths.log_dir={log_dir}"]))
    return _only_run(log_dir)


def _start_victim(log_dir, cwd):
    """`tsattn train` in its own process, returned once its first checkpoint is on disk."""
    args = [sys.executable, "-m", "tsattn", "train", *RESUMABLE, f"paths.log_dir={log_dir}"]
    victim = subprocess.Popen(
        args, cwd=cwd, env=tsattn_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not list(log_dir.glob("checkpoints/*/*/last.ckpt")) and time.monotonic() < deadline:
        assert victim.poll() is None, "the run ended before it could be stopped: " + victim.communicate()[1][-2000:]
        time.sleep(0.02)
    assert victim.poll() is None, "the run ended before it could be stopped"
    return victim


def _assert_same_as_uninterrupted(uninterrupted, resumed_client, resumed):
    client_a, run_a = uninterrupted
    for key in ("train/loss", "val/loss"):
        a, b = dict(_history(client_a, run_a, key)), dict(_history(resumed_client, resumed, key))
        # An epoch stopped between its checkpoint and its metric logging is not logged again on resume;
        # every epoch after the checkpoint is, and every logged value equals the uninterrupted one.
        assert max(b) == max(a) and set(b) <= set(a) and len(b) >= len(a) - 1
        assert [b[step] for step in sorted(b)] == pytest.approx([a[step] for step in sorted(b)], rel=1e-6, abs=1e-9)
    for key in ("test/mse", "test/mae", "val/loss_best"):
        assert resumed.data.metrics[key] == pytest.approx(run_a.data.metrics[key], rel=1e-6, abs=1e-9)


@pytest.mark.slow
def test_sigkilled_run_resumed_with_ckpt_path_last_ends_as_if_never_stopped(tmp_path, uninterrupted):
    from tsattn.config import compose
    from tsattn.training.train import train

    log_dir = tmp_path / "b"
    victim = _start_victim(log_dir, tmp_path)
    os.kill(victim.pid, signal.SIGKILL)  # no cleanup of any kind: the MLflow run stays RUNNING
    victim.communicate()
    client, killed = _only_run(log_dir)
    assert killed.info.status == "RUNNING" and "test/mse" not in killed.data.metrics
    assert 1 <= len(_history(client, killed, "val/loss")) < 5

    train(compose([*RESUMABLE, f"paths.log_dir={log_dir}", "ckpt_path=last"]))
    client, resumed = _only_run(log_dir)  # the same MLflow run, continued
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"
    _assert_same_as_uninterrupted(uninterrupted, client, resumed)


@pytest.mark.slow
def test_sigterm_marks_the_run_killed_and_prints_the_command_that_resumes_it(tmp_path, uninterrupted, monkeypatch):
    log_dir = tmp_path / "c"
    victim = _start_victim(log_dir, tmp_path)
    os.kill(victim.pid, signal.SIGTERM)
    _, stderr = victim.communicate(timeout=120)
    assert victim.returncode == 130, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    client, stopped = _only_run(log_dir)
    assert stopped.info.status == "KILLED" and "interrupted" in stopped.data.tags["tsattn.error"]
    assert last.startswith(f"tsattn: error: interrupted; MLflow run {stopped.info.run_id} marked KILLED; ")
    assert "Traceback" not in stderr
    command = shlex.split(last.split("resume with: ", 1)[1])
    assert command[:2] == ["tsattn", "train"] and command[-1] == "ckpt_path=last"

    monkeypatch.chdir(tmp_path)
    assert main(command[1:]) == 0  # the printed command, as it stands
    client, resumed = _only_run(log_dir)
    assert resumed.info.run_id == stopped.info.run_id and resumed.info.status == "FINISHED"
    _assert_same_as_uninterrupted(uninterrupted, client, resumed)


def test_ctrl_c_in_forecast_and_backtest_writes_nothing(tmp_path, capsys, monkeypatch):
    from tests.conftest import BAD_CSV_DIR, build_bundle
    from tsattn.inference.output import TableWriter

    overrides = ["data=csv", f"data.path={BAD_CSV_DIR / 'good.csv'}", "data.lookback=8", "data.horizon=2"]
    bundle_dir, _ = build_bundle(tmp_path, *overrides, "model=linear", fit=False)
    started = []

    def interrupted_while_writing(writer, frame):
        Path(writer.path).write_text("half a file")  # the interrupt comes in the middle of the write
        started.append(writer.path)
        raise KeyboardInterrupt

    monkeypatch.setattr(TableWriter, "write", interrupted_while_writing)  # the one writer of both commands
    out = tmp_path / "out.csv"
    out.write_text("earlier output\n")
    for command in ("forecast", "backtest"):
        code = main([command, str(bundle_dir), str(BAD_CSV_DIR / "good.csv"), "-o", str(out)])
        assert code == 130 and started, command
        assert capsys.readouterr().err.strip().splitlines()[-1] == "tsattn: error: interrupted; nothing written"
        assert out.read_text() == "earlier output\n"
        assert not Path(started[-1]).exists()  # the temporary file it was writing is gone


def test_same_seed_and_config_give_identical_metrics(tmp_path):
    from tsattn.config import compose
    from tsattn.training.train import train

    overrides = [*RESUMABLE, "trainer.max_epochs=2", "logger=none"]
    first = train(compose([*overrides, f"paths.log_dir={tmp_path / 'one'}"]))
    second = train(compose([*overrides, f"paths.log_dir={tmp_path / 'two'}"]))
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first), {k: (first[k], second[k]) for k in first}


def test_nan_loss_stops_the_run_names_epoch_and_batch_and_marks_it_failed(tmp_path, monkeypatch):
    import torch

    from tsattn.config import compose
    from tsattn.training.callbacks import TrainingDiverged
    from tsattn.training.module import ForecastModule
    from tsattn.training.train import train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    original = ForecastModule.training_step

    def poisoned(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        return loss * float("nan") if (self.current_epoch, batch_idx) == (1, 2) else loss

    monkeypatch.setattr(ForecastModule, "training_step", poisoned)
    cfg = compose([*RESUMABLE, f"paths.log_dir={tmp_path}"])
    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 1, batch 2.*last good checkpoint is .*last\.ckpt"):
        train(cfg)

    client, run = _only_run(tmp_path)
    assert run.info.status == "FAILED"
    assert "became nan at epoch 1, batch 2" in run.data.tags["tsattn.error"]
    (last,) = tmp_path.glob("checkpoints/*/*/last.ckpt")
    weights = torch.load(last, weights_only=True)["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values())  # the good epoch-0 weights, kept
    assert len(_history(client, run, "val/loss")) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tracking_server_fails_in_seconds_before_reading_data(tmp_path, capsys):
    uri = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    code = main(["train", f"logger.tracking_uri={uri}", f"paths.log_dir={tmp_path}"])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith(f"tsattn: error: cannot reach the MLflow tracking server {uri}")
    assert time.monotonic() - started < 30  # MLflow's own retries take minutes
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_run_logged_over_http_to_a_real_mlflow_server(tmp_path):
    from mlflow import MlflowClient

    from tsattn.config import compose
    from tsattn.training.train import train

    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    store = ["--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"]
    artifacts = ["--artifacts-destination", str(tmp_path / "server-artifacts")]
    address = ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", *store, *artifacts, *address],
        cwd=tmp_path,
        env={**tsattn_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},  # no job-queue workers
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the server's workers share its process group: stopped together
    )
    try:
        _wait_for_health(uri, server)
        tiny = [*RESUMABLE, "trainer.max_epochs=1", "model=attention_seq2seq"]
        train(compose([*tiny, f"logger.tracking_uri={uri}", f"paths.log_dir={tmp_path}"]))
        client = MlflowClient(uri)
        (run,) = client.search_runs([client.get_experiment_by_name("weather").experiment_id])
        assert run.info.status == "FINISHED" and math.isfinite(run.data.metrics["test/mse"])
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server, not a local path
        paths = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert {"plots/test_forecasts.png", "plots/attention.png", "plots/attention.json"} <= paths
        assert (tmp_path / "server-artifacts").is_dir()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_for_health(uri: str, server: subprocess.Popen, timeout: float = 90) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "mlflow server exited"
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow server at {uri} did not become healthy in {timeout} s")


def test_a_directory_output_that_cannot_be_put_in_place_leaves_the_earlier_one(tmp_path, monkeypatch):
    """publish() sets an earlier directory output aside before renaming the new one over it; when that
    rename fails, the earlier output is back where it was and nothing half-written stays beside it."""
    import os

    from tsattn.inference import publish

    output, new = tmp_path / "forecast.parquet", tmp_path / "new"
    output.mkdir()
    (output / "part-0.parquet").write_text("earlier")
    new.mkdir()
    (new / "part-0.parquet").write_text("new")
    real = os.replace

    def failing(source, target):
        if Path(source) == new:
            raise OSError("disk full")
        return real(source, target)

    monkeypatch.setattr(publish.os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        publish.publish(new, output)
    assert (output / "part-0.parquet").read_text() == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forecast.parquet", "new"]
    monkeypatch.setattr(publish.os, "replace", real)
    publish.publish(new, output)
    assert (output / "part-0.parquet").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == [
        "forecast.parquet"
    ]
