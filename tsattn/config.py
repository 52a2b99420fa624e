"""Composing tsattn's Hydra config outside the command line (tests, notebooks, scripts)."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from tsattn.resources import bundled_dataset, config_dir


def register_resolvers() -> None:
    """Make `${tsattn.bundled:FILE}` resolve to a dataset shipped with tsattn. Safe to call repeatedly."""
    if not OmegaConf.has_resolver("tsattn.bundled"):
        OmegaConf.register_new_resolver("tsattn.bundled", bundled_dataset)


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


def open_dict(cfg: DictConfig):
    from omegaconf import open_dict as _open_dict

    return _open_dict(cfg)
