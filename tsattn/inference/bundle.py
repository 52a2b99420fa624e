"""Model bundles: a directory of plain files that a later tsattn loads without running anything it names.

    weights.safetensors   the network's tensors (safetensors: a JSON header and raw bytes, no code)
    schema.json           what loading reads: the network's registry name and options, the module's
                          options, the data's columns (targets, past and future covariates),
                          frequency, calendar features, L, H, series
    scaler.json           per-series, per-channel mean and std fit on the training rows
    config.yaml           the run's resolved model and data config, for people; loading never reads it

Loading maps the network name to a class through tsattn's registry (tsattn/models/registry.py) and passes
plain values only (tsattn/inference/bundle_checks.py); sizes are checked against the weights before anything real is
built. Nothing a bundle names is imported or called.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsattn import __version__
from tsattn.data.io import NOT_SEPARATORS
from tsattn.data.naive import LINEAR_PATH_INITS, rule_key, rule_season
from tsattn.data.scaling import MIN_STD, StandardScaler
from tsattn.errors import TsattnError, one_line
from tsattn.inference.bundle_checks import (
    MAX_ID,
    MAX_INTEGER,
    MAX_JSON_BYTES,
    MAX_SERIES,
    MAX_STEPS,
    MAX_STRING,
    MAX_UNSAVED_BUFFER_ELEMENTS,
    check_agreement,
    check_shapes,
    is_count,
    is_name,
    is_names,
    n_known_channels,
    plain_options,
    read_json,
    require,
    weight_shapes,
)

FORMAT = "tsattn-bundle"
# 2: the network by registry name with plain options; format 1 named a Python class for Hydra to build.
# 3: the strongest simple forecast (best_naive), the linear path and the seasonal lag channels; format 2
# bundles, which have none of them, still load.
FORMAT_VERSION = 3
MIN_FORMAT_VERSION = 2
WEIGHTS, CONFIG, SCALER, SCHEMA = "weights.safetensors", "config.yaml", "scaler.json", "schema.json"
ENSEMBLE = "ensemble.json"  # an ensemble's manifest (tsattn.inference.ensemble) in place of schema.json
# ForecastModule arguments that are objects built by training, never read from a bundle.
MODULE_OBJECTS = ("net", "optimizer", "scheduler", "teacher_forcing")


@dataclass
class Bundle:
    """A loaded bundle: the Forecaster in eval mode, the scaler and the schema."""

    path: Path
    forecaster: Any  # tsattn.models.forecaster.Forecaster
    scaler: StandardScaler
    schema: dict[str, Any]

    @property
    def lookback(self) -> int:
        return int(self.schema["lookback"])

    @property
    def horizon(self) -> int:
        return int(self.schema["horizon"])

    @property
    def season_length(self) -> int:
        return int(self.schema["season_length"])

    @property
    def best_naive_season(self) -> int | None:
        """The season of the strongest simple forecast training chose on validation (1: last value); None in
        bundles from before it was chosen."""
        return rule_season(self.schema["best_naive"]) if self.schema.get("best_naive") else None

    @property
    def test_starts(self) -> dict[str, Any]:
        """Series id -> the first time of its test split in training (pandas Timestamps)."""
        import pandas as pd

        return {sid: pd.Timestamp(time) for sid, time in self.schema["training_data"]["test_start"].items()}


def save_bundle(
    directory: str | Path, module, datamodule, cfg, model_name: str, net_options: Mapping[str, Any]
) -> Path:
    """Write the bundle of a trained ForecastModule and the datamodule it was trained on.

    Args:
        directory: created when missing; its files are overwritten.
        module: the ForecastModule (the best checkpoint's weights should already be loaded).
        datamodule: the ForecastDataModule after setup(), holding the scaler, columns and borders.
        cfg: the run's config; its model and data sections are saved resolved, for people to read.
        model_name: the config choice (lstm_seq2seq, transformer...), for people reading the schema.
        net_options: every argument the network was built with (config values and data-decided sizes).
    """
    from omegaconf import OmegaConf
    from safetensors.torch import save_model

    from tsattn.data.io import file_sha256
    from tsattn.models.registry import network_name
    from tsattn.training.module import ForecastModule

    directory = Path(directory)
    network = network_name(module.net)
    net_options = plain_options(dict(net_options), type(module.net), directory / SCHEMA, "network_options")
    module_options = plain_options(
        dict(module.hparams), ForecastModule, directory / SCHEMA, "module_options", MODULE_OBJECTS
    )
    if not module_options.get("channel_identity"):
        # Written only when on: a bundle without it reads the same here and in releases that predate it.
        module_options.pop("channel_identity", None)
    if not module_options.get("n_future"):  # likewise: written only for a model with future covariates
        module_options.pop("n_future", None)
    if not module_options.get("conformal"):  # likewise: written only for calibrated intervals
        module_options.pop("conformal", None)
    if not module_options.get("seasonal_lags"):  # likewise: written only for a model that reads them
        module_options.pop("seasonal_lags", None)
    if module_options.get("linear_path_lr") == 1.0:  # likewise: written only when the path learns at a share
        module_options.pop("linear_path_lr", None)
    offsets = module.forecaster.interval_offsets
    collection = datamodule.collection
    schema = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tsattn_version": __version__,
        "model": model_name,
        "network": network,
        "network_options": net_options,
        "module_options": module_options,
        "layout": "long" if collection.id_col else "wide",
        "time_col": collection.time_col,
        "time_format": collection.time_format,
        "id_col": collection.id_col,
        "targets": collection.targets,
        "covariates": collection.covariates,
        "future_covariates": collection.future_covariates,
        # The static covariates' encoder: numeric columns' mean and std over the series, categorical levels.
        "static": datamodule.static_encoder.to_dict() if datamodule.static_encoder is not None else None,
        "freq": collection.freq.freqstr,
        "calendar": datamodule.calendar_names,
        "lookback": datamodule.lookback,
        "horizon": datamodule.horizon,
        "season_length": datamodule.season_length,
        # The strongest simple forecast on the validation windows (tsattn.data.naive): backtest scores it too.
        "best_naive": rule_key(datamodule.best_naive_season),
        "missing": datamodule.read_args["missing"],
        "sep": datamodule.read_args["sep"],
        "quantiles": list(module.quantiles) if module.quantiles else None,
        # Conformal offsets of the central intervals [H][C][P] (model.conformal=true), in scaled units.
        "interval_offsets": offsets.detach().cpu().tolist() if offsets is not None else None,
        "series": [s.id for s in collection.series],
        # Lets backtest recognise the training file and start at the test border instead of in-sample.
        "training_data": {"sha256": file_sha256(Path(datamodule.path)), "test_start": _test_starts(datamodule)},
    }
    # Checked on the way out as on the way in: what this tsattn writes, it can load.
    _check_schema(schema, directory / SCHEMA)
    check_agreement(schema, net_options, directory / SCHEMA)
    directory.mkdir(parents=True, exist_ok=True)
    save_model(module.net, str(directory / WEIGHTS))
    (directory / SCHEMA).write_text(json.dumps(schema, indent=2))
    (directory / SCALER).write_text(datamodule.scaler.to_json())
    config = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "data")}
    (directory / CONFIG).write_text(OmegaConf.to_yaml(config))
    return directory


def load_bundle(directory: str | Path, device: str = "cpu", ensemble: bool = True) -> Bundle:
    """Rebuild the Forecaster of a bundle, in eval mode, on `device` (no Lightning is imported).

    Every way a bundle can be wrong (missing, not a bundle, another format, an unknown network, options
    that are not plain values or do not fit the network, sizes that do not match the weights, corrupt
    weights) is one TsattnError naming the file. A directory holding an ensemble (tsattn.inference.ensemble)
    loads as one Bundle that combines its members; `ensemble=False` (how members are loaded) refuses that,
    so an ensemble never nests.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from tsattn.inference.ensemble import is_ensemble, load_ensemble
    from tsattn.models.forecaster import Forecaster
    from tsattn.models.registry import network_class

    directory = Path(directory)
    if not directory.is_dir():
        raise TsattnError(f"{directory}: no such model bundle directory")
    if is_ensemble(directory):
        if not ensemble:
            raise TsattnError(f"{directory}: an ensemble member is a model bundle, not another ensemble")
        return load_ensemble(directory, device=device)
    schema = read_json(directory / SCHEMA, "schema")
    _check_schema(schema, directory / SCHEMA)
    scaler = _read_scaler(directory / SCALER, schema)

    source = directory / SCHEMA
    net_class = network_class(schema["network"])
    net_options = plain_options(_renamed(schema["network_options"]), net_class, source, "network_options")
    forecaster_options = _forecaster_options(schema["module_options"], source)
    check_agreement(schema, net_options, source)
    weights = directory / WEIGHTS
    shapes = weight_shapes(weights)
    with torch.device("meta"):  # shapes without memory: a claimed size of 10^6 x 10^6 costs nothing here
        blueprint = _build(net_class, net_options, source)
    check_shapes(blueprint.state_dict(), shapes, weights)
    unsaved = sum(b.numel() for name, b in blueprint.named_buffers() if name not in shapes)
    if unsaved > MAX_UNSAVED_BUFFER_ELEMENTS:
        raise TsattnError(f"{source}: network_options ask for {unsaved:,} buffer values beyond the weights; refused")

    net = _build(net_class, net_options, source)
    try:
        load_model(net, str(weights), strict=True, device=device)
    except (SafetensorError, OSError, RuntimeError, ValueError) as err:
        detail = one_line(err, 200)
        raise TsattnError(f"{weights} is not a valid safetensors file for this network ({detail})") from None
    try:
        forecaster = Forecaster(net, **forecaster_options)
    except (ValueError, TypeError, TsattnError) as err:
        raise TsattnError(f"{source}: module_options do not fit ({err}); the bundle is corrupt") from None
    forecaster.to(torch.device(device)).eval()
    if schema["interval_offsets"] is not None:
        forecaster.set_interval_offsets(torch.tensor(schema["interval_offsets"], dtype=torch.float32))
    _dry_run(forecaster, schema, source)
    return Bundle(path=directory, forecaster=forecaster, scaler=scaler, schema=schema)


# Network options under the names earlier bundles saved them with (format 3 before 2026-12-07): same value.
RENAMED_OPTIONS = {"n_calendar": "n_known"}


def _renamed(options: Any) -> Any:
    """A bundle's network options under today's names; anything else is left for plain_options to judge."""
    if not isinstance(options, Mapping):
        return options
    renamed = dict(options)
    for old, new in RENAMED_OPTIONS.items():
        if old in renamed and new not in renamed:
            renamed[new] = renamed.pop(old)
    return renamed


# ForecastModule options that only training reads: checked for their type, not passed to the Forecaster.
# The loss names are tsattn.training.losses.TRAINING_LOSSES' (a test holds them equal), spelled out here so that
# loading a bundle does not import the training losses and torchmetrics behind them.
TRAINING_OPTIONS = {
    "loss": ("mse", "mae", "huber", "arctan_mae", "fredf", "smape", "mase", "smape_mase"),
    "teacher_forced_validation": (True, False),
    "conformal": (True, False),
    "linear_path_init": LINEAR_PATH_INITS,
}
# Training-only options that are numbers: the range each must lie in.
TRAINING_RATES = {"linear_path_lr": (0.0, 1.0)}


def _forecaster_options(options: Any, source: Path) -> dict[str, Any]:
    """The module options inference uses (the Forecaster's), checked; the training-only ones checked and set aside."""
    from tsattn.models.forecaster import Forecaster

    if not isinstance(options, Mapping):
        raise TsattnError(f"{source}: module_options is not a mapping; the bundle is corrupt")
    inference = dict(options)
    if "revin" in inference and "normalization" not in inference:
        # Bundles before 2026-12-07 saved model.revin, a boolean, where model.normalization now names the kind.
        revin = inference.pop("revin")
        if type(revin) is not bool:
            raise TsattnError(f"{source}: module_options.revin is not true or false; the bundle is corrupt")
        inference["normalization"] = "revin" if revin else "none"
    for name, allowed in TRAINING_OPTIONS.items():
        if name not in inference:
            continue
        value = inference.pop(name)
        if not any(type(value) is type(choice) and value == choice for choice in allowed):  # 1 is not True
            choices = ", ".join(map(str, allowed))
            raise TsattnError(f"{source}: module_options.{name} is not one of {choices}; corrupt bundle")
    for name, (low, high) in TRAINING_RATES.items():
        value = inference.pop(name, low)
        if type(value) not in (int, float) or not low <= value <= high:
            raise TsattnError(f"{source}: module_options.{name} is not a number in [{low:g}, {high:g}]; corrupt bundle")
    return plain_options(inference, Forecaster, source, "module_options", ("net",))


# What a network may raise on options that make no sense together (nhead not dividing d_model...).
_BUILD_ERRORS = (ValueError, TypeError, RuntimeError, AssertionError, ZeroDivisionError, IndexError, TsattnError)


def _build(net_class, options: dict[str, Any], source: Path):
    try:
        return net_class(**options)
    except _BUILD_ERRORS as err:
        detail = one_line(err, 200)
        raise TsattnError(f"{source}: network_options do not build a {net_class.__name__} ({detail})") from None


def _dry_run(module, schema: dict[str, Any], source: Path) -> None:
    """Forecast one window of zeros: options that build but cannot run, and weights that give no finite
    forecast, are refused now, in one line."""
    import torch

    n_known = n_known_channels(schema)
    n_values = len(schema["targets"]) + len(schema["covariates"])
    device = next(module.parameters(), torch.empty(0)).device
    window = {
        "x": torch.zeros(1, schema["lookback"], n_values + n_known, device=device),
        "known_future": torch.zeros(1, schema["horizon"], n_known, device=device),
    }
    try:
        with torch.inference_mode():
            output = module(window)["y_hat"]
    except _BUILD_ERRORS as err:
        detail = one_line(err, 200)
        raise TsattnError(f"{source}: the network does not run on one window of its own shape ({detail})") from None
    if not bool(torch.isfinite(output).all()):  # NaN or infinite weights: every forecast would be NaN
        raise TsattnError(
            f"{source}: the network forecasts NaN or infinity on a window of zeros; its weights are corrupt"
        )


# Bound on a static mean or a conformal offset (scaled units): beyond it float32 arithmetic loses the values.
MAX_STATISTIC = 1e12


def value_columns(schema: Mapping[str, Any]) -> list[str]:
    """The value columns a model reads, in its order: targets, past covariates, future covariates."""
    return [*schema["targets"], *schema["covariates"], *schema.get("future_covariates", [])]


def _is_offsets(offsets: Any, schema: Mapping[str, Any], quantiles: list[float]) -> bool:
    """Conformal offsets as save_bundle writes them: finite numbers, one per step, target and interval."""
    import math

    from tsattn.intervals import interval_pairs, median_level

    shape = (schema["horizon"], len(schema["targets"]), len(interval_pairs(quantiles)))

    def fits(value: Any, depth: int) -> bool:
        if depth == len(shape):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            return number and math.isfinite(value) and abs(value) <= MAX_STATISTIC
        return isinstance(value, list) and len(value) == shape[depth] and all(fits(v, depth + 1) for v in value)

    # The 0.5 level, which calibration leaves in place, must be there.
    return shape[2] > 0 and median_level(quantiles) is not None and fits(offsets, 0)


def static_columns(schema: Mapping[str, Any]) -> list[str]:
    """The static covariates a model reads (one value per series of a long file)."""
    return list((schema.get("static") or {}).get("columns", []))


def _is_static_encoder(state: Any) -> bool:
    """A static encoder as save_bundle writes it: columns, each numeric (finite mean, positive std) or
    categorical (at most MAX_LEVELS distinct level names), and nothing else."""
    import math

    from tsattn.data.static import MAX_LEVELS, MAX_WIDTH

    if not isinstance(state, dict) or set(state) != {"columns", "numeric", "categorical"}:
        return False
    columns, numeric, categorical = state["columns"], state["numeric"], state["categorical"]
    if not (is_names(columns) and columns and isinstance(numeric, dict) and isinstance(categorical, dict)):
        return False
    if set(numeric) | set(categorical) != set(columns) or set(numeric) & set(categorical):
        return False
    for pair in numeric.values():
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in pair)
            and pair[1] >= MIN_STD
            and abs(pair[0]) <= MAX_STATISTIC
        ):
            return False
    levels_ok = all(
        is_names(levels, limit=MAX_LEVELS) and levels and len(set(levels)) == len(levels)
        for levels in categorical.values()
    )
    return levels_ok and len(numeric) + sum(len(levels) for levels in categorical.values()) <= MAX_WIDTH


def _test_starts(datamodule) -> dict[str, str]:
    """Each series' first test time; for a series with no test rows, the step after its last row."""
    import pandas as pd

    starts = {}
    for series in datamodule.collection.series:
        border = datamodule.borders[series.id].val_end
        if border < len(series.time):
            starts[series.id] = str(series.time[border])
        else:  # every row was trained or validated on: nothing of it is out of sample
            starts[series.id] = str(pd.date_range(series.time[-1], periods=2, freq=datamodule.collection.freq)[1])
    return starts


# Every key a bundle's schema.json must hold; keys added later (future_covariates, static, best_naive,
# interval_offsets, time_format) take their old meaning when absent, so bundles from before them still load.
REQUIRED_KEYS = (
    "model",
    "network",
    "network_options",
    "module_options",
    "layout",
    "time_col",
    "id_col",
    "targets",
    "covariates",
    "series",
    "calendar",
    "freq",
    "lookback",
    "horizon",
    "season_length",
    "missing",
    "sep",
    "quantiles",
    "training_data",
)


def check_savable(collection, lookback: int, horizon: int, season_length: int) -> None:
    """What a bundle will require of the data and windows, checked before training rather than after it: a
    setting or a name that no bundle may hold is one line naming it, before the hour of training."""
    for option, value, high in (
        ("data.lookback", lookback, MAX_STEPS),
        ("data.horizon", horizon, MAX_STEPS),
        ("data.season_length", season_length, MAX_INTEGER),
    ):
        if not 1 <= value <= high:
            raise TsattnError(f"{option}={value}: a model bundle holds 1 to {high:,} steps; choose a smaller one")
    names = [*collection.columns, *collection.static_covariates, collection.time_col, collection.id_col]
    long_name = next((n for n in names if n is not None and not is_name(str(n))), None)
    if long_name is not None:
        raise TsattnError(
            f"{collection.source}: column name {str(long_name)[:40]!r}... is longer than {MAX_STRING} characters, "
            "more than a model bundle holds; rename the column"
        )
    if len(collection.series) > MAX_SERIES:
        raise TsattnError(
            f"{collection.source}: {len(collection.series):,} series, more than the {MAX_SERIES:,} a model bundle "
            "holds; train a model per part of the file"
        )
    # The scaler's JSON: per series its id and a mean and std per column, about 24 characters a number.
    size = sum(len(s.id) + 30 + 48 * len(collection.columns) for s in collection.series)
    if size > MAX_JSON_BYTES:
        raise TsattnError(
            f"{collection.source}: {len(collection.series):,} series of {len(collection.columns)} columns make a "
            f"scaler of about {size >> 20} MB, more than the {MAX_JSON_BYTES >> 20} MB a model bundle holds (so "
            "that any bundle loads within 1.5 GB); train a model per part of the file"
        )
    long_id = next((s.id for s in collection.series if not is_name(s.id, MAX_ID)), None)
    if long_id is not None:
        raise TsattnError(
            f"{collection.source}: series id {long_id[:40]!r}... is longer than {MAX_ID:,} characters, more than a "
            "model bundle holds; shorten the ids"
        )


def _check_schema(schema: dict[str, Any], source: Path) -> None:
    """Format and version first, then the type of every field forecasting reads."""
    import pandas as pd

    from tsattn.data.calendar import feature_names
    from tsattn.data.regularity import MISSING_POLICIES

    if schema.get("format") != FORMAT:
        raise TsattnError(f"{source.parent} is not a tsattn model bundle (its schema.json has no tsattn format)")
    saved = schema.get("tsattn_version")
    saved_major = str(saved).split(".")[0][:20]
    version = schema.get("format_version")
    if saved_major != __version__.split(".")[0] or not isinstance(version, int) or version > FORMAT_VERSION:
        raise TsattnError(
            f"{source.parent} was saved by tsattn {str(saved)[:20]} (bundle format {str(version)[:20]}); this is "
            f"tsattn {__version__}: install tsattn {saved_major}.x to load it, or retrain"
        )
    if version < MIN_FORMAT_VERSION:
        raise TsattnError(
            f"{source.parent} is a format {version} bundle, which named a Python class to build; this "
            "tsattn only loads networks by name, so retrain the model to get a bundle it can load"
        )
    missing = [key for key in REQUIRED_KEYS if key not in schema]
    if missing:
        raise TsattnError(f"{source}: the schema has no {', '.join(missing)}; the bundle is corrupt or incomplete")
    require(is_name(schema.get("model")), source, "model", "a name")
    require(schema.get("layout") in ("wide", "long"), source, "layout", '"wide" or "long"')
    require(is_name(schema.get("time_col")), source, "time_col", "a column name")
    schema.setdefault("time_format", None)  # bundles from before data.time_format read times by inference
    require(schema["time_format"] is None or is_name(schema["time_format"]), source, "time_format", "null or text")
    long = schema["layout"] == "long"
    require(is_name(schema.get("id_col")) if long else schema.get("id_col") is None, source, "id_col", "fit layout")
    require(is_names(schema.get("targets")) and bool(schema["targets"]), source, "targets", "column names")
    require(is_names(schema.get("covariates")), source, "covariates", "a list of column names")
    # Bundles written before future covariates existed have none.
    schema.setdefault("future_covariates", [])
    require(is_names(schema["future_covariates"]), source, "future_covariates", "a list of column names")
    schema.setdefault("static", None)
    require(schema["static"] is None or _is_static_encoder(schema["static"]), source, "static", "a static encoder")
    columns = value_columns(schema) + static_columns(schema)
    require(len(set(columns)) == len(columns), source, "targets", "columns with one role each")
    require(not static_columns(schema) or long, source, "static", "absent in a wide layout")
    series_ids = is_names(schema.get("series"), limit=MAX_SERIES, length=MAX_ID)
    require(series_ids and bool(schema["series"]), source, "series", f"a list of 1 to {MAX_SERIES:,} series ids")
    require(is_names(schema.get("calendar")), source, "calendar", "a list of calendar feature names")
    require(is_name(schema.get("freq")), source, "freq", "a pandas frequency alias")
    try:
        feature_names(None, schema["calendar"])
        pd.tseries.frequencies.to_offset(schema.get("freq"))
    except (TsattnError, ValueError, TypeError):
        raise TsattnError(f"{source}: freq or calendar is not one tsattn writes; the bundle is corrupt") from None
    for field in ("lookback", "horizon"):  # tensors are sized by these
        require(is_count(schema.get(field), high=MAX_STEPS), source, field, f"an integer from 1 to {MAX_STEPS:,}")
    # Only an offset into the history is taken from the season (a week of one-second data is 604,800 steps).
    require(is_count(schema.get("season_length")), source, "season_length", f"an integer from 1 to {MAX_INTEGER:,}")
    schema.setdefault("best_naive", None)  # bundles from before the strongest simple forecast was chosen
    best = schema["best_naive"]
    require(
        best is None or is_count(rule_season(best), high=schema["lookback"]),
        source,
        "best_naive",
        "null, last_value or seasonal_naive_<m> with m at most the lookback",
    )
    require(schema.get("missing") in MISSING_POLICIES, source, "missing", f"one of {', '.join(MISSING_POLICIES)}")
    sep = schema.get("sep")
    require(isinstance(sep, str) and len(sep) == 1 and sep not in NOT_SEPARATORS, source, "sep", "one character")
    require(is_name(schema.get("network")), source, "network", "a network's name")
    for options in ("network_options", "module_options"):
        require(isinstance(schema.get(options), dict), source, options, "a mapping of options")
    quantiles = schema.get("quantiles")
    levels_ok = isinstance(quantiles, list) and all(isinstance(q, float) and 0 < q < 1 for q in quantiles)
    levels_ok = levels_ok and all(a < b for a, b in zip(quantiles, quantiles[1:]))  # CRPS integrates them in order
    require(quantiles is None or levels_ok, source, "quantiles", "null or ascending levels in (0, 1)")
    schema.setdefault("interval_offsets", None)  # bundles from before conformal calibration have none
    offsets_ok = quantiles is not None and _is_offsets(schema["interval_offsets"], schema, quantiles)
    require(schema["interval_offsets"] is None or offsets_ok, source, "interval_offsets", "null or [H][C][P] numbers")
    training = schema.get("training_data")
    require(
        isinstance(training, dict)
        and isinstance(training.get("sha256"), str)
        and isinstance(training.get("test_start"), dict)
        and all(is_name(k, MAX_ID) and is_name(v) for k, v in training["test_start"].items()),
        source,
        "training_data",
        "the training file's hash and test borders",
    )
    try:
        for time in training["test_start"].values():
            if pd.Timestamp(time).tzinfo is not None:
                raise ValueError(time)
    except (ValueError, TypeError):
        raise TsattnError(f"{source}: training_data.test_start holds a value that is not a time; corrupt") from None


def _read_scaler(path: Path, schema: dict[str, Any]) -> StandardScaler:
    """The scaler's statistics: one finite mean and positive std per column, for each series."""
    import math

    data = read_json(path, "scaler")
    columns = value_columns(schema)
    require(data.get("columns") == columns, path, "columns", "the schema's targets, covariates, future covariates")
    stats = data.get("stats")
    require(
        isinstance(stats, dict) and 0 < len(stats) <= MAX_SERIES,
        path,
        "stats",
        f"a mapping of 1 to {MAX_SERIES:,} series to statistics",
    )

    def numbers(values, positive: bool) -> bool:
        return (
            isinstance(values, list)
            and len(values) == len(columns)
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
            # Training divides by 1 where a column's std is under MIN_STD; a smaller one (1e-300) is tampered
            # with, and would send every scaled value past float32's range.
            and (not positive or all(v >= MIN_STD for v in values))
        )

    for series_id, entry in stats.items():
        require(
            is_name(series_id)
            and isinstance(entry, dict)
            and set(entry) == {"mean", "std"}
            and numbers(entry["mean"], False)
            and numbers(entry["std"], True),
            path,
            f"stats of series {str(series_id)[:40]!r}",
            f"a mean and a std of at least {MIN_STD:g} per column",
        )
    return StandardScaler.from_dict(data)
