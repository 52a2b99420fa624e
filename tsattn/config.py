"""Composing tsattn's Hydra config outside the command line (tests, notebooks, scripts)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from tsattn.resources import bundled_dataset, config_dir
from tsattn.training.checkpoints import run_key


def ddp_strategy() -> str:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    return "ddp_spawn" if in_sweep else "ddp"


def default_threads() -> int:
    """`${tsattn.threads:}`: torch threads for one training process.

    OMP_NUM_THREADS when set; else the cores this process may use, shared by the jobs a parallel
    launcher runs at once (hydra.launcher.n_jobs): two jobs on two cores get one thread each, since two
    processes of two threads on two cores spin against each other and run many times slower.
    """
    import os

    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    from hydra.core.hydra_config import HydraConfig

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parallel = 1
    if HydraConfig.initialized():
        n_jobs = HydraConfig.get().launcher.get("n_jobs")
        if isinstance(n_jobs, int) and n_jobs != 0:
            parallel = cores if n_jobs < 0 else n_jobs  # joblib: -1 means one job per core
    return max(1, cores // parallel)


def mixed_precision() -> str:
    import torch

    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"


DATA_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst", ".csv", ".tsv", ".txt")


def file_stem(path: str) -> str:
    """`${tsattn.stem:${data.path}}`: data=csv's name (and so its MLflow experiment), the file's name without
    its folder and data suffixes (`sales.csv.gz` -> `sales`); characters other than letters, digits, `.`, `_`
    and `-` become `_`, so the name also makes a safe directory name."""
    name = Path(str(path)).name
    while Path(name).suffix.lower() in DATA_SUFFIXES:
        name = name[: -len(Path(name).suffix)]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "csv"


def on_terminal() -> bool:
    """`${tsattn.terminal:}`: whether standard output, where Lightning draws its progress bar, is a terminal."""
    import sys

    return sys.stdout.isatty()


def register_resolvers() -> None:
    """Register tsattn's interpolations; safe to call repeatedly.

    - `${tsattn.bundled:FILE}`: absolute path of a dataset shipped with tsattn.
    - `${tsattn.cwd:}`: the absolute directory tsattn was started from. Unlike `${hydra:runtime.cwd}` it
      also resolves in hydra.sweep.dir, before Hydra's runtime exists, and it keeps every job of a sweep
      on the same absolute paths (and so the same MLflow store).
    - `${tsattn.run_key:}`: a name for the run's config, so a restarted run finds its checkpoints.
    - `${tsattn.ddp_strategy:}`: "ddp", or "ddp_spawn" inside a multirun (ddp would re-run the sweep).
    - `${tsattn.mixed_precision:}`: "bf16-mixed" where the GPU supports bfloat16, else "16-mixed".
    - `${tsattn.threads:}`: torch threads per training process (default_threads).
    - `${tsattn.stem:PATH}`: a data file's name without folder and suffix (file_stem).
    - `${tsattn.terminal:}`: whether standard output is a terminal (on_terminal).
    """
    if not OmegaConf.has_resolver("tsattn.bundled"):
        OmegaConf.register_new_resolver("tsattn.bundled", bundled_dataset)
    if not OmegaConf.has_resolver("tsattn.cwd"):
        OmegaConf.register_new_resolver("tsattn.cwd", lambda: str(Path.cwd()))
    if not OmegaConf.has_resolver("tsattn.run_key"):
        OmegaConf.register_new_resolver("tsattn.run_key", run_key)
    if not OmegaConf.has_resolver("tsattn.ddp_strategy"):
        OmegaConf.register_new_resolver("tsattn.ddp_strategy", ddp_strategy)
    if not OmegaConf.has_resolver("tsattn.mixed_precision"):
        OmegaConf.register_new_resolver("tsattn.mixed_precision", mixed_precision)
    if not OmegaConf.has_resolver("tsattn.threads"):
        OmegaConf.register_new_resolver("tsattn.threads", default_threads)
    if not OmegaConf.has_resolver("tsattn.stem"):
        OmegaConf.register_new_resolver("tsattn.stem", file_stem)
    if not OmegaConf.has_resolver("tsattn.terminal"):
        OmegaConf.register_new_resolver("tsattn.terminal", on_terminal)


def compose(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """The config `tsattn train OVERRIDES...` would run, with Hydra's runtime section set.

    `${hydra:...}` interpolations (run dir, cwd, config choices) resolve as they do on the command line.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    # compose() leaves the output dir unset; give it the run dir a real launch would create.
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = cfg.hydra.run.dir
    HydraConfig.instance().set_config(cfg)
    return cfg


def hydra_quoted(value: object) -> str:
    """`value` as a quoted Hydra override value that reads back unchanged.

    Unquoted, a comma in a path makes a sweep, `${` an interpolation, and a space or a bracket a parse
    error. Backslashes are doubled where they would escape what follows: before a quote (Hydra's escape),
    before `${` (OmegaConf's: an even run of backslashes there would turn the interpolation back on, and a
    resolver such as oc.env would run on a path) and at the very end.
    """
    text = re.sub(r"\\+(?=')|\\+(?=\$\{)|\\+\Z", lambda m: m.group(0) * 2, str(value))
    return "'" + text.replace("'", "\\'").replace("${", "\\${") + "'"
