"""What each MLflow run records beyond Lightning's per-epoch metrics: config, data, forecasts, plots, model."""

from __future__ import annotations

import inspect
import json
import logging
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from tsattn.data.naive import rule_key

log = logging.getLogger(__name__)

FORECASTS_CSV = "forecasts/test_forecasts.csv"
# Every test window's MSE (scaled units, as test/mse): the windows a score leaves out can be left out here.
WINDOW_ERRORS_CSV = "forecasts/test_window_errors.csv"
PLOTTED_WINDOWS = 4


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"net": {"hidden_size": 64}}} -> {"model/net/hidden_size": 64}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def log_run_setup(logger, cfg: DictConfig, datamodule) -> None:
    """Log the resolved config (as params and as config.yaml) and the data's split and scaler (data.json).

    Args:
        logger: a Lightning MLFlowLogger.
        cfg: the run's config, without the hydra section.
        datamodule: a ForecastDataModule after setup().
    """
    # A config composed in Python still holds the hydra section, whose sweep keys do not resolve in a run.
    resolved = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    params = {k: json.dumps(v) if isinstance(v, list) else v for k, v in flatten(resolved).items()}
    params["data/season_length"] = datamodule.season_length  # the one used, inferred or set
    # The strongest simple forecast, chosen on the validation windows before training: test/best_naive_* score it.
    params["data/best_naive"] = rule_key(datamodule.best_naive_season)
    params["data/season_candidates"] = json.dumps(datamodule.season_candidates)
    # How many series gave no window in each split (data.json names them and says why).
    params["data/series_without_window"] = json.dumps({k: len(v) for k, v in datamodule.windowless.items()})
    params["data/split_used"] = datamodule.split_used  # a ratio split may have become a tail split
    logger.log_hyperparams(params)
    client, run_id = logger.experiment, logger.run_id
    client.log_text(run_id, OmegaConf.to_yaml(resolved), "config.yaml")
    data = {
        "source": datamodule.collection.source,
        "targets": datamodule.collection.targets,
        "covariates": datamodule.collection.covariates,
        "future_covariates": datamodule.collection.future_covariates,
        "static_covariates": datamodule.collection.static_covariates,
        "series": [s.id for s in datamodule.collection.series],
        "windows": {split: len(ds) for split, ds in datamodule.datasets.items()},
        "series_without_window": datamodule.windowless,
        "season_length": datamodule.season_length,
        "best_naive": rule_key(datamodule.best_naive_season),
        "simple_forecasts": {
            split: {rule_key(m): e for m, e in errors.items()} for split, errors in datamodule.naive_errors.items()
        },
        **datamodule.state_dict(),
    }
    client.log_dict(run_id, data, "data.json")


def log_results(
    client,
    run_id: str,
    module,
    datamodule,
    cfg: DictConfig,
    model_name: str,
    net_options,
    with_bundle: bool = True,
    with_test: bool = True,
) -> None:
    """After the run: the test forecasts (CSV and plot) and attention heatmap, the bundle and the pyfunc model.

    Args:
        with_bundle: log the model (bundle and pyfunc); False when the run has no model worth loading.
        with_test: log what is drawn from the test split (test=false runs never look at it).
    """
    from tsattn.inference.bundle import save_bundle

    module.eval()
    with tempfile.TemporaryDirectory(prefix="tsattn-artifacts-") as tmp:
        root = Path(tmp)
        if with_test:
            frame = test_forecasts(module, datamodule)
            (root / "forecasts").mkdir()
            frame.to_csv(root / FORECASTS_CSV, index=False)
            windows = window_errors(module, datamodule)
            if windows is not None:
                windows.to_csv(root / WINDOW_ERRORS_CSV, index=False)
            plot_forecasts(frame, datamodule, root / "plots" / "test_forecasts.png")
            attention_heatmap(module, datamodule, root / "plots")
        if with_bundle:
            bundle = save_bundle(root / "bundle", module, datamodule, cfg, model_name, net_options)
            if datamodule.collection.future_covariates:
                # MLflow's predict takes one table, and the future covariates of the horizon are a second:
                # forecast this model with `tsattn forecast --future` or tsattn.load(...).forecast(future=).
                log.info("no MLflow pyfunc model for a model with future covariates; the bundle is logged")
            else:
                example = history_example(datamodule)
                save_pyfunc(bundle, root / "model", example, datamodule.collection.time_col, datamodule.horizon)
        if any(root.iterdir()):
            client.log_artifacts(run_id, str(root))


def window_errors(module, datamodule) -> pd.DataFrame | None:
    """Each test window's series, origin (its last input time) and MSE, in the test split's order, as the
    test loop scored them; None when it did not score every window once (a limited or multi-process test)."""
    errors = module.window_errors()
    test = datamodule.datasets.get("test")
    if errors is None or test is None or len(errors) != len(test):
        return None
    series = datamodule.collection.series
    index = test.series.tolist()
    origins = [series[i].time[int(row) - 1] for i, row in zip(index, test.first_target.tolist())]
    return pd.DataFrame({"series": [series[i].id for i in index], "origin": origins, "mse": errors.numpy()})


def test_forecasts(module, datamodule, stride: int | None = None) -> pd.DataFrame:
    """Forecasts of test windows whose origins are `stride` steps apart (the horizon: the test span once).

    Built by the inference path (tsattn.inference.windows) from the training scaler: what this table shows
    is what `tsattn forecast` and `tsattn backtest` compute for the same windows.

    Returns:
        Long table in real units: series, origin (last input time), time, step, target, actual, forecast,
        and q<level> columns for quantile models.
    """
    from tsattn.inference.windows import WindowSpec, origin_windows, predict, training_statistics

    dataset = datamodule.datasets["test"]
    stride = stride or datamodule.horizon
    collection, scaler = datamodule.collection, datamodule.scaler
    spec = WindowSpec(
        lookback=datamodule.lookback,
        horizon=datamodule.horizon,
        calendar=datamodule.calendar_names,
        freq=collection.freq,
        stats=training_statistics(scaler),
        n_future=len(collection.future_covariates),
        static=datamodule.static_encoder,
    )
    targets, horizon, n_targets = collection.targets, datamodule.horizon, len(collection.targets)
    forecaster = module.forecaster
    frames = []
    for index, series in enumerate(collection.series):
        first = np.sort(dataset.first_target[dataset.series == index].numpy())  # [W] first target rows
        if not len(first):
            continue
        origins = first[(first - first[0]) % stride == 0]  # [N]
        windows = origin_windows(spec, series, origins, spec.static_code(collection.static, series.id))
        y_hat = predict(forecaster, windows, datamodule.eval_batch_size)  # [N, H, C(, Q)], scaled
        point = windows.to_real(forecaster.point(torch.from_numpy(y_hat)).numpy())  # [N, H, C]
        actual = series.values[origins[:, None] + np.arange(horizon), :n_targets]  # [N, H, C]
        per_window = horizon * n_targets  # rows: window by window, step by step, target by target
        columns = {
            "series": np.repeat(series.id, len(origins) * per_window),
            "origin": np.repeat(series.time[origins - 1], per_window),
            "time": np.repeat(windows.future_times.reshape(-1), n_targets),
            "step": np.tile(np.repeat(np.arange(1, horizon + 1), n_targets), len(origins)),
            "target": np.tile(targets, len(origins) * horizon),
            "actual": actual.reshape(-1),
            "forecast": point.astype(np.float32).reshape(-1),
        }
        if forecaster.quantiles:
            real = windows.to_real(y_hat)  # [N, H, C, Q]
            for qi, level in enumerate(forecaster.quantiles):
                columns[f"q{level:g}"] = real[..., qi].astype(np.float32).reshape(-1)
        frames.append(pd.DataFrame(columns))
    return pd.concat(frames, ignore_index=True)


def plot_forecasts(frame: pd.DataFrame, datamodule, path: Path, windows: int = PLOTTED_WINDOWS) -> None:
    """Forecast against actual for a few test windows spread over the test span, first target, real units."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    target = datamodule.collection.targets[0]
    rows = frame[frame["target"] == target]
    origins = rows[["series", "origin"]].drop_duplicates().reset_index(drop=True)
    picked = origins.iloc[np.unique(np.linspace(0, len(origins) - 1, min(windows, len(origins))).astype(int))]
    series_by_id = {s.id: s for s in datamodule.collection.series}
    # Fixed margins: matplotlib's constrained layout measured every tick label and took 2 s of each run.
    figure = Figure(figsize=(10, 2.6 * len(picked)))
    figure.subplots_adjust(left=0.07, right=0.98, top=0.96, bottom=0.05, hspace=0.45)
    FigureCanvasAgg(figure)
    quantile_columns = [c for c in frame.columns if c.startswith("q")]
    for i, (series_id, origin) in enumerate(picked.itertuples(index=False)):
        ax = figure.add_subplot(len(picked), 1, i + 1)
        window = rows[(rows["series"] == series_id) & (rows["origin"] == origin)]
        series = series_by_id[series_id]
        end = series.time.get_loc(origin) + 1
        begin = max(0, end - datamodule.lookback)
        ax.plot(series.time[begin:end], series.values[begin:end, 0], color="0.55", lw=1, label="history")
        ax.plot(window["time"], window["actual"], color="black", lw=1.2, label="actual")
        ax.plot(window["time"], window["forecast"], color="tab:blue", lw=1.4, label="forecast")
        if quantile_columns:
            low, high = quantile_columns[0], quantile_columns[-1]
            ax.fill_between(
                window["time"], window[low], window[high], color="tab:blue", alpha=0.2, label=f"{low}-{high}"
            )
        ax.set_title(f"{series_id} / {target}, forecast from {origin}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)


def attention_heatmap(module, datamodule, directory: Path) -> bool:
    """For attention models: decoder step x encoder step weights of the first test window (PNG + JSON).

    Returns:
        False, writing nothing, when the network has no attention to show.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    batch = datamodule.datasets["test"][torch.tensor([0])]
    kwargs = (
        {"return_attention": True} if "return_attention" in inspect.signature(module.net.forward).parameters else {}
    )
    with torch.inference_mode():
        output = module({k: v.to(module.device) for k, v in batch.items()}, **kwargs)
    weights = output.get("attention")
    if weights is None:
        return False
    weights = weights.float().cpu()
    if weights.dim() == 4:  # per head [1, nhead, H, L] -> mean over heads [1, H, L]
        weights = weights.mean(dim=1)
    matrix = weights[0].numpy()  # [H, L]
    series = datamodule.collection.series[int(batch["series"][0])]
    origin = series.time[int(batch["first_target"][0]) - 1]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "attention.json").write_text(
        json.dumps({"series": series.id, "origin": str(origin), "weights": np.round(matrix, 6).tolist()})
    )
    figure = Figure(figsize=(8, 4.5))
    figure.subplots_adjust(left=0.09, right=0.97, top=0.92, bottom=0.12)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    image = ax.imshow(matrix, aspect="auto", cmap="viridis", origin="lower")
    ax.set_xlabel(f"encoder step (lookback, oldest to newest; L={matrix.shape[1]})")
    ax.set_ylabel(f"decoder step (horizon, H={matrix.shape[0]})")
    ax.set_title(f"cross-attention, {series.id}, forecast from {origin}", fontsize=9)
    figure.colorbar(image, ax=ax)
    figure.savefig(directory / "attention.png", dpi=90)
    return True


def save_pyfunc(bundle: Path, directory: Path, input_example: pd.DataFrame, time_col: str, horizon: int) -> None:
    """The bundle as an MLflow pyfunc model (from code: no pickled object), loadable from runs:/ and models:/.

    The input example (one series' last L rows, as in the training file) gives the model its signature
    and shows users of `mlflow models serve` the table to send. The signature leaves the time column's
    type open (datetime or text: tsattn parses either) and declares the `horizon` parameter, which MLflow
    would otherwise drop with a warning.
    """
    import mlflow.pyfunc

    from tsattn import __version__

    with warnings.catch_warnings():
        # The step column is an integer and never missing: MLflow's hint about missing integers does not apply.
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column")
        mlflow.pyfunc.save_model(
            path=str(directory),
            python_model=str(Path(__file__).resolve().parent.parent / "inference" / "pyfunc.py"),
            artifacts={"bundle": str(bundle)},
            input_example=input_example,
            signature=_signature(input_example, time_col, horizon),
            pip_requirements=[f"tsattn=={__version__}"],
        )


def _signature(example: pd.DataFrame, time_col: str, horizon: int):
    from mlflow.models import infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    signature = infer_signature(example, params={"horizon": int(horizon)})
    columns = [ColSpec(AnyType(), c.name) if c.name == time_col else c for c in signature.inputs.inputs]
    signature.inputs = Schema(columns)
    return signature


def history_example(datamodule) -> pd.DataFrame:
    """The last `lookback` rows of the first series, laid out like the training file."""
    collection = datamodule.collection
    series = collection.series[0]
    rows = slice(len(series.time) - datamodule.lookback, None)
    columns: dict[str, Any] = {}
    if collection.id_col:
        columns[collection.id_col] = series.id
    columns[collection.time_col] = series.time[rows]
    for i, name in enumerate(collection.columns):
        columns[name] = series.values[rows, i].astype(np.float64)
    for name in collection.static_covariates:  # a per-series constant, repeated on every row as in the file
        columns[name] = collection.static[series.id][name]
    return pd.DataFrame(columns)


def describe_run(handle, data_path: str, future_covariates: bool = False) -> str:
    """Where the run is, the command that forecasts with its model, and how to look at it.

    Args:
        future_covariates: the model reads future covariates: the command takes a --future table.
    """
    import shlex

    from tsattn.tracking.store import DEFAULT_STORE, is_remote

    uri = handle.tracking_uri
    # The default store is found without being told (MLflow's logger sets MLFLOW_TRACKING_URI in this
    # process, so that variable says nothing about the user's shell).
    store = [] if uri == f"sqlite:///{DEFAULT_STORE.absolute()}" else ["--tracking-uri", uri]
    forecast = ["tsattn", "forecast", f"runs:/{handle.run_id}", str(data_path), "-o", "forecast.csv", *store]
    if future_covariates:  # their values over the horizon, which the history cannot hold
        forecast[4:4] = ["--future", "FUTURE.csv"]
    if is_remote(uri):
        look = f"  open it at: {uri.rstrip('/')}/#/experiments/{handle.experiment_id}/runs/{handle.run_id}"
    else:
        look = f"  open it with: {shlex.join(['mlflow', 'ui', '--backend-store-uri', uri, '--port', '5000'])}"
    return (
        f"MLflow run {handle.run_id} (experiment {handle.experiment_id}) in {uri}\n"
        f"  forecast with: {shlex.join(forecast)}\n{look}"
    )
