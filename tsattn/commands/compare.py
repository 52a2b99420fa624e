"""`tsattn compare --experiment NAME`: the leaderboard of an MLflow experiment, seeds averaged."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from tsattn.commands.common import ArgumentParser
from tsattn.errors import TsattnError, one_line
from tsattn.inference.publish import atomic_output, check_output
from tsattn.reporting.compare import SKILL_COLUMNS, ordering

DESCRIPTION = """Rank the groups of runs in an MLflow experiment (model and data by default) by the mean of a
test metric over their seeds, with the standard deviation, the number of runs, and two baselines of the
same test windows (the last value, the seasonal naive forecast, and the strongest simple forecast chosen
on each run's validation windows, named in best_naive_rule) with the skill against each. Failed and
unfinished runs are listed apart, never averaged."""

FORMATS = ("table", "csv", "markdown", "json")


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="tsattn compare", description=DESCRIPTION)
    parser.add_argument("--experiment", required=True, help="the MLflow experiment (tsattn names them after the data)")
    parser.add_argument(
        "--metric",
        default="test/mse",
        help="metric to rank by (default test/mse; lower is better; skills higher; "
        "test/crps for distributions, test/coverage_80 ranks closest to 0.80 first; test/width_80 ranks the "
        "narrowest first, so read it beside the coverage)",
    )
    parser.add_argument("--group-by", default="model,data", help="tags or params to group by (default model,data)")
    parser.add_argument("--filter", default="", help="an MLflow search filter, e.g. \"params.data/lookback = '96'\"")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument(
        "--no-formula-guard",
        action="store_true",
        help="with --format csv: write names that start with = + - @ as they are (by default they get a leading ' "
        "so a spreadsheet shows them as text instead of running them as formulas)",
    )
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    parser.add_argument("--tracking-uri", help="default: MLFLOW_TRACKING_URI, else sqlite:///logs/mlflow/mlflow.db")
    return parser


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.output is not None:
        check_output(args.output)
    from tsattn.reporting.compare import leaderboard

    runs = search_runs(args.experiment, args.filter, args.tracking_uri)
    board = leaderboard(runs, args.metric, [g.strip() for g in args.group_by.split(",") if g.strip()])
    if not board.groups and not board.apart:
        raise TsattnError(f"experiment {args.experiment!r} has no runs matching the filter")
    if args.format == "csv":
        text = as_csv(board, args.experiment, formula_guard=not args.no_formula_guard)
    else:
        text = {"table": as_table, "markdown": as_markdown, "json": as_json}[args.format](board, args.experiment)
    if args.output is None:
        sys.stdout.write(text)
        return
    with atomic_output(args.output) as temporary:
        temporary.write_text(text)


def search_runs(experiment: str, filter_string: str, tracking_uri: str | None):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from tsattn.tracking.store import check_reachable, require_existing_store, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    require_existing_store(uri)  # first: reaching a sqlite store would create its directory
    check_reachable(uri)
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
        raise TsattnError(f"no experiment {experiment!r} in {uri}; experiments: {names}")
    try:
        return client.search_runs([found.experiment_id], filter_string=filter_string, max_results=50_000)
    except MlflowException as err:
        raise TsattnError(f"--filter {filter_string!r}: {one_line(err, 200)}") from None


def _fmt(value, digits: int = 4) -> str:
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _cell(column: str, value) -> str:
    if column in SKILL_COLUMNS:
        return "-" if not math.isfinite(value) else f"{value:.1%}"
    return _fmt(value)


def _rows(board) -> tuple[list[str], list[list[str]]]:
    """The printed table's header and rows; the settings column only where some group was split apart."""
    records = board.records()
    split = any(record["settings"] != "-" for record in records)
    columns = [c for c in board.columns if c != "settings" or split]
    header = ["rank", *columns]
    rows = [
        [str(rank), *(_cell(column, record[column]) for column in columns)]
        for rank, record in enumerate(records, start=1)
    ]
    return header, rows


def _title(board, experiment: str) -> str:
    runs = sum(len(g.values) for g in board.groups)
    return (
        f"experiment {experiment}: {board.metric} ({ordering(board.metric)}), mean and std over seeds, "
        f"{runs} runs in {len(board.groups)} groups; baselines on the same test windows: last value, "
        "seasonal naive and the strongest simple forecast (best_naive: the last value or seasonal naive at "
        "the best candidate season, chosen on validation; best_naive_rule names it), with the skill against "
        "each (above 0: better than it)"
    )


def _apart(board) -> list[str]:
    if not board.apart:
        return []
    lines = [f"not averaged ({len(board.apart)} runs):"]
    lines += [f"  {a['run']}  {a['status']}  {a['why']}".rstrip() for a in board.apart]
    return lines


def as_table(board, experiment: str) -> str:
    header, rows = _rows(board)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [_title(board, experiment), ""]
    for row in [header, *rows]:
        lines.append(
            "  ".join(
                cell.ljust(w) if i <= len(board.group_by) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    extra = [*board.notes(), *_apart(board)]
    if extra:
        lines += ["", *extra]
    return "\n".join(lines) + "\n"


def as_markdown(board, experiment: str) -> str:
    header, rows = _rows(board)
    lines = [f"_{_title(board, experiment)}_", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i <= len(board.group_by) else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", *board.notes()] if board.notes() else []
    if board.apart:
        listed = ", ".join(f"{a['run']} ({a['status']})" for a in board.apart)
        lines += ["", f"Not averaged: {listed}."]
    return "\n".join(lines) + "\n"


def as_csv(board, experiment: str, formula_guard: bool = True) -> str:
    """The groups as CSV; names a spreadsheet would run as formulas (a data or model name such as =1+2) get a
    leading ' unless formula_guard is off (the forecast output's rule)."""
    import csv
    import io

    from tsattn.inference.output import formula_safe_text

    def safe(value):
        return formula_safe_text(value) if formula_guard and isinstance(value, str) else value

    buffer = io.StringIO()
    fields = board.columns
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([safe(field) for field in fields])
    for record in board.records():
        writer.writerow([safe(record[field]) for field in fields])
    return buffer.getvalue()


def as_json(board, experiment: str) -> str:
    def clean(value):
        return None if isinstance(value, float) and not math.isfinite(value) else value

    payload = {
        "experiment": experiment,
        "metric": board.metric,
        "group_by": board.group_by,
        "groups": [{k: clean(v) for k, v in record.items()} for record in board.records()],
        "not_averaged": board.apart,
        "notes": board.notes(),
    }
    return json.dumps(payload, indent=2) + "\n"
