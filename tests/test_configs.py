"""Every option under conf/ composes, and what it describes can be built."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.loggers import MLFlowLogger

from tsattn.config import compose
from tsattn.data.datamodule import ForecastDataModule
from tsattn.resources import config_dir
from tsattn.train import build_components

GROUPS = sorted(p.name for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra")


def _options(group):
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in _options(g)])
def test_option_composes_and_instantiates(group, option, tmp_path, weather_path, request, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    overrides = [f"{group}={option}", f"paths.log_dir={tmp_path}"]
    if group == "data" and option == "etth1":
        overrides.append(f"data.path={request.getfixturevalue('etth1_path')}")
    if group == "data" and option == "csv":
        overrides += [f"data.path={weather_path}", "data.id_col=city", "data.missing=interpolate"]
    cfg = compose(overrides)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("composes; the GPU trainer cannot be built without a CUDA device")
    datamodule, model, trainer = build_components(cfg, with_logger=True)
    assert isinstance(datamodule, ForecastDataModule)
    parameter_free = group == "model" and option in ("last_value", "seasonal_naive")
    assert model.trainable != parameter_free
    assert trainer.max_epochs == cfg.trainer.max_epochs
    if cfg.get("logger"):
        assert cfg.logger.tracking_uri == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
        assert isinstance(trainer.logger, MLFlowLogger)  # attached to the run tsattn created
        assert trainer.logger.experiment.get_run(trainer.logger.run_id).info.status == "RUNNING"
    else:
        assert trainer.logger is None


def test_default_is_lstm_on_bundled_weather(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = compose([f"paths.log_dir={tmp_path}"])
    assert cfg.model.net._target_ == "tsattn.models.lstm_seq2seq.LSTMSeq2Seq"
    assert cfg.data.name == "weather" and cfg.data.path.endswith("weather_temps.csv")
    assert cfg.logger.run_name == "lstm_seq2seq-weather-seed0"
