"""Ensemble bundles: several model bundles of the same data, forecasting as one model (the mean or median).

    ensemble.json          {"format": "tsattn-ensemble", "format_version": 1, "combine": "mean" | "median",
                            "members": [{"sha256": <content hash>, "source": <where it came from, for people>}]}
    members/<sha256>/      each member: a whole model bundle (schema.json, scaler.json, weights.safetensors)

An ensemble is data like a bundle: loading reads ensemble.json as JSON, finds each member only at
members/<its 64-hex-digit hash> (never at a path the file names), checks the member's files against that hash,
and loads it as any bundle (tsattn.inference.bundle.load_bundle, every check included). Members must share the
data contract (targets, columns, frequency, horizon, calendar, quantile levels, series and scaler statistics);
their lookbacks may differ. The loaded ensemble is a Bundle whose forecaster runs every member on the same
windows (each reads the last L of its own steps) and combines their outputs level by level, so every command
and engine that takes a bundle (forecast, backtest, tsattn.load, Spark, the pyfunc model) takes an ensemble.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tsattn import __version__
from tsattn.errors import TsattnError, one_line
from tsattn.inference.bundle import ENSEMBLE
from tsattn.inference.bundle_checks import MAX_JSON_BYTES, read_json, require

FORMAT = "tsattn-ensemble"
FORMAT_VERSION = 1
MEMBERS = "members"
COMBINE = ("mean", "median")
MAX_MEMBERS = 64  # each member is a whole network in memory; more than this is refused before any is read
MAX_ENSEMBLE_JSON_BYTES = 1 << 20
MAX_SOURCE = 1000
# What a member's hash covers: the files loading reads (config.yaml is for people and never read).
MEMBER_FILES = ("schema.json", "scaler.json", "weights.safetensors")
HASH = re.compile(r"^[0-9a-f]{64}$")
# Schema fields every member must share: they decide how the input is read and what the output means.
CONTRACT = (
    "layout",
    "time_col",
    "time_format",
    "id_col",
    "targets",
    "covariates",
    "future_covariates",
    "static",
    "freq",
    "calendar",
    "horizon",
    "season_length",
    "missing",
    "sep",
    "quantiles",
    "series",
    # The rows it was trained and validated on (the file's hash, each series' test border): backtests start at
    # the border, which must be every member's, so that no origin falls on rows a member was chosen on.
    "training_data",
)


class EnsembleForecaster(nn.Module):
    """The members' forecasts of the same windows, combined level by level.

    Args:
        members: the members' Forecasters, in eval mode.
        lookbacks: each member's L; the windows hold the longest, and each member reads its last L steps.
        combine: "mean" or "median" (the midpoint of the two middle members when their number is even).

    Shape:
        batch {"x": [B, L_max, F], "known_future": [B, H, K]} -> {"y_hat": [B, H, C] or [B, H, C, Q]}
    """

    def __init__(self, members: Sequence[nn.Module], lookbacks: Sequence[int], combine: str) -> None:
        super().__init__()
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, not {combine!r}")
        self.members = nn.ModuleList(members)
        self.lookbacks = list(lookbacks)
        self.combine = combine

    def forward(self, batch: dict[str, torch.Tensor], teacher_forcing_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        outputs = [
            member({"x": batch["x"][:, -lookback:], "known_future": batch["known_future"]})["y_hat"]
            for member, lookback in zip(self.members, self.lookbacks, strict=True)
        ]
        stacked = torch.stack(outputs)  # [M, B, H, C(, Q)]
        if self.combine == "mean":
            return {"y_hat": stacked.mean(dim=0)}
        return {"y_hat": torch.quantile(stacked, 0.5, dim=0)}  # each level's median, interpolated

    def point(self, y_hat: torch.Tensor) -> torch.Tensor:
        """The point forecast of combined outputs: every member shares the quantile levels, so the first says."""
        return self.members[0].point(y_hat)


def member_hash(directory: Path) -> str:
    """The content hash that names a member: SHA-256 over each file loading reads, its name, size and bytes (the
    size makes the boundaries between files part of what is hashed)."""
    digest = hashlib.sha256()
    for name in MEMBER_FILES:
        path = directory / name
        if path.is_symlink() or not path.is_file():
            raise TsattnError(f"{directory} is not a model bundle: {name} is missing or not a plain file")
        # Refused before it is read: loading would refuse it anyway, and hashing it first would cost its size.
        if name.endswith(".json") and path.stat().st_size > MAX_JSON_BYTES:
            raise TsattnError(f"{path}: over {MAX_JSON_BYTES >> 20} MB, the limit on a bundle's JSON files")
        digest.update(name.encode() + b"\0" + path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def is_ensemble(directory: Path) -> bool:
    return (Path(directory) / ENSEMBLE).is_file()


def loaded_files(directory: Path) -> list[str]:
    """The files loading reads, relative to `directory`: a bundle's three, or an ensemble's manifest and its
    members' files, each member checked as loading checks it (member_digests)."""
    if not is_ensemble(directory):
        return list(MEMBER_FILES)
    manifest = read_json(Path(directory) / ENSEMBLE, "ensemble manifest")
    digests = member_digests(Path(directory), manifest)
    return [ENSEMBLE, *(f"{MEMBERS}/{digest}/{name}" for digest in digests for name in MEMBER_FILES)]


def save_ensemble(members: Sequence[tuple[Path, str]], output: Path, combine: str = "mean") -> dict[str, Any]:
    """Write the ensemble of `members` (bundle directory, where it came from) to the new directory `output`.

    Every member is loaded first (a bundle that does not load is refused, naming it) and the contract checked;
    the directory appears whole or not at all. Returns the ensemble.json written.
    """
    from tsattn.inference.bundle import load_bundle
    from tsattn.inference.publish import publish

    if combine not in COMBINE:
        raise TsattnError(f"--combine {combine}: choose mean or median")
    if not 2 <= len(members) <= MAX_MEMBERS:
        raise TsattnError(f"an ensemble has 2 to {MAX_MEMBERS} members; {len(members)} given")
    loaded, entries, seen = [], [], {}
    for directory, source in members:
        if is_ensemble(directory):
            raise TsattnError(f"{source} is an ensemble; give its members instead (an ensemble's members are bundles)")
        bundle = load_bundle(directory, ensemble=False)
        digest = member_hash(directory)
        if digest in seen:
            raise TsattnError(f"{source} is the same model as {seen[digest]} (same files); give each member once")
        seen[digest] = source
        loaded.append((bundle, source))
        entries.append({"sha256": digest, "source": str(source)[:MAX_SOURCE]})
    check_contract(loaded)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tsattn_version": __version__,
        "combine": combine,
        "members": entries,
    }
    output = Path(output)
    if output.exists():
        raise TsattnError(f"-o {output} exists; give a new directory for the ensemble")
    partial = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial"))
    try:
        _write_members(members, entries, manifest, partial)
        publish(partial, output)
    except OSError as err:
        raise TsattnError(f"-o {output}: cannot write the ensemble ({one_line(err, 160)})") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return manifest


def _write_members(members, entries, manifest: dict[str, Any], partial: Path) -> None:
    """Each member's files under members/<hash>/, then the manifest, into the directory being made."""
    for (directory, _), entry in zip(members, entries, strict=True):
        target = partial / MEMBERS / entry["sha256"]
        target.mkdir(parents=True)
        for name in MEMBER_FILES:
            shutil.copyfile(Path(directory) / name, target / name)
        config = Path(directory) / "config.yaml"  # for people, as in any bundle
        if config.is_file() and not config.is_symlink():
            shutil.copyfile(config, target / "config.yaml")
    (partial / ENSEMBLE).write_text(json.dumps(manifest, indent=2))


def same_statistics(one, other) -> bool:
    """Whether two fitted scalers hold the same series and, to float tolerance, the same means and stds."""
    import numpy as np

    mine, theirs = one.pairs, other.pairs
    return set(mine) == set(theirs) and all(
        np.allclose(mine[sid][0], theirs[sid][0]) and np.allclose(mine[sid][1], theirs[sid][1]) for sid in mine
    )


def check_contract(members: Sequence[tuple[Any, str]]) -> None:
    """Members agree on the data contract and the scaler statistics, or one line names the first difference."""
    first, first_source = members[0]
    for bundle, source in members[1:]:
        for key in CONTRACT:
            if key == "training_data" and first.schema.get(key) != bundle.schema.get(key):
                raise TsattnError(
                    f"{source} and {first_source} were trained on different rows (another file, or other test "
                    "borders); an ensemble's members are trained on the same data and split"
                )
            if first.schema.get(key) != bundle.schema.get(key):
                raise TsattnError(
                    f"{source} and {first_source} differ in {key} ({_short(bundle.schema.get(key))} against "
                    f"{_short(first.schema.get(key))}); an ensemble's members forecast the same data the same way"
                )
        if not same_statistics(first.scaler, bundle.scaler):
            raise TsattnError(
                f"{source} and {first_source} were scaled with different statistics (trained on different rows or "
                "files); an ensemble's members are trained on the same data and split"
            )


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_ensemble(directory: Path, device: str = "cpu"):
    """The ensemble at `directory` as a Bundle (tsattn.inference.bundle.Bundle) whose forecaster combines the
    members. Every way an ensemble can be wrong is one TsattnError naming the file; nothing it names is run."""
    from tsattn.inference.bundle import Bundle, load_bundle

    source = directory / ENSEMBLE
    if source.is_symlink():
        raise TsattnError(f"{source} is a link; an ensemble's manifest is a plain file inside its directory")
    if source.stat().st_size > MAX_ENSEMBLE_JSON_BYTES:
        raise TsattnError(
            f"{source}: over {MAX_ENSEMBLE_JSON_BYTES >> 10} kB; an ensemble names at most {MAX_MEMBERS} members"
        )
    manifest = read_json(source, "ensemble manifest")
    if manifest.get("format") != FORMAT:
        raise TsattnError(f"{directory} is not a tsattn ensemble (its {ENSEMBLE} has no tsattn-ensemble format)")
    version = manifest.get("format_version")
    is_version = isinstance(version, int) and not isinstance(version, bool) and version >= 1
    require(is_version, source, "format_version", "a whole number from 1")
    if version > FORMAT_VERSION:
        raise TsattnError(
            f"{source}: ensemble format {version} is newer than this tsattn reads ({FORMAT_VERSION}); upgrade tsattn"
        )
    combine = manifest.get("combine")
    require(combine in COMBINE, source, "combine", "mean or median")
    digests = member_digests(directory, manifest)
    forecasters, lookbacks, first, longest = [], [], None, None
    for digest in digests:
        member = directory / MEMBERS / digest
        if member_hash(member) != digest:
            raise TsattnError(
                f"{member}: its files do not match the hash that names it; the ensemble was changed after it was "
                "made"
            )
        bundle = load_bundle(member, device=device, ensemble=False)
        # Checked as each member loads, and only its network kept: 64 members never hold 64 copies of the
        # data's statistics at once (the first's and the longest lookback's are kept).
        if first is None:
            first = bundle
        else:
            check_contract([(first, str(directory / MEMBERS / digests[0])), (bundle, str(member))])
        if longest is None or bundle.lookback > longest.lookback:
            longest = bundle
        forecasters.append(bundle.forecaster)
        lookbacks.append(bundle.lookback)
    forecaster = EnsembleForecaster(forecasters, lookbacks, combine)
    schema = dict(longest.schema, ensemble={"combine": combine, "members": digests})
    return Bundle(path=directory, forecaster=forecaster.eval(), scaler=longest.scaler, schema=schema)


def member_digests(directory: Path, manifest: dict[str, Any]) -> list[str]:
    """The members' hashes of a manifest, each checked: 64 hex digits, once each, naming a real directory of
    members/ (not a link, nothing outside it). Anything else is one line."""
    source = directory / ENSEMBLE
    entries = manifest.get("members")
    require(isinstance(entries, list), source, "members", "a list")
    if not 2 <= len(entries) <= MAX_MEMBERS:
        raise TsattnError(f"{source}: {len(entries)} members; an ensemble has 2 to {MAX_MEMBERS}")
    root, digests = directory.resolve(), []
    for index, entry in enumerate(entries):
        require(isinstance(entry, dict), source, f"members[{index}]", "an object")
        digest = entry.get("sha256")
        is_hash = isinstance(digest, str) and bool(HASH.match(digest))
        require(is_hash, source, f"members[{index}].sha256", "64 hex digits")
        if digest in digests:
            raise TsattnError(f"{source}: member {digest[:12]}... is named twice; each member counts once")
        member = directory / MEMBERS / digest
        if member.is_symlink() or not member.is_dir() or member.resolve().parent != root / MEMBERS:
            raise TsattnError(f"{source}: member {digest[:12]}... is not a directory of {directory / MEMBERS}")
        digests.append(digest)
    return digests
