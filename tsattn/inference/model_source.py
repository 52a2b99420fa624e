"""Find a model bundle from what a user types: a directory, runs:/<id>[/path] or models:/<name>/<version|alias>."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tsattn.errors import TsattnError, one_line
from tsattn.inference.bundle import ENSEMBLE, SCHEMA

MLFLOW_SCHEMES = ("runs:/", "models:/")


@contextlib.contextmanager
def bundle_directory(model: str, tracking_uri: str | None = None) -> Iterator[Path]:
    """The local directory of the bundle `model` names, downloaded to a temporary directory when remote.

    Accepted: a bundle directory; a run's `bundle/` or pyfunc `model/` directory; `runs:/<run id>` (its
    bundle), `runs:/<run id>/<artifact path>`; `models:/<name>/<version>` or `models:/<name>@<alias>`.
    """
    if not model.startswith(MLFLOW_SCHEMES):
        path = Path(model)
        if not path.exists():
            raise TsattnError(
                f"{model}: no such model bundle; give a bundle directory, runs:/<id> or models:/<name>/<v>"
            )
        yield _locate(path, model)
        return
    from tsattn.tracking.store import check_reachable, require_existing_store, resolve_tracking_uri

    tracking_uri = resolve_tracking_uri(tracking_uri)  # never MLflow's own default, a new ./mlflow.db
    require_existing_store(tracking_uri)  # first: reaching a sqlite store would create its directory
    check_reachable(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="tsattn-model-") as tmp:
        yield _locate(_download(model, tracking_uri, Path(tmp)), model)


def _download(model: str, tracking_uri: str, destination: Path) -> Path:
    import mlflow.artifacts
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = model
    if model.startswith("runs:/") and model.rstrip("/").count("/") == 1:
        uri = model.rstrip("/") + "/bundle"  # runs:/<id>: the run's bundle
    try:
        if model.startswith("models:/"):
            # The registry lives in the tracking store here; resolving through a client keeps MLflow's
            # global registry URI (a ./mlflow.db by default) out of it.
            uri = _registry_source(MlflowClient(tracking_uri, registry_uri=tracking_uri), model)
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(destination), tracking_uri=tracking_uri
        )
        return Path(path)
    except MlflowException as err:
        message = one_line(err, 300)
        raise TsattnError(
            f"{model}: cannot fetch it from MLflow ({message}); check the id or name, and the tracking URI "
            "(--tracking-uri or MLFLOW_TRACKING_URI)"
        ) from None
    except OSError as err:
        raise TsattnError(f"{model}: cannot fetch it from MLflow ({err}); check --tracking-uri") from None


def _locate(path: Path, name: str) -> Path:
    """The bundle inside what was given: the directory itself, its bundle/, or a pyfunc's artifacts/bundle/ (an
    ensemble's pyfunc: artifacts/ensemble/); a bundle has a schema.json, an ensemble an ensemble.json."""
    for candidate in (path, path / "bundle", path / "artifacts" / "bundle", path / "artifacts" / "ensemble"):
        if (candidate / SCHEMA).is_file() or (candidate / ENSEMBLE).is_file():
            return candidate
    if path.is_file():
        raise TsattnError(f"{name} is a file; a tsattn model is a bundle directory (schema.json, weights, config)")
    raise TsattnError(f"{name} is not a tsattn model bundle: it has no {SCHEMA}")


def _registry_source(client, model: str) -> str:
    """models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias> -> the version's artifact URI."""
    spec = model[len("models:/") :].strip("/")
    if "@" in spec:
        name, alias = spec.split("@", 1)
        version = client.get_model_version_by_alias(name, alias).version
    else:
        name, _, version = spec.partition("/")
        if not version:
            raise TsattnError(
                f"{model}: name a version or an alias: models:/{name}/<version> or models:/{name}@<alias>"
            )
        if version == "latest":
            if "'" in name or "\\" in name:  # the name goes into a search filter: no quoting games
                raise TsattnError(f"{model}: a registered model name cannot hold quotes or backslashes")
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise TsattnError(f"{model}: the registered model {name!r} has no versions")
            version = max(versions, key=lambda v: int(v.version)).version
    return client.get_model_version_download_uri(name, version)
