"""Model bundles: a directory of plain files that a later tsattn loads without unpickling anything.

    weights.safetensors   the network's tensors (safetensors: a JSON header and raw bytes, no code)
    config.yaml           the resolved model and data config the network is rebuilt from
    scaler.json           per-series, per-channel mean and std fit on the training rows
    schema.json           format, versions, column names, frequency, calendar features, L, H, sizes

Opening an untrusted bundle cannot run code: no pickle is read, and the network's class must be one of
tsattn's own (`tsattn.models.*`), checked before anything is built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tsattn import __version__
from tsattn.data.scaling import StandardScaler
from tsattn.errors import TsattnError

FORMAT = "tsattn-bundle"
FORMAT_VERSION = 1
WEIGHTS, CONFIG, SCALER, SCHEMA = "weights.safetensors", "config.yaml", "scaler.json", "schema.json"
ALLOWED_TARGET_PREFIX = "tsattn.models."


@dataclass
class Bundle:
    """A loaded bundle: the ForecastModule in eval mode, the scaler, the schema and the config."""

    path: Path
    module: Any  # tsattn.module.ForecastModule
    scaler: StandardScaler
    schema: dict[str, Any]
    config: dict[str, Any]

    @property
    def lookback(self) -> int:
        return int(self.schema["lookback"])

    @property
    def horizon(self) -> int:
        return int(self.schema["horizon"])


def save_bundle(
    directory: str | Path, module, datamodule, cfg: DictConfig, model_name: str, net_sizes: Mapping[str, int]
) -> Path:
    """Write the bundle of a trained ForecastModule and the datamodule it was trained on.

    Args:
        directory: created when missing; its files are overwritten.
        module: the ForecastModule (the best checkpoint's weights should already be loaded).
        datamodule: the ForecastDataModule after setup(), holding the scaler and the columns.
        cfg: the run's config; its model and data sections are saved resolved.
        model_name: the config choice (lstm_seq2seq, transformer...), for people reading the schema.
        net_sizes: the constructor arguments the data decided (channel counts, season length).
    """
    from safetensors.torch import save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_model(module.net, str(directory / WEIGHTS))
    config = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "data")}
    (directory / CONFIG).write_text(OmegaConf.to_yaml(config))
    (directory / SCALER).write_text(datamodule.scaler.to_json())
    collection = datamodule.collection
    schema = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tsattn_version": __version__,
        "model": model_name,
        "network": f"{type(module.net).__module__}.{type(module.net).__name__}",
        "layout": "long" if collection.id_col else "wide",
        "time_col": collection.time_col,
        "id_col": collection.id_col,
        "targets": collection.targets,
        "covariates": collection.covariates,
        "freq": collection.freq.freqstr,
        "calendar": datamodule.calendar_names,
        "lookback": datamodule.lookback,
        "horizon": datamodule.horizon,
        "net_sizes": dict(net_sizes),
        "quantiles": list(module.quantiles) if module.quantiles else None,
        "series": [s.id for s in collection.series],
    }
    (directory / SCHEMA).write_text(json.dumps(schema, indent=2))
    return directory


def load_bundle(directory: str | Path, device: str = "cpu") -> Bundle:
    """Rebuild the ForecastModule of a bundle, in eval mode, on `device`.

    Every way a bundle can be wrong (missing, not a bundle, another major version, a foreign class,
    corrupt weights) is one TsattnError naming the file.
    """
    import torch
    from hydra.utils import instantiate
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from tsattn.module import ForecastModule

    directory = Path(directory)
    if not directory.is_dir():
        raise TsattnError(f"{directory}: no such model bundle directory")
    schema = _read_json(directory / SCHEMA, "schema")
    if schema.get("format") != FORMAT:
        raise TsattnError(f"{directory} is not a tsattn model bundle (its schema.json has no tsattn format)")
    saved_major, own_major = str(schema.get("tsattn_version", "?")).split(".")[0], __version__.split(".")[0]
    if saved_major != own_major or int(schema.get("format_version", -1)) > FORMAT_VERSION:
        raise TsattnError(
            f"{directory} was saved by tsattn {schema.get('tsattn_version')} (bundle format "
            f"{schema.get('format_version')}); this is tsattn {__version__}: install tsattn "
            f"{saved_major}.x to load it, or retrain"
        )
    config = _read_yaml(directory / CONFIG)
    scaler = StandardScaler.from_dict(_read_json(directory / SCALER, "scaler"))
    net_cfg = config.get("model", {}).get("net")
    if not isinstance(net_cfg, Mapping):
        raise TsattnError(f"{directory / CONFIG} has no model.net section; the bundle is incomplete")
    _require_tsattn_targets(net_cfg, directory / CONFIG)

    net = instantiate(net_cfg, **schema["net_sizes"])
    model_cfg = config["model"]
    module = ForecastModule(
        net,
        loss=model_cfg.get("loss", "mse"),
        revin=bool(model_cfg.get("revin", False)),
        channel_independent=bool(model_cfg.get("channel_independent", False)),
        segment_len=int(model_cfg.get("segment_len", 1)),
        n_targets=len(schema["targets"]),
    )
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise TsattnError(f"{weights}: missing; the bundle has no weights")
    try:
        load_model(net, str(weights), strict=True, device=device)
    except (SafetensorError, OSError, RuntimeError, ValueError) as err:
        detail = " ".join(str(err).split())[:200]
        raise TsattnError(f"{weights} is not a valid safetensors file for this network ({detail})") from None
    module.to(torch.device(device)).eval()
    return Bundle(path=directory, module=module, scaler=scaler, schema=schema, config=config)


def _require_tsattn_targets(node: Any, source: Path) -> None:
    """Refuse any `_target_` outside tsattn.models: instantiating one would import and call arbitrary code."""
    if isinstance(node, Mapping):
        target = node.get("_target_")
        if target is not None and not str(target).startswith(ALLOWED_TARGET_PREFIX):
            raise TsattnError(f"{source} names {target!r}; a bundle may only build tsattn.models classes")
        for value in node.values():
            _require_tsattn_targets(value, source)
    elif isinstance(node, list):
        for value in node:
            _require_tsattn_targets(value, source)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise TsattnError(f"{path}: missing; not a complete tsattn model bundle")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TsattnError(f"{path}: the {what} is not valid JSON ({err}); the bundle is corrupt") from None
    if not isinstance(data, dict):
        raise TsattnError(f"{path}: the {what} is not a JSON object; the bundle is corrupt")
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TsattnError(f"{path}: missing; not a complete tsattn model bundle")
    try:
        # OmegaConf parses with yaml.SafeLoader-like rules: plain data only, no Python object tags.
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:
        raise TsattnError(f"{path}: not readable YAML ({' '.join(str(err).split())[:120]})") from None
    if not isinstance(data, dict):
        raise TsattnError(f"{path}: not a YAML mapping; the bundle is corrupt")
    return data
