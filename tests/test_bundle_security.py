"""A model bundle is data: tampered bundles are refused in one line (or are inert), and never run code.

Every payload below would create the marker file if anything in tsattn imported or called what it names:
Hydra-style `_target_` mappings (attribute paths through tsattn's own modules included), `_args_` and
`_partial_`, YAML python tags, and a pickle in place of the weights.
"""

from __future__ import annotations

import json
import pickle
import shutil
import time

import pandas as pd
import pytest
import yaml

from tests.conftest import BAD_CSV_DIR
from tsattn.cli import main

GOOD = BAD_CSV_DIR / "good.csv"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A small LSTM seq2seq (hidden size 8) trained on good.csv, saved as a bundle; and its clean forecast."""
    from tsattn.config import compose
    from tsattn.inference.bundle import save_bundle
    from tsattn.training.train import Training

    root = tmp_path_factory.mktemp("bundle")
    overrides = [
        "data=csv",
        f"data.path={GOOD}",
        "data.lookback=8",
        "data.horizon=2",
        "model.net.hidden_size=8",
        "logger=none",
        "callbacks=none",
        "trainer.max_epochs=1",
        "test=false",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.log_dir={root / 'logs'}",
    ]
    run = Training(compose(overrides), track=False)
    run.run()
    directory = save_bundle(root / "clean", run.model, run.datamodule, run.cfg, "lstm_seq2seq", run.net_options)
    out = root / "clean.csv"
    assert main(["forecast", str(directory), str(GOOD), "-o", str(out), "--quiet"]) == 0
    return directory, pd.read_csv(out)


def _payloads(marker) -> list:
    """Mappings that run code (the first three create `marker`) when Hydra instantiates them; the last
    would hand back a partial of `open` for later code to call."""
    return [
        {"_target_": "tsattn.models.layers.torch.save", "obj": 1, "f": str(marker)},
        {"_target_": "tsattn.models.lstm_seq2seq.torch.save", "obj": 1, "f": str(marker)},
        {"_target_": "builtins.open", "_args_": [str(marker), "w"]},
        {"_target_": "builtins.open", "_partial_": True, "file": str(marker), "mode": "w"},
    ]


def test_the_payloads_do_run_code_when_instantiated(tmp_path):
    """The control for the tests below: what a bundle is refused for would really have run."""
    from hydra.utils import instantiate

    marker = tmp_path / "ran"
    for payload in _payloads(marker)[:3]:
        handle = instantiate(payload)
        if hasattr(handle, "close"):
            handle.close()
        assert marker.exists(), payload
        marker.unlink()
    instantiate(_payloads(marker)[3])().close()  # the partial, once called
    assert marker.exists()


def _forecast(directory, tmp_path, capsys) -> tuple[int, str, pd.DataFrame | None]:
    out = tmp_path / "out.csv"
    out.unlink(missing_ok=True)
    code = main(["forecast", str(directory), str(GOOD), "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err, pd.read_csv(out) if out.exists() else None


def _copy(bundle_dir, tmp_path, name):
    target = tmp_path / name
    shutil.rmtree(target, ignore_errors=True)
    return shutil.copytree(bundle_dir, target)


def _leaf_paths(tree, prefix=()):
    """Every value position in a JSON tree (the first element of each list stands for the list)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield (*prefix, key)
            yield from _leaf_paths(value, (*prefix, key))
    elif isinstance(tree, list) and tree:
        yield (*prefix, 0)
        yield from _leaf_paths(tree[0], (*prefix, 0))


def _replaced(tree, path, value):
    tree = json.loads(json.dumps(tree))
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


@pytest.mark.parametrize("filename", ["schema.json", "scaler.json"])
def test_a_target_in_any_value_of_a_json_file_is_refused_and_never_runs(bundle, tmp_path, capsys, filename):
    clean, _ = bundle
    original = json.loads((clean / filename).read_text())
    marker = tmp_path / "ran"
    paths = list(_leaf_paths(original))
    assert len(paths) > (20 if filename == "schema.json" else 4)
    for path in paths:
        for payload in _payloads(marker):
            tampered = _copy(clean, tmp_path, "tampered")
            (tampered / filename).write_text(json.dumps(_replaced(original, path, payload)))
            code, err, frame = _forecast(tampered, tmp_path, capsys)
            assert code == 2 and frame is None, (path, err)
            assert err.startswith("tsattn: error: ") and len(err.strip().splitlines()) == 1, (path, err)
            assert not marker.exists(), path


def test_attribute_path_network_names_are_not_looked_up(bundle, tmp_path, capsys):
    clean, _ = bundle
    for network in ("tsattn.models.layers.torch.hub.load", "tsattn.models.lstm_seq2seq.LSTMSeq2Seq", "os.system"):
        tampered = _copy(clean, tmp_path, "tampered")
        schema = json.loads((tampered / "schema.json").read_text())
        schema["network"] = network
        (tampered / "schema.json").write_text(json.dumps(schema))
        code, err, _ = _forecast(tampered, tmp_path, capsys)
        assert code == 2 and f"unknown network {network!r}" in err, err


def test_config_yaml_is_never_read_so_targets_and_python_tags_there_are_inert(bundle, tmp_path, capsys):
    clean, expected = bundle
    marker = tmp_path / "ran"
    config = yaml.safe_load((clean / "config.yaml").read_text())
    config["model"]["net"] = _payloads(marker)[0]
    config["model"]["extra"] = _payloads(marker)[2]
    tagged = yaml.safe_dump(config) + f"evil: !!python/object/apply:builtins.open ['{marker}', 'w']\n"
    tampered = _copy(clean, tmp_path, "tampered")
    (tampered / "config.yaml").write_text(tagged)
    code, err, frame = _forecast(tampered, tmp_path, capsys)
    assert code == 0, err
    pd.testing.assert_frame_equal(frame, expected)  # the same model: config.yaml decided nothing
    assert not marker.exists()


class _Payload:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_in_place_of_the_weights_is_refused_without_running(bundle, tmp_path, capsys):
    clean, _ = bundle
    marker = tmp_path / "ran"
    tampered = _copy(clean, tmp_path, "tampered")
    (tampered / "weights.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    code, err, _ = _forecast(tampered, tmp_path, capsys)
    assert code == 2 and "is not a valid safetensors file" in err
    assert not marker.exists()
    # The control: loading the same bytes with pickle does run the payload.
    pickle.loads((tampered / "weights.safetensors").read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(
    "hidden_size, expected",
    [
        (10**9, "network_options.hidden_size is 1000000000, out of range"),
        (
            10**6,
            "tensor 'decoder.bias_hh_l0' is [32] in the weights but the bundle's network_options make it [4,000,000]",
        ),
        (16, "the sizes do not match the weights"),
    ],
)
def test_sizes_that_do_not_match_the_weights_are_refused_in_under_a_second(
    bundle, tmp_path, capsys, hidden_size, expected
):
    clean, _ = bundle
    tampered = _copy(clean, tmp_path, "tampered")
    schema = json.loads((tampered / "schema.json").read_text())
    assert schema["network_options"]["hidden_size"] == 8
    schema["network_options"]["hidden_size"] = hidden_size
    (tampered / "schema.json").write_text(json.dumps(schema))
    from tsattn.errors import TsattnError
    from tsattn.inference.bundle import load_bundle

    started = time.perf_counter()
    with pytest.raises(TsattnError) as raised:
        load_bundle(tampered)
    assert time.perf_counter() - started < 1.0
    assert expected in str(raised.value)
    code, err, _ = _forecast(tampered, tmp_path, capsys)
    assert code == 2 and expected in err


def test_unknown_and_non_plain_options_are_refused(bundle, tmp_path, capsys):
    clean, _ = bundle
    cases = {
        ("network_options", "bias"): (True, "network_options names 'bias', which LSTMSeq2Seq does not take"),
        ("network_options", "quantiles"): (["0.5"], "network_options.quantiles is a list that is not all numbers"),
        ("module_options", "optimizer"): ("torch.optim.SGD", "module_options names 'optimizer'"),
        ("module_options", "loss"): ("l3", "module_options.loss is not one of mse, mae, huber, arctan_mae, fredf"),
    }
    for (section, key), (value, expected) in cases.items():
        tampered = _copy(clean, tmp_path, "tampered")
        schema = json.loads((tampered / "schema.json").read_text())
        schema[section][key] = value
        (tampered / "schema.json").write_text(json.dumps(schema))
        code, err, _ = _forecast(tampered, tmp_path, capsys)
        assert code == 2 and expected in err, (key, err)


def test_format_1_bundles_and_newer_versions_are_refused_with_the_fix(bundle, tmp_path, capsys):
    clean, _ = bundle
    for changes, expected in (
        ({"format_version": 1}, "is a format 1 bundle, which named a Python class to build"),
        ({"tsattn_version": "7.0.0"}, "was saved by tsattn 7.0.0"),
        ({"format_version": 4}, "(bundle format 4)"),
    ):
        tampered = _copy(clean, tmp_path, "tampered")
        schema = json.loads((tampered / "schema.json").read_text())
        (tampered / "schema.json").write_text(json.dumps({**schema, **changes}))
        code, err, _ = _forecast(tampered, tmp_path, capsys)
        assert code == 2 and expected in err and "retrain" in err, err
    tampered = _copy(clean, tmp_path, "tampered")
    (tampered / "schema.json").write_text(json.dumps({"format": "other"}))
    code, err, _ = _forecast(tampered, tmp_path, capsys)
    assert code == 2 and "is not a tsattn model bundle" in err


def test_bundles_saved_before_the_known_channels_were_renamed_forecast_as_they_did(bundle, tmp_path, capsys):
    """Format 3 bundles saved network_options.n_calendar (today n_known) and module_options.revin, a boolean
    (today normalization): they load and forecast the same; an option no network takes is still refused."""
    clean, expected = bundle
    old = _copy(clean, tmp_path, "old")
    schema = json.loads((old / "schema.json").read_text())
    options, module_options = schema["network_options"], schema["module_options"]
    assert "n_known" in options and "n_calendar" not in options
    options["n_calendar"] = options.pop("n_known")
    assert module_options.pop("normalization") == "revin"
    module_options["revin"] = "yes"
    (old / "schema.json").write_text(json.dumps(schema))
    code, err, _ = _forecast(old, tmp_path, capsys)
    assert code == 2 and "module_options.revin is not true or false" in err, err
    module_options["revin"] = True
    (old / "schema.json").write_text(json.dumps(schema))
    code, err, forecast = _forecast(old, tmp_path, capsys)
    assert code == 0, err
    pd.testing.assert_frame_equal(forecast, expected)
    options["n_hidden_channels"] = 3
    (old / "schema.json").write_text(json.dumps(schema))
    code, err, _ = _forecast(old, tmp_path, capsys)
    assert code == 2 and "network_options names 'n_hidden_channels'" in err, err


def test_json_that_is_not_plain_data_is_refused(bundle, tmp_path, capsys):
    clean, _ = bundle
    tampered = _copy(clean, tmp_path, "tampered")
    text = (tampered / "scaler.json").read_text()
    (tampered / "scaler.json").write_text(text.replace("[", "[NaN, ", 1))
    code, err, _ = _forecast(tampered, tmp_path, capsys)
    assert code == 2 and "scaler is not valid JSON (NaN is not a number a bundle may hold" in err
    (tampered / "schema.json").write_text("format: tsattn-bundle\n")  # YAML, not JSON
    code, err, _ = _forecast(tampered, tmp_path, capsys)
    assert code == 2 and "the schema is not valid JSON" in err


def _tampered(clean, tmp_path, change) -> object:
    tampered = _copy(clean, tmp_path, "tampered")
    schema = json.loads((tampered / "schema.json").read_text())
    change(schema)
    (tampered / "schema.json").write_text(json.dumps(schema))
    return tampered


CHANGES = {
    "layers": (lambda s: s["network_options"].update(num_layers=10**6), "num_layers=1000000 is above 256"),
    "negative": (lambda s: s["network_options"].update(hidden_size=-8), "(integers are never negative)"),
    "text_for_a_number": (lambda s: s["network_options"].update(dropout="0.1"), "dropout='0.1' is not a float"),
    "long_horizon": (lambda s: s.update(horizon=10**6), "horizon must be an integer from 1 to 20,000"),
    "more_targets": (lambda s: s["network_options"].update(n_targets=5), "network_options.n_targets=5 but the data"),
    "segments": (lambda s: s["module_options"].update(segment_len=9), "segment_len=9 must be between 1 and data."),
    "no_segment": (lambda s: s["module_options"].update(segment_len=0), "segment_len=0 must be between 1 and data."),
    "quantiles": (lambda s: s.update(quantiles=[0.1, 0.9]), "network_options.quantiles=None but the data"),
    "identity": (lambda s: s["module_options"].update(channel_identity=True), "network_options.n_features="),
    "not_a_time": (lambda s: s["training_data"]["test_start"].update(good="someday"), "is not a time"),
    "rule_digits": (lambda s: s.update(best_naive="seasonal_naive_\u00b2"), "best_naive must be null, last_value or"),
    "rule_too_long": (lambda s: s.update(best_naive="seasonal_naive_9"), "with m at most the lookback"),
    "rule_huge": (lambda s: s.update(best_naive="seasonal_naive_" + "9" * 5000), "best_naive must be null"),
    "lags_a_number": (lambda s: s["module_options"].update(seasonal_lags=5), "seasonal_lags must list at most 16"),
    "lags_twice": (lambda s: s["module_options"].update(seasonal_lags=[2, 2]), "16 distinct seasons of 1 to 8"),
    "lags_too_long": (lambda s: s["module_options"].update(seasonal_lags=[9]), "16 distinct seasons of 1 to 8"),
    "sep_line_end": (lambda s: s.update(sep="\n"), "sep must be one character"),
    "sep_quote": (lambda s: s.update(sep='"'), "sep must be one character"),
    "options_a_list": (lambda s: s.update(module_options=[]), "module_options must be a mapping of options"),
}
# Keys a bundle from an older tsattn may lack: loading gives them their old meaning.
OPTIONAL_KEYS = {"future_covariates", "static", "best_naive", "interval_offsets", "time_format"}


def test_every_key_of_the_schema_is_checked_when_it_is_missing(bundle, tmp_path, capsys):
    """Each key deleted in turn: a required one is refused in one line naming it (never a KeyError's
    traceback), an optional one forecasts as the clean bundle does."""
    clean, forecast = bundle
    keys = list(json.loads((clean / "schema.json").read_text()))
    assert {"network", "network_options", "module_options", "sep"} <= set(keys)
    for key in keys:
        code, err, frame = _forecast(_tampered(clean, tmp_path, lambda s, key=key: s.pop(key)), tmp_path, capsys)
        if key in OPTIONAL_KEYS:
            assert code == 0 and frame.equals(forecast), key
        else:
            assert code == 2 and frame is None and len(err.strip().splitlines()) == 1, (key, err)
            versions = ("format", "format_version", "tsattn_version")  # refused as another format or version
            assert key in err or (key in versions and ("format" in err or "version" in err)), (key, err)


@pytest.mark.parametrize("case", CHANGES)
def test_a_schema_that_disagrees_with_its_network_or_itself_is_refused(bundle, tmp_path, capsys, case):
    clean, _ = bundle
    change, expected = CHANGES[case]
    started = time.perf_counter()
    code, err, frame = _forecast(_tampered(clean, tmp_path, change), tmp_path, capsys)
    assert code == 2 and frame is None and expected in err, err
    assert time.perf_counter() - started < 5  # refused before any real work


def test_options_that_build_nothing_and_json_nested_without_end_are_one_line(bundle, tmp_path, capsys):
    from tests.conftest import build_bundle

    overrides = ["data=csv", f"data.path={GOOD}", "data.lookback=8", "data.horizon=2", "model=transformer"]
    transformer, _ = build_bundle(
        tmp_path / "t", *overrides, "model.net.d_model=16", "model.net.label_len=4", fit=False
    )
    odd_heads = _tampered(transformer, tmp_path, lambda s: s["network_options"].update(nhead=3))
    code, err, _ = _forecast(odd_heads, tmp_path, capsys)  # torch asserts that nhead divides d_model
    assert code == 2 and "network_options do not build a TransformerForecaster" in err

    clean, _ = bundle
    deep = _copy(clean, tmp_path, "deep")
    (deep / "schema.json").write_text("[" * 200_000)
    code, err, _ = _forecast(deep, tmp_path, capsys)
    assert code == 2 and "the schema is not valid JSON" in err


def test_no_command_writes_a_non_finite_forecast(bundle, tmp_path, capsys):
    """A history value of 1e300, NaN weights, or a scaler std of 1e-300: one line and exit 2, never a CSV of
    NaN or inf with exit 0."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    clean, _ = bundle
    huge = tmp_path / "huge.csv"
    frame = pd.read_csv(GOOD)
    frame.loc[len(frame) - 3, "value"] = 1e300  # inside the last window, and before some backtest origins
    frame.to_csv(huge, index=False)
    for command in ("forecast", "backtest"):
        out = tmp_path / f"{command}.csv"
        code = main([command, str(clean), str(huge), "-o", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and not out.exists(), command
        assert "is not a finite number" in err and "Traceback" not in err, err

    nan_weights = _copy(clean, tmp_path, "nan-weights")
    weights = load_file(nan_weights / "weights.safetensors")
    name = next(iter(weights))
    weights[name] = np.full_like(weights[name], np.nan)
    save_file(weights, nan_weights / "weights.safetensors")
    code, err, frame = _forecast(nan_weights, tmp_path, capsys)
    assert code == 2 and frame is None and "forecasts NaN or infinity on a window of zeros" in err, err

    tiny_std = _copy(clean, tmp_path, "tiny-std")
    scaler = json.loads((tiny_std / "scaler.json").read_text())
    for stats in scaler["stats"].values():
        stats["std"] = [1e-300 for _ in stats["std"]]
    (tiny_std / "scaler.json").write_text(json.dumps(scaler))
    code, err, frame = _forecast(tiny_std, tmp_path, capsys)
    assert code == 2 and frame is None and "a std of at least 1e-08 per column" in err, err


def test_what_a_bundle_cannot_hold_is_refused_before_training(tmp_path, capsys):
    """A column name longer than a bundle holds fails in seconds, before training, not at save_bundle; a
    season far longer than any window (a week of one-second data) is no limit, since nothing is sized by it."""
    frame = pd.read_csv(GOOD).rename(columns={"value": "v" * 300})
    long_name = tmp_path / "long_name.csv"
    frame.to_csv(long_name, index=False)
    args = ["train", "data=csv", f"data.path={long_name}", "data.lookback=8", "data.horizon=2", "model=linear"]
    started = time.perf_counter()
    assert main([*args, f"paths.log_dir={tmp_path / 'logs'}"]) == 2
    err = capsys.readouterr().err
    assert "is longer than 200 characters, more than a model bundle holds; rename the column" in err
    assert time.perf_counter() - started < 30 and not list((tmp_path / "logs").glob("checkpoints/*/*/*.ckpt"))


def test_a_season_longer_than_any_window_loads(bundle, tmp_path, capsys):
    clean, forecast = bundle
    code, err, frame = _forecast(_tampered(clean, tmp_path, lambda s: s.update(season_length=604_800)), tmp_path, capsys)
    assert code == 0 and frame.equals(forecast), err


def test_bundles_too_large_to_load_within_bounded_memory_are_refused_before_parsing(bundle, tmp_path, capsys):
    """A scaler.json over 64 MB, or a schema listing more than 1,000,000 series: one line, in well under the
    time and memory parsing them would take (a bundle at the bounds loads within about 1.5 GB)."""
    clean, _ = bundle
    padded = _copy(clean, tmp_path, "padded")
    text = (padded / "scaler.json").read_text()
    (padded / "scaler.json").write_text(text[:-1] + " " * (64 * 2**20) + text[-1])  # valid JSON, 64 MB of spaces
    started = time.perf_counter()
    code, err, frame = _forecast(padded, tmp_path, capsys)
    assert code == 2 and frame is None and "the scaler is over 64 MB; the bundle is refused" in err
    assert time.perf_counter() - started < 5

    many = _tampered(clean, tmp_path, lambda s: s.update(series=[f"s{i}" for i in range(1_000_001)]))
    code, err, frame = _forecast(many, tmp_path, capsys)
    assert code == 2 and frame is None and "series must be a list of 1 to 1,000,000 series ids" in err
