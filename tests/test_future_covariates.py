"""Future covariates (data.future_covariates): known-ahead columns from training to `forecast --future`.

Real data throughout: ETTh1's loads, where the high useful load (HUFL) is a planned load given ahead for
the middle useful load (MUFL). Windows and parity with training are tested in test_windows.py and
test_parity.py; here: the command line and Python API, every mistake in a future table, backtest, the
bundle, and what the covariate gains.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import build_bundle
from tsattn.cli import main
from tsattn.errors import TsattnError

LONG = ["data=csv", "data.id_col=id", "data.targets=[MUFL]", "data.lookback=48", "data.horizon=12"]
SMALL = [
    "model=lstm_seq2seq",
    "model.net.hidden_size=8",
    "model.segment_len=1",
]  # steps one by one: see the causal check
HORIZON = 12


@pytest.fixture(scope="module")
def future_model(ett_long_path, tmp_path_factory):
    """An LSTM seq2seq on two ETTh1 series (long), MUFL with HUFL and HULL known ahead."""
    workdir = tmp_path_factory.mktemp("future")
    overrides = [*LONG, f"data.path={ett_long_path}", "data.future_covariates=[HUFL,HULL]", *SMALL]
    return str(build_bundle(workdir, *overrides)[0])


@pytest.fixture(scope="module")
def tables(ett_long_path):
    """(history, future): each series' rows but its last 12 as history; those 12 rows' loads as future."""
    frame = pd.read_csv(ett_long_path)
    cut = frame.groupby("id").cumcount(ascending=False) < HORIZON
    history = frame[~cut][["id", "date", "MUFL", "HUFL", "HULL"]].reset_index(drop=True)
    future = frame[cut][["id", "date", "HUFL", "HULL"]].reset_index(drop=True)
    return history, future


def _forecast(model, history, future, tmp_path, *extra):
    (tmp_path / "history.csv").write_text(history.to_csv(index=False))
    args = ["forecast", model, str(tmp_path / "history.csv"), "-o", str(tmp_path / "out.csv"), "--quiet", *extra]
    if future is not None:
        future.to_csv(tmp_path / "future.csv", index=False)
        args += ["--future", str(tmp_path / "future.csv")]
    return main(args)


def test_forecast_reads_the_future_table_the_same_from_the_cli_and_python(future_model, tables, tmp_path):
    import tsattn

    history, future = tables
    assert _forecast(future_model, history, future, tmp_path) == 0
    written = pd.read_csv(tmp_path / "out.csv")
    model = tsattn.load(future_model)
    in_python = model.forecast(history, future=future)
    assert len(written) == 2 * HORIZON and list(written.columns) == ["id", "date", "step", "MUFL"]
    np.testing.assert_allclose(written["MUFL"], in_python["MUFL"], rtol=1e-6)
    expected_times = future["date"].tolist()
    assert written["date"].tolist() == expected_times
    # The rows of a table in another order, and rows beyond the horizon, change nothing.
    later = future.assign(date=pd.to_datetime(future["date"]) + pd.Timedelta(hours=HORIZON))
    shuffled = pd.concat([future, later]).sample(frac=1.0, random_state=0)
    np.testing.assert_allclose(model.forecast(history, future=shuffled)["MUFL"], in_python["MUFL"], rtol=1e-6)
    # The values are read: a different planned load gives a different forecast, from the step it changes.
    changed = future.copy()
    changed.loc[changed.groupby("id").cumcount() >= 6, "HUFL"] += 5.0
    moved = model.forecast(history, future=changed)["MUFL"].to_numpy().reshape(2, HORIZON)
    before = in_python["MUFL"].to_numpy().reshape(2, HORIZON)
    np.testing.assert_allclose(moved[:, :6], before[:, :6], rtol=1e-6)
    assert np.abs(moved[:, 6:] - before[:, 6:]).min() > 1e-4


def _drop_step(future):
    return future.drop(index=3)


def _shift_half_hour(future):
    return future.assign(date=(pd.to_datetime(future["date"]) + pd.Timedelta(minutes=30)).astype(str))


def _before_the_end(future):
    moved = future.copy()
    moved.loc[0, "date"] = str(pd.Timestamp(moved.loc[0, "date"]) - pd.Timedelta(hours=1))
    return moved


MISTAKES = {
    "missing column": (lambda f: f.drop(columns="HULL"), "has no column 'HULL' (from the model's future covariates)"),
    "missing row": (_drop_step, "series 'first' has no row for"),
    "off the grid": (_shift_half_hour, "is off the model's grid"),
    "before the end": (_before_the_end, "is at or before the history's end"),
    "series without future": (lambda f: f[f["id"] != "second"], "series 'second' has no future rows"),
    "repeated step": (lambda f: pd.concat([f, f.iloc[[0]]]), "has 2 rows for"),
    "empty cell": (lambda f: f.assign(HUFL=f["HUFL"].where(f.index != 5)), "column 'HUFL' is empty"),
    "no history": (
        lambda f: pd.concat([f, f.iloc[[0]].assign(id="third")]),
        "series 'third' has future values but no history",
    ),
    "bad number": (
        lambda f: f.astype({"HUFL": str}).assign(HUFL=lambda t: t["HUFL"].where(t.index != 2, "n/a")),
        "is not a number",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_every_mistake_in_the_future_table_is_one_line_exit_2_and_nothing_written(
    mistake, future_model, tables, tmp_path, capsys
):
    history, future = tables
    spoil, message = MISTAKES[mistake]
    (tmp_path / "out.csv").write_text("earlier,output\n")
    assert _forecast(future_model, history, spoil(future), tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tsattn: error: ") and message in err[0], err
    assert (tmp_path / "out.csv").read_text() == "earlier,output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["future.csv", "history.csv", "out.csv"]


def test_a_model_with_future_covariates_needs_them_and_one_without_refuses_them(
    future_model, tables, tmp_path, ett_long_path, capsys
):
    history, future = tables
    assert _forecast(future_model, history, None, tmp_path) == 2
    assert "reads the future covariates HUFL, HULL over its 12 forecast steps: pass --future" in capsys.readouterr().err
    plain = build_bundle(tmp_path / "plain", *LONG, f"data.path={ett_long_path}", "model=linear")[0]
    assert _forecast(str(plain), history[["id", "date", "MUFL"]], future, tmp_path) == 2
    assert "trained without future covariates: leave out --future" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
    assert _forecast(future_model, history, future, tmp_path, "--engine", "spark") == 2
    assert "--future is not available with --engine spark" in capsys.readouterr().err
    import tsattn

    with pytest.raises(TsattnError, match="pass future= with their values"):
        tsattn.load(future_model).forecast(history)


def test_backtest_takes_the_future_covariates_from_the_history(future_model, ett_long_path):
    """Each backtest forecast equals forecast(history up to its origin, future = the rows after it)."""
    import tsattn

    model = tsattn.load(future_model)
    frame = pd.read_csv(ett_long_path)
    series = frame[frame["id"] == "second"].reset_index(drop=True)
    result = model.backtest(series, step=500, start="earliest")
    rows = result.rows
    times = pd.to_datetime(series["date"])
    assert rows["origin"].nunique() >= 3
    for origin in rows["origin"].unique()[:3]:
        end = int(np.flatnonzero(times == origin)[0]) + 1
        expected = model.forecast(series.iloc[:end], future=series.iloc[end : end + HORIZON])["MUFL"]
        np.testing.assert_allclose(rows[rows["origin"] == origin]["model"], expected, rtol=1e-5)


def test_the_bundle_lists_the_future_covariates_and_refuses_a_tampered_list(future_model, tmp_path):
    import shutil

    from tsattn.inference.bundle import load_bundle

    bundle = load_bundle(future_model)
    assert bundle.schema["future_covariates"] == ["HUFL", "HULL"]
    assert bundle.scaler.columns == ["MUFL", "HUFL", "HULL"]
    assert bundle.schema["module_options"]["n_future"] == 2
    copy = shutil.copytree(future_model, tmp_path / "tampered")
    schema = json.loads((copy / "schema.json").read_text())
    schema["future_covariates"] = ["HUFL"]
    (copy / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(TsattnError, match=r"scaler\.json"):
        load_bundle(copy)


def test_columns_keep_one_role_and_the_message_names_both(ett_long_path):
    from tsattn.data.io import read_series

    with pytest.raises(TsattnError, match=r"'HUFL' is listed twice \(data.covariates and data.future_covariates\)"):
        read_series(ett_long_path, targets=["MUFL"], covariates=["HUFL"], future_covariates=["HUFL"], id_col="id")
    with pytest.raises(TsattnError, match=r"has no column .PRICE. \(from data\.future_covariates\)"):
        read_series(ett_long_path, targets=["MUFL"], future_covariates=["PRICE"], id_col="id")


def test_a_known_planned_load_cuts_the_error_on_real_data(etth1_path, tmp_path):
    """ETTh1, MUFL forecast 24 h ahead: the same LSTM, seed and budget, with and without HUFL as a future
    covariate. The planned load moves with the target (correlation 0.98 on training rows), so knowing it
    must cut both the validation and the test MSE well below the model that forecasts MUFL alone (150 steps:
    0.77 to 0.22 on validation, 0.87 to 0.26 on test when written)."""
    from tsattn.config import compose
    from tsattn.training.train import Training

    scores = {}
    for future in ("[]", "[HUFL]"):
        cfg = compose(
            [
                "data=etth1",
                f"data.path={etth1_path}",
                "data.targets=[MUFL]",
                f"data.future_covariates={future}",
                "data.lookback=48",
                "data.horizon=24",
                "data.batch_size=64",
                "model=lstm_seq2seq",
                "model.net.hidden_size=32",
                "model.optimizer.lr=0.003",
                "logger=none",
                "callbacks=none",
                "trainer.max_epochs=2",
                "+trainer.limit_train_batches=75",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                "seed=0",
                f"paths.log_dir={tmp_path / future.strip('[]')}",
            ]
        )
        scores[future] = Training(cfg, track=False).run()
    alone, known = scores["[]"], scores["[HUFL]"]
    assert known["val/mse"] < 0.5 * alone["val/mse"]
    assert known["test/mse"] < 0.5 * alone["test/mse"]
    assert known["test/mse"] < known["test/naive_mse"]


def test_typed_future_tables_are_read_like_text_and_their_mistakes_are_one_line(future_model, tables):
    """A DataFrame from Python or Parquet: decimals and object columns read as numbers; a repeated
    column label or an empty time is one line naming the row."""
    from decimal import Decimal

    import tsattn

    history, future = tables
    model = tsattn.load(future_model)
    expected = model.forecast(history, future=future)["MUFL"]
    decimals = future.assign(HUFL=[Decimal(str(v)) for v in future["HUFL"]], HULL=future["HULL"].astype(object))
    np.testing.assert_allclose(model.forecast(history, future=decimals)["MUFL"], expected, rtol=1e-6)
    twice = pd.concat([future, future[["HUFL"]]], axis=1)
    with pytest.raises(TsattnError, match="column 'HUFL' appears more than once"):
        model.forecast(history, future=twice)
    timed = future.assign(date=pd.to_datetime(future["date"]))
    timed.loc[4, "date"] = pd.NaT
    with pytest.raises(TsattnError, match="row 4: empty timestamp in column 'date'"):
        model.forecast(history, future=timed)


def test_a_future_covariate_may_stay_put_in_a_series_but_a_past_one_may_not(ett_long_path, tmp_path):
    """A holiday flag that never fires in a series is a valid future covariate (scaled by 1); as a past
    covariate the same constant column carries nothing and is refused."""
    from tsattn.data.io import read_series

    pd.read_csv(ett_long_path).assign(holiday=0.0).to_csv(tmp_path / "flag.csv", index=False)
    read = read_series(tmp_path / "flag.csv", targets=["MUFL"], future_covariates=["holiday"], id_col="id")
    assert read.columns == ["MUFL", "holiday"]
    with pytest.raises(TsattnError, match="column 'holiday' of series 'first' is constant"):
        read_series(tmp_path / "flag.csv", targets=["MUFL"], covariates=["holiday"], id_col="id")
