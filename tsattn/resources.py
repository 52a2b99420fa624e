"""Where tsattn's own files live: the Hydra configs and the bundled dataset.

In a wheel they are copied inside the package (see pyproject's force-include); in a source checkout or an
editable install they sit at the top of the repository. Both layouts are looked up, package first.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_DIR = _PACKAGE_DIR.parent


def config_dir() -> Path:
    """The directory holding train.yaml and the config groups."""
    for candidate in (_PACKAGE_DIR / "conf", _REPO_DIR / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError("tsattn's conf/ directory is missing from this installation; reinstall tsattn")


def bundled_dataset(filename: str) -> str:
    """Absolute path of a dataset shipped with tsattn (used by conf/data/weather.yaml)."""
    for candidate in (_PACKAGE_DIR / "bundled" / filename, _REPO_DIR / "data" / filename):
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(f"bundled dataset {filename!r} is missing from this installation; reinstall tsattn")


def dashboard_dir() -> Path:
    """The dashboard's template and assets (dashboards/ in the repository)."""
    for candidate in (_PACKAGE_DIR / "dashboards", _REPO_DIR / "dashboards"):
        if (candidate / "template.html").is_file():
            return candidate
    raise FileNotFoundError("tsattn's dashboards/ directory is missing from this installation; reinstall tsattn")
