"""`tsattn score FORECAST ACTUALS`: a forecast file scored as the M4 competition scored forecasts."""

from __future__ import annotations

import contextlib
import json
import math
import re
from pathlib import Path

from tsattn.commands.common import ArgumentParser, number_text, positive, read_input, separator
from tsattn.errors import TsattnError
from tsattn.inference.publish import atomic_output, check_output

DESCRIPTION = """Score FORECAST (a table as `tsattn forecast` writes it: the id column of a long layout, time,
step, a column per target and, for a quantile model, <target>_q<level> columns) against ACTUALS (the series in
the layout the model was trained on, holding each series' history and its actual values at every forecast
time). Prints sMAPE, MASE and OWA against Naive2 in the M4 competition's definitions, MSE and MAE, beside
Naive2, the last value and seasonal naive forecast from the same histories (the rows before each series' first
forecast time), and CRPS and each central interval's coverage for quantile columns. -o writes the scores of
every series and target."""

QUANTILE_COLUMN = re.compile(r"^(?P<target>.+)_q(?P<level>[0-9.]+(?:e-?[0-9]+)?)$")  # y_q0.1, y_q1e-05
LABELS = {"forecast": "forecast", "naive2": "Naive2", "naive1": "last value", "snaive": "seasonal naive"}


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="tsattn score", description=DESCRIPTION)
    parser.add_argument("forecast", type=Path, help="the forecast: CSV, or Parquet (a .parquet file or directory)")
    parser.add_argument("actuals", type=Path, help="history and actual values of every series: CSV or Parquet")
    parser.add_argument("-o", "--output", type=Path, help="also write the scores of every series (CSV or Parquet)")
    parser.add_argument(
        "--season",
        type=positive,
        default=None,
        help="m: the seasonal lag of MASE's in-sample scale, Naive2 and seasonal naive (default: the data's "
        "season, 24 for hourly data, from the frequency of ACTUALS)",
    )
    parser.add_argument("--sep", type=separator, default=",", help="the CSV files' field separator (default ,)")
    parser.add_argument(
        "--missing",
        choices=("error", "interpolate", "ffill"),
        default="error",
        help="gaps and empty values in the histories of ACTUALS: refused (default), or filled from that history "
        "alone; a forecast step without an actual value is always refused (nobody observed what it would score)",
    )
    parser.add_argument("--metrics-json", type=Path, help="also write the overall scores to this JSON file")
    return parser


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    for output in (args.output, args.metrics_json):
        if output is not None:
            check_output(output)
    if args.output is not None and args.output == args.metrics_json:
        raise TsattnError(f"-o and --metrics-json both name {args.output}; give two files")
    forecast = read_input(args.forecast, args.sep, option="the FORECAST argument")
    columns = forecast_columns(forecast, args.forecast)
    actuals = read_actuals(args.actuals, args.sep, columns, args.missing)
    from tsattn.data.calendar import season_length

    season = args.season or season_length(actuals.freq)
    scored = score_files(forecast, actuals, columns, season, args.forecast, args.missing)
    report = {
        "forecast": str(args.forecast),
        "actuals": str(args.actuals),
        "series": scored["n_series"],
        "targets": columns["targets"],
        "steps": scored["steps"],
        "season": season,
        "overall": scored["overall"],
    }
    from tsattn.inference.output import TableWriter, is_parquet

    # Both files written first and renamed into place together at the end: one without the other never stays.
    with contextlib.ExitStack() as outputs:
        if args.metrics_json is not None:
            outputs.enter_context(atomic_output(args.metrics_json)).write_text(json.dumps(report, indent=2))
        if args.output is not None:
            temporary = outputs.enter_context(atomic_output(args.output))
            with TableWriter(temporary, is_parquet(args.output)) as writer:
                writer.write(scored["table"])
    print(format_report(report))


def forecast_columns(frame, path: Path) -> dict:
    """The forecast's id and time columns (those before `step`), its targets and its quantile columns."""
    names = [str(c) for c in frame.columns]
    if "step" not in names:
        raise TsattnError(
            f"{path}: no 'step' column; FORECAST must be a table as `tsattn forecast` writes it "
            "(the id column of a long layout, time, step, then a column per target)"
        )
    before, after = names[: names.index("step")], names[names.index("step") + 1 :]
    if len(before) not in (1, 2):
        raise TsattnError(
            f"{path}: {len(before)} columns before 'step' ({', '.join(before) or 'none'}); a forecast has the id "
            "column (long layouts) and the time column there"
        )
    quantiles: dict[str, dict[float, str]] = {}
    targets = []
    for name in after:
        match = QUANTILE_COLUMN.match(name)
        if match and match["target"] in after:
            try:
                level = float(match["level"])
            except ValueError:
                raise TsattnError(f"{path}: column {name!r} names no quantile level; columns are <target>_q<level>")
            levels = quantiles.setdefault(match["target"], {})
            if not 0 < level < 1 or level in levels:
                raise TsattnError(
                    f"{path}: column {name!r} names the level {level:g} "
                    f"{'twice' if level in levels else 'outside (0, 1)'}; quantile columns are <target>_q<level>"
                )
            levels[level] = name
        else:
            targets.append(name)
    if not targets:
        raise TsattnError(f"{path}: no forecast column after 'step'; FORECAST needs a column per target")
    level_sets = {tuple(sorted(levels)) for levels in quantiles.values()}
    if len(level_sets) > 1 or (quantiles and set(quantiles) != set(targets)):
        raise TsattnError(f"{path}: every target needs the same quantile levels (or none has any)")
    return {
        "id": before[0] if len(before) == 2 else None,
        "time": before[-1],
        "targets": targets,
        "quantiles": {t: dict(sorted(levels.items())) for t, levels in quantiles.items()},
    }


def read_actuals(path: Path, sep: str, columns: dict, missing: str = "error"):
    """ACTUALS as validated regular series (every path reads a CSV the same way), with the forecast's columns."""
    from tsattn.data.io import series_from_frame

    frame = read_input(path, sep, option="the ACTUALS argument")
    absent = [c for c in (columns["id"], columns["time"], *columns["targets"]) if c and c not in frame.columns]
    if absent:
        raise TsattnError(
            f"{path}: no column {absent[0]!r}, which the forecast has; ACTUALS must be in the layout and with the "
            "column names of the file the model was trained on"
        )
    return series_from_frame(
        frame,
        str(path),
        path.stem,
        targets=columns["targets"],
        time_col=columns["time"],
        id_col=columns["id"],
        missing=missing,
        reject_constant=False,
        fill=False,  # gaps stay NaN: score_files fills a history from itself and refuses an unobserved actual
    )


def score_files(forecast, actuals, columns: dict, season: int, path: Path, missing: str = "error") -> dict:
    """Every (series, target) of the forecast scored from ACTUALS: overall scores and the per-series table."""
    import numpy as np
    import pandas as pd

    from tsattn.inference.output import formula_safe_text
    from tsattn.intervals import interval_pairs
    from tsattn.metrics import crps
    from tsattn.scoring import score

    times = pd.to_datetime(forecast[columns["time"]], errors="coerce", format="mixed")
    if times.isna().any():
        line = int(np.flatnonzero(times.isna().to_numpy())[0]) + 2
        raise TsattnError(f"{path}, line {line}: the time column {columns['time']!r} holds no timestamp")
    values = {}
    for name in [*columns["targets"], *(c for levels in columns["quantiles"].values() for c in levels.values())]:
        numbers = pd.to_numeric(forecast[name], errors="coerce")
        if not np.isfinite(numbers.to_numpy(dtype=float)).all():
            bad = int(np.flatnonzero(~np.isfinite(numbers.to_numpy(dtype=float)))[0]) + 2
            raise TsattnError(f"{path}, line {bad}: column {name!r} holds no finite number")
        values[name] = numbers.to_numpy(dtype=float)
    series = {s.id: s for s in actuals.series}
    if columns["id"] is None:  # a wide file: one series, and the forecast has no id column
        ids = np.repeat(actuals.series[0].id, len(forecast))
    else:
        # The forecast wrote ids a spreadsheet would run as formulas with a leading ' (tsattn.inference.output).
        written = {formula_safe_text(sid): sid for sid in series}
        ids = forecast[columns["id"]].astype(str).map(lambda sid: written.get(sid, sid)).to_numpy()
    rows, histories, actual_values, forecast_values, quantile_rows = [], [], [], [], []
    for sid in pd.unique(ids):
        if sid not in series:
            raise TsattnError(
                f"{path}: series {sid!r} is not in ACTUALS; give the history and actual values of every series forecast"
            )
        mine = np.flatnonzero(ids == sid)
        order = mine[np.argsort(times.to_numpy()[mine], kind="stable")]
        wanted = pd.DatetimeIndex(times.to_numpy()[order])
        s = series[sid]
        position = s.time.get_indexer(wanted)
        if (position < 0).any():
            raise TsattnError(
                f"{path}: ACTUALS holds no value of series {sid!r} at {wanted[position < 0][0]}, a forecast time; "
                "give the actual values of every forecast step"
            )
        first = int(position.min())
        if not np.array_equal(position, first + np.arange(len(position))):
            raise TsattnError(
                f"{path}: the forecast times of series {sid!r} are not consecutive steps (a gap or a time given "
                "twice); a forecast holds each step after the history once"
            )
        if first < 2:
            raise TsattnError(
                f"{path}: series {sid!r} has {first} rows before its first forecast time in ACTUALS; MASE and the "
                "naive forecasts need its history"
            )
        for ci, target in enumerate(columns["targets"]):
            history, actual = s.values[:first, ci], s.values[position, ci]
            if not np.isfinite(actual).all():
                when = wanted[~np.isfinite(actual)][0]
                raise TsattnError(
                    f"{path}: ACTUALS has no {target!r} value of series {sid!r} at {when}, a forecast time; give the "
                    "actual value of every forecast step"
                )
            if not np.isfinite(history).all():
                filled = pd.Series(history)
                filled = filled.interpolate(limit_direction="both") if missing == "interpolate" else filled.ffill()
                history = filled.bfill().to_numpy()
            histories.append(history)
            actual_values.append(actual)
            forecast_values.append(values[target][order])
            rows.append((sid, target, len(order)))
            levels = columns["quantiles"].get(target)
            if levels:
                quantile_rows.append((len(rows) - 1, np.stack([values[c][order] for c in levels.values()], -1)))
    scored = score(histories, actual_values, forecast_values, season)
    table = pd.DataFrame(
        [
            {
                **({"id": sid} if columns["id"] is not None else {}),
                "target": target,
                "steps": steps,
                **{
                    f"{key}" if name == "forecast" else f"{name}_{key}": errors[key]
                    for name, errors in per_series.items()
                    for key in ("smape", "mase", "owa", "mse", "mae")
                },
            }
            for (sid, target, steps), per_series in zip(rows, scored["series"], strict=True)
        ]
    )
    if columns["id"] is not None:
        table = table.rename(columns={"id": columns["id"]})
    overall = scored["overall"]
    if quantile_rows:
        target_levels = next(iter(columns["quantiles"].values()))
        levels = list(target_levels)
        pairs = interval_pairs(levels)
        crps_values, covered = [], {percent: [] for _, _, percent in pairs}
        for index, quantiles in quantile_rows:
            actual = actual_values[index]
            table.loc[index, "crps"] = crps(actual, quantiles, levels)
            crps_values.append(table.loc[index, "crps"])
            for lower, upper, percent in pairs:
                inside = (actual >= quantiles[:, lower]) & (actual <= quantiles[:, upper])
                table.loc[index, f"coverage_{percent}"] = inside.mean()
                covered[percent].append(inside)
        overall["forecast"]["crps"] = float(np.mean(crps_values))
        for percent, inside in covered.items():
            overall["forecast"][f"coverage_{percent}"] = float(np.concatenate(inside).mean())
    steps = sorted({steps for _, _, steps in rows})
    return {"overall": overall, "table": table, "n_series": len(pd.unique(ids)), "steps": steps}


def format_report(report: dict) -> str:
    """The overall table: the forecast, then Naive2, the last value and seasonal naive; then CRPS and coverage."""
    overall = report["overall"]
    steps = report["steps"]
    lines = [
        f"score: {report['series']} series x {len(report['targets'])} target(s), "
        f"{steps[0] if len(steps) == 1 else f'{steps[0]} to {steps[-1]}'} steps each; season {report['season']} "
        "(MASE's scale, Naive2, seasonal naive); errors in the data's own units",
        "",
        f"{'':16}{'sMAPE %':>10}{'MASE':>9}{'OWA':>8}{'MSE':>14}{'MAE':>12}",
    ]
    for name, label in LABELS.items():
        o = overall[name]
        lines.append(
            f"{label:16}{o['smape']:>10.3f}{_fixed(o['mase'], 3):>9}{_fixed(o['owa'], 3):>8}{number_text(o['mse']):>14}"
            f"{number_text(o['mae']):>12}"
        )
    model = overall["forecast"]
    if "crps" in model:
        crps, mae = number_text(model["crps"]), number_text(model["mae"])
        lines += ["", f"forecast CRPS {crps} (a point forecast's CRPS is its MAE: {mae})"]
        for key in sorted((k for k in model if k.startswith("coverage_")), key=lambda k: int(k.split("_")[1])):
            lines.append(f"forecast {key.split('_')[1]}% interval: covers {model[key]:.1%} of the actuals")
    verdict = "beats" if model["owa"] < 1 else "does not beat"
    lines += ["", f"OWA {_fixed(model['owa'], 3)}: the forecast {verdict} Naive2 (OWA 1.000 by definition)"]
    return "\n".join(lines)


def _fixed(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "nan"
