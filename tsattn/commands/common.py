"""What forecast and backtest share: options, the model, the input history, the device, safe output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tsattn.errors import TsattnError, one_line


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors as one line (a TsattnError) instead of usage text and exit."""

    def error(self, message: str):
        raise TsattnError(f"{self.prog}: {message}; see {self.prog} --help")


def add_model_and_io_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a bundle directory, runs:/<run id>[/path] or models:/<name>/<version|alias>")
    parser.add_argument(
        "input",
        type=Path,
        help="history in the layout the model was trained on (wide or long): CSV, or Parquet "
        "(a .parquet file or a directory of them)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="file to write, Parquet when it ends in .parquet, else CSV; replaced only on success",
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store of runs:/ and models:/ (default: MLFLOW_TRACKING_URI, else logs/mlflow/mlflow.db here)",
    )
    parser.add_argument(
        "--sep", type=separator, default=None, help="INPUT's field separator (default: the training file's)"
    )
    parser.add_argument("--batch-size", type=positive, default=1024, help="windows per forward pass (default 1024)")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda when available"
    )
    parser.add_argument(
        "--skip-short", action="store_true", help="skip series shorter than the lookback (named on stderr)"
    )
    parser.add_argument(
        "--rows-start",
        metavar="TIME",
        help="INPUT is in the row-per-series layout (an id, then the values; no timestamps), every series "
        "starting at TIME on the model's frequency, as data.layout=rows with data.start=TIME trained it",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    parser.add_argument(
        "--no-formula-guard",
        action="store_true",
        help="in a CSV output, write text cells that start with = + - @ as they are (by default they get a "
        "leading ' so a spreadsheet shows them as text instead of running them as formulas)",
    )


def separator(text: str) -> str:
    """A field separator for argparse: one character, never a line end or the quote (data.io.check_separator)."""
    from tsattn.data.io import check_separator

    try:
        check_separator(text, "--sep")
    except TsattnError as err:
        raise argparse.ArgumentTypeError(str(err).split(": ", 1)[-1]) from None
    return text


def number_text(value: float) -> str:
    """A score for a printed table: 4 significant digits, scientific from 1e5, `nan` when not finite."""
    import math

    if not math.isfinite(value):
        return "nan"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"


def positive(text: str) -> int:
    """An integer of at least 1, for argparse; anything else is argparse's one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def load_model(args: argparse.Namespace):
    """The bundle named by the MODEL argument (fetched from MLflow when remote), on the chosen device."""
    from tsattn.inference.bundle import load_bundle
    from tsattn.inference.model_source import bundle_directory

    with bundle_directory(args.model, args.tracking_uri) as directory:
        return load_bundle(directory, device=choose_device(args.device))


def choose_device(device: str) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise TsattnError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def read_history(
    path: Path,
    bundle,
    skip_short: bool,
    min_rows: int,
    quiet: bool,
    sep: str | None,
    fill: str,
    rows_start: str | None = None,
):
    """The input CSV, validated against the model's schema; short series refused (or skipped, and named).

    Args:
        sep: the field separator; the training file's when None.
        fill: how gaps are filled when the model's policy allows it: "whole" (from the whole history,
            which ends before the forecast) or "causal" (from earlier rows only: each backtest origin
            has rows after it).
        rows_start: the input is in the row-per-series layout (tsattn.data.rows), each series starting then.
    """
    from tsattn.inference.forecast import history_from_frame

    sep = bundle.schema["sep"] if sep is None else sep
    frame = read_input(path, sep)
    if rows_start is not None:
        frame = rows_as_long(frame, path, bundle.schema, rows_start)
    history = history_from_frame(bundle, frame, name=str(path), fill=fill)
    short = [s.id for s in history.series if len(s.time) < min_rows]
    check_short(path, short, len(history.series), min_rows, skip_short, quiet)
    if not short:
        return history
    kept = [s for s in history.series if len(s.time) >= min_rows]
    return type(history)(**{**history.__dict__, "series": kept})


def rows_as_long(frame, path: Path, schema: dict, start: str):
    """A row-per-series input in the long layout the model reads: its id, time and target column names."""
    from tsattn.data.rows import rows_to_long

    if schema["layout"] != "long" or len(schema["targets"]) != 1 or schema["covariates"] or schema["future_covariates"]:
        raise TsattnError(
            f"{path}: --rows-start reads one value per step and series, but this model reads "
            f"{', '.join(schema['targets'] + schema['covariates'] + schema['future_covariates'])}; give INPUT in "
            "the layout the model was trained on"
        )
    return rows_to_long(
        frame,
        str(path),
        start,
        schema["freq"],
        value_name=schema["targets"][0],
        id_name=schema["id_col"],
        time_name=schema["time_col"],
        option="--rows-start",
    )


def check_short(path: Path, short: list[str], total: int, min_rows: int, skip_short: bool, quiet: bool) -> None:
    """Refuse series shorter than `min_rows`, or (with --skip-short) name the ones left out on stderr."""
    if not short:
        return
    names = ", ".join(repr(s) for s in short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
    if not skip_short:
        raise TsattnError(
            f"{path}: {len(short)} series have fewer than the {min_rows} rows needed ({names}); "
            "give them more history, or pass --skip-short to leave them out"
        )
    if len(short) == total:
        raise TsattnError(f"{path}: every series is shorter than the {min_rows} rows needed; nothing to do")
    if not quiet:
        print(f"tsattn: skipped {len(short)} series shorter than {min_rows} rows: {names}", file=sys.stderr)


def read_input(path: Path, sep: str, option: str = "the INPUT argument"):
    """The INPUT table: Parquet (a .parquet file, or a directory of them) typed as stored, else CSV as text."""
    from tsattn.data.io import read_frame
    from tsattn.inference.output import reads_as_parquet

    if reads_as_parquet(path):
        return read_parquet(path, option)
    return read_frame(path, option=option, sep=sep, sep_option="--sep")


def read_parquet(path: Path, option: str = "the INPUT argument"):
    """A Parquet file or directory as a DataFrame; anything unreadable is one line."""
    import pandas as pd
    import pyarrow as pa

    if not path.exists():
        raise TsattnError(f"{path}: no such file; check {option}")
    try:
        frame = pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as err:
        detail = one_line(err, 160)
        raise TsattnError(f"{path} is not a readable Parquet file ({detail})") from None
    if frame.empty:
        raise TsattnError(f"{path} has no rows; it needs the rows of every series to forecast")
    return frame


def progress(total: int | None, quiet: bool, unit: str = "series"):
    """A progress bar on stderr, for inputs long enough to wait on; a count (total None) on terminals only."""
    from tqdm.auto import tqdm

    hidden = quiet or (total < 5000 if total is not None else not sys.stderr.isatty())
    return tqdm(total=total, unit=unit, disable=hidden, file=sys.stderr, leave=False)
