"""Every option under conf/ composes, and what it describes can be built."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger

from tests.conftest import REPO, m4_hourly_path
from tsattn.config import compose
from tsattn.data.datamodule import ForecastDataModule
from tsattn.models.registry import network_name
from tsattn.resources import config_dir
from tsattn.training.averaging import WeightAverage
from tsattn.training.train import build_components

GROUPS = sorted(p.name for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra")


def _options(group):
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory) -> str:
    """One MLflow store for every option below: a new sqlite store costs a second of table creation."""
    return f"sqlite:///{tmp_path_factory.mktemp('configs') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def m4_long(tmp_path_factory) -> Path:
    """The long M4 Hourly CSV that benchmarks/m4_hourly.py writes, written once for this module, for its first
    24 of the 414 series: composing needs the layout, not every series (all of them cost seconds per option)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from m4_hourly import read_m4, write_long

    histories, tests = read_m4(m4_hourly_path())
    first = sorted(histories, key=lambda key: int(key[1:]))[:24]
    subset = ({k: histories[k] for k in first}, {k: tests[k] for k in first})
    long_csv, *_ = write_long(*subset, tmp_path_factory.mktemp("m4"))
    return long_csv


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in _options(g)])
def test_option_composes_and_instantiates(group, option, tmp_path, weather_path, request, shared_store):
    overrides = [f"{group}={option}", f"paths.log_dir={tmp_path}"]
    if (group == "data" and option == "etth1") or (group == "experiment" and option.startswith("etth1")):
        overrides.append(f"data.path={request.getfixturevalue('etth1_path')}")
    if (group == "data" and option == "etth2") or (group == "experiment" and option.startswith("etth2")):
        overrides.append(f"data.path={request.getfixturevalue('etth1_path').with_name('ETTh2.csv')}")
    if option.startswith("m4_hourly"):
        overrides.append(f"data.path={request.getfixturevalue('m4_long')}")
    if group == "data" and option == "csv":
        overrides += [f"data.path={weather_path}", "data.id_col=city", "data.missing=interpolate"]
    cfg = compose(overrides)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("composes; the GPU trainer cannot be built without a CUDA device")
    if cfg.get("logger"):
        cfg.logger.tracking_uri = shared_store
    datamodule, model, trainer = build_components(cfg, with_logger=True)
    assert isinstance(datamodule, ForecastDataModule)
    parameter_free = re.sub(r"^(etth[12]|m4_hourly)_", "", option) in ("last_value", "seasonal_naive")
    assert model.trainable != parameter_free
    # The model's config name is its network's registry name: the name its bundles will carry.
    assert network_name(model.net) == cfg.hydra.runtime.choices.model
    callbacks = {type(c) for c in trainer.callbacks}
    checkpointing = ModelCheckpoint in callbacks and EarlyStopping in callbacks
    assert checkpointing == (cfg.hydra.runtime.choices.callbacks != "none")
    assert (WeightAverage in callbacks) == (cfg.hydra.runtime.choices.callbacks == "averaged")
    if cfg.get("logger"):
        assert isinstance(trainer.logger, MLFlowLogger)  # attached to the run tsattn created
        assert trainer.logger.experiment.get_run(trainer.logger.run_id).info.status == "RUNNING"
    else:
        assert trainer.logger is None


def test_default_is_lstm_on_bundled_co2(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = compose([f"paths.log_dir={tmp_path}"])
    assert cfg.model.net._target_ == "tsattn.models.lstm_seq2seq.LSTMSeq2Seq"
    assert cfg.data.name == "co2" and cfg.data.path.endswith("co2_weekly.csv")
    assert cfg.logger.run_name == "lstm_seq2seq-co2-seed0"
    assert cfg.logger.tracking_uri == f"sqlite:///{tmp_path}/mlflow/mlflow.db"  # every run under paths.log_dir


@pytest.mark.parametrize("option", _options("experiment"))
def test_experiments_pin_the_ett_protocol_and_name_their_data(option, tmp_path):
    cfg = compose([f"experiment={option}", f"paths.log_dir={tmp_path}"])
    split = cfg.data.split
    if option.startswith("m4_hourly_"):  # the competition's: the last 48 values test, the 48 before validate
        assert split._target_.endswith("TailSplit") and (split.val, split.test) == (48, 48)
        assert (cfg.data.lookback, cfg.data.horizon, cfg.data.name) == (168, 48, "m4_hourly")
        model = option.removeprefix("m4_hourly_")
        assert cfg.logger.run_name.startswith(f"{model}-m4_hourly-")
        assert cfg.logger.experiment_name == "m4-hourly-protocol"
        if model in ("lstm_seq2seq", "attention_seq2seq", "transformer"):  # chosen on M4's validation OWA (2026-12-08)
            assert cfg.model.loss == "smape_mase"
        return
    assert (split.train_end, split.val_end, split.test_end) == (8640, 11520, 14400)
    assert (cfg.data.lookback, cfg.data.horizon, cfg.data.targets) == (96, 96, None)
    dataset, model = option.split("_", 1)  # etth2_rlinear: the ETTh2 file, the rlinear model
    assert cfg.data.name == dataset and cfg.data.path.endswith(f"{dataset.replace('etth', 'ETTh')}.csv")
    assert cfg.logger.run_name.startswith(f"{model}-{dataset}-") and cfg.logger.experiment_name.startswith(dataset)
    if model in ("lstm_seq2seq", "attention_seq2seq", "transformer"):
        # The settings the ETTh tables were measured with, whatever model=<name>'s defaults become.
        chosen = cfg.model
        assert (chosen.optimizer.lr, chosen.channel_independent, chosen.segment_len) == (0.001, True, 24)
        assert cfg.data.calendar == "none" and chosen.linear_path_init == "ridge"
        settings = (
            chosen.normalization,
            chosen.scheduler.kind,
            chosen.net.linear_path,
            chosen.seasonal_lags,
            cfg.data.batch_size,
            cfg.callbacks.early_stopping.patience,
        )
        # Huber, chosen on ETTh1's validation for the three; ETTh2's keep MSE.
        huber = dataset == "etth1"
        assert chosen.loss == ("huber" if huber else "mse")
        if option == "etth1_lstm_seq2seq":  # SegRNN's recipe, chosen on ETTh1's validation (2026-12-07)
            assert settings == ("last_value", "step_decay", False, [], 256, 10)
            assert (chosen.net.decoding, chosen.net.hidden_size, chosen.net.dropout) == ("parallel", 512, 0.5)
            assert chosen.channel_identity and cfg.trainer.max_epochs == 30
            assert (chosen.scheduler.hold_epochs, chosen.scheduler.gamma) == (4, 0.8)
            return
        # The linear path and the lag channels, chosen on ETTh1's and ETTh2's validation (2026-12-07); the last
        # value subtracted where it won on that dataset's validation.
        normalization = "revin" if option in LAST_VALUE_LOST_ON_VALIDATION else "last_value"
        assert settings == (normalization, "plateau", True, "auto", 128, 4) and cfg.trainer.max_epochs == "auto"
        assert (chosen.scheduler.factor, chosen.scheduler.patience, chosen.channel_identity) == (0.5, 1, False)
        if model == "transformer":
            assert (chosen.net.label_len, chosen.net.d_model) == (2, 64)
        else:
            assert (chosen.teacher_forcing.start, chosen.net.hidden_size) == (0.0, 128)
            assert (chosen.net.decoding, chosen.net.dropout) == ("recurrent", 0.0)


# ETTh2's experiments that keep RevIN (the settings before 2026-12-07) because the last value lost there.
LAST_VALUE_LOST_ON_VALIDATION = {"etth2_lstm_seq2seq", "etth2_attention_seq2seq"}


@pytest.mark.parametrize("option", _options("hparams_search"))
def test_search_spaces_name_keys_that_exist(option, tmp_path):
    from omegaconf import OmegaConf

    from hydra_plugins.tsattn_optuna_sweeper.search_space import parse_search_space

    cfg = compose([f"hparams_search={option}", f"paths.log_dir={tmp_path}"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("TsattnOptunaSweeper")
    assert sweeper.metric == "val/loss_best" and sweeper.storage.startswith(f"sqlite:///{tmp_path}/optuna/")
    # val/loss_best is on the training loss's scale: a study never mixes two losses.
    assert sweeper.study_name == f"{option.removesuffix('_optuna')}-{cfg.data.name}-{cfg.model.loss}"
    space, fixed = parse_search_space([f"{k}={v}" for k, v in sweeper.params.items()])
    assert fixed == [] and len(space) >= 4
    for key in space:
        assert OmegaConf.select(cfg, key) is not None, key


def test_slurm_launcher_is_submitit(tmp_path):
    from hydra.utils import get_class

    cfg = compose(["hydra/launcher=slurm", f"paths.log_dir={tmp_path}"])
    assert get_class(cfg.hydra.launcher._target_).__name__ == "SlurmLauncher"
    assert cfg.hydra.launcher.gpus_per_node == 1


def test_ddp_config_spawns_inside_sweeps_only(tmp_path):
    cfg = compose(["trainer=ddp", f"paths.log_dir={tmp_path}"])
    assert cfg.trainer.strategy == "ddp"
    swept = compose(["trainer=ddp", f"paths.log_dir={tmp_path}", "hydra.mode=MULTIRUN"])
    assert swept.trainer.strategy == "ddp_spawn"


def test_csv_data_is_named_after_its_file():
    """data=csv names the data, and so the MLflow experiment, after the file, not `csv` for every file."""
    from tsattn.config import hydra_quoted

    named = (("/shop/sales.csv", "sales"), ("/x/ETTh1.csv.gz", "ETTh1"), ("/x/my data (v2).csv", "my_data_v2"))
    for path, name in named:
        cfg = compose(["data=csv", f"data.path={hydra_quoted(path)}"])
        assert cfg.data.name == name and cfg.logger.experiment_name == name
    assert compose(["data=csv", "data.path=/shop/sales.csv", "data.name=shop"]).logger.experiment_name == "shop"
