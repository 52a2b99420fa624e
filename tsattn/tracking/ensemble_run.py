"""A sweep's ensemble as an MLflow run of its own: `tsattn train -m seed=0,1,2,3,4 +ensemble=mean`.

When the sweep ends, its finished runs' bundles become one ensemble (tsattn.inference.ensemble) and it is tested
on the same test windows, with the same metrics and baselines, as each member was: the data module is built
from the sweep's own config (tsattn's, never a file from the store), the ensemble's forecaster put in a
ForecastModule, and Lightning's test loop run into a new run nested under the sweep's parent. `tsattn compare`
and the dashboard then list it beside its members; `runs:/<its id>` forecasts with it, and its pyfunc `model`
loads in MLflow and registers like any run's.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections import Counter
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tsattn.errors import TsattnError

log = logging.getLogger(__name__)

ROLE_TAG = "tsattn.role"
# The members' tags the ensemble run shares: what data it was tested on, and how CRPS was computed.
SHARED_TAGS = ("tsattn.data", "tsattn.data_path", "tsattn.data_sha256", "tsattn.crps")


def ensemble_rule(config: DictConfig) -> str | None:
    """The sweep's `+ensemble=mean|median`, or None; anything else is one line before the sweep runs."""
    rule = config.get("ensemble")
    if rule is None:
        return None
    if rule not in ("mean", "median"):
        raise TsattnError(f"ensemble={rule}: choose +ensemble=mean or +ensemble=median")
    return str(rule)


def log_sweep_ensemble(client, parent: dict, combine: str, config: DictConfig) -> str | None:
    """Build, test and log the ensemble of the sweep's finished runs under `parent`; its run id, or None when
    fewer than two runs have a model (said in the log)."""
    import mlflow.artifacts

    from tsattn.inference.ensemble import save_ensemble

    children = client.search_runs(
        [parent["experiment_id"]], filter_string=f"tags.mlflow.parentRunId = '{parent['run_id']}'"
    )
    members = [
        run
        for run in children
        if run.info.status == "FINISHED"
        and run.data.tags.get(ROLE_TAG) != "ensemble"
        and any(a.path == "bundle" for a in client.list_artifacts(run.info.run_id))
    ]
    if len(members) < 2:
        log.warning(
            "+ensemble=%s: %d finished run of the sweep has a model; an ensemble needs two", combine, len(members)
        )
        return None
    with tempfile.TemporaryDirectory(prefix="tsattn-ensemble-") as tmp:
        directories = []
        for run in members:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"runs:/{run.info.run_id}/bundle",
                dst_path=str(Path(tmp) / run.info.run_id),
                tracking_uri=parent["tracking_uri"],
            )
            directories.append((Path(path), f"runs:/{run.info.run_id}"))
        ensemble_dir = Path(tmp) / "ensemble"
        try:
            save_ensemble(directories, ensemble_dir, combine)
        except TsattnError as err:  # members of different data or horizons: the sweep stands, without an ensemble
            log.warning("+ensemble=%s: no ensemble of this sweep's runs: %s", combine, err)
            return None
        return _test_and_log(client, parent, members, ensemble_dir, combine, config)


def _test_and_log(client, parent: dict, members: list, ensemble_dir: Path, combine: str, config: DictConfig) -> str:
    import lightning as L
    from hydra.utils import instantiate

    from tsattn.data.naive import rule_key, rule_label
    from tsattn.inference.bundle import load_bundle
    from tsattn.tracking.artifacts import flatten, history_example, save_pyfunc
    from tsattn.tracking.logger import mlflow_logger
    from tsattn.training.module import ForecastModule
    from tsattn.training.train import simple_rule_metrics, summary

    bundle = load_bundle(ensemble_dir)
    data_cfg = OmegaConf.to_container(config.data, resolve=True)
    data_cfg["lookback"] = bundle.lookback  # the longest member's: each member reads its own last L steps
    datamodule = instantiate(data_cfg, _convert_="object")
    datamodule.setup()
    _require_members_windows(client, members, datamodule, bundle)
    # The members' ForecastModule's test loop, metrics and baselines, with the ensemble's forecaster in it.
    # test/loss in the members' own training loss (model.loss), as each member logged it.
    module = ForecastModule(bundle.forecaster.members[0].net, loss=bundle.schema["module_options"].get("loss", "mse"))
    module.forecaster = bundle.forecaster
    module.quantiles = bundle.schema.get("quantiles")
    models = Counter(run.data.tags.get("tsattn.model", "model") for run in members)
    name = "+".join(f"{model}x{count}" for model, count in sorted(models.items()))
    first = members[0].data.tags
    tags = {
        "mlflow.parentRunId": parent["run_id"],
        ROLE_TAG: "ensemble",
        "tsattn.model": f"ensemble-{combine}({name})",
        "tsattn.seed": "ensemble",
        **{key: first[key] for key in SHARED_TAGS if key in first},
    }
    run = client.create_run(parent["experiment_id"], run_name=f"ensemble-{combine}-{len(members)}", tags=tags)
    run_id = run.info.run_id
    try:
        params = {f"data/{k}": v for k, v in flatten(data_cfg).items() if not isinstance(v, (dict, list))}
        params |= {"ensemble/combine": combine, "ensemble/members": json.dumps([m.info.run_id for m in members])}
        # As each member logs them: the strongest simple forecast its test metrics stand beside, and the season.
        params |= {"data/best_naive": rule_key(datamodule.best_naive_season)}
        params |= {"data/season_length": datamodule.season_length}
        client.log_batch(run_id, params=[_param(k, v) for k, v in params.items()])
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            logger=mlflow_logger(parent["tracking_uri"], run_id),
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.test(module, datamodule=datamodule, verbose=False)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        for key, value in simple_rule_metrics(datamodule.naive_errors).items():
            client.log_metric(run_id, key, value)
        client.log_artifacts(run_id, str(ensemble_dir), "bundle")
        if not datamodule.collection.future_covariates:  # as for any run: MLflow's predict takes one table
            with tempfile.TemporaryDirectory(prefix="tsattn-pyfunc-") as tmp:
                example = history_example(datamodule)
                time_col = datamodule.collection.time_col
                save_pyfunc(ensemble_dir, Path(tmp) / "model", example, time_col, datamodule.horizon)
                client.log_artifacts(run_id, str(Path(tmp) / "model"), "model")
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    best = rule_label(datamodule.best_naive_season)
    log.info("sweep ensemble run %s (%s of %d runs): %s", run_id, combine, len(members), summary(metrics, best))
    return run_id


def _require_members_windows(client, members: list, datamodule, bundle) -> None:
    """The ensemble is tested on the windows each member was: the same scaler, and as many test windows as each
    member's data.json records (a longer lookback can leave a short series' first test windows out)."""
    from tsattn.inference.ensemble import same_statistics

    if not same_statistics(datamodule.scaler, bundle.scaler):
        raise TsattnError("the sweep's data, built again, is not scaled as its runs' models were; no ensemble run")
    windows = len(datamodule.datasets["test"])
    with tempfile.TemporaryDirectory(prefix="tsattn-data-json-") as tmp:
        for run in members:
            path = client.download_artifacts(run.info.run_id, "data.json", tmp)
            logged = json.loads(Path(path).read_text()).get("windows", {}).get("test")
            if logged != windows:
                raise TsattnError(
                    f"run {run.info.run_id} was tested on {logged} windows, the ensemble (lookback {bundle.lookback}) "
                    f"would be on {windows}: not the same windows, so no ensemble run (sweep one lookback)"
                )


def _param(key: str, value) -> object:
    from mlflow.entities import Param

    return Param(key, str(value)[:6000])
