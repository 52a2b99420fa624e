"""The leaderboard never averages runs on different data or settings as if they were seeds, and says so."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tsattn.commands.compare import as_csv, as_json, as_table
from tsattn.reporting.compare import leaderboard

BASE = {"model/net/hidden_size": "64", "trainer/max_epochs": "20", "data/lookback": "96", "data/path": "/a/x.csv"}


def _run(run_id: str, mse: float, seed: int, data: str = "aaa", **changes):
    params = {**BASE, **changes, "seed": str(seed), "paths/output_dir": f"/tmp/{run_id}", "threads": "2"}
    tags = {"tsattn.model": "lstm_seq2seq", "tsattn.data": "csv", "tsattn.seed": str(seed)}
    tags["tsattn.data_sha256"] = data * 8  # the file's content hash, of which the leaderboard shows 12 characters
    return SimpleNamespace(
        info=SimpleNamespace(run_id=run_id, run_name=f"lstm_seq2seq-csv-seed{seed}", status="FINISHED"),
        data=SimpleNamespace(params=params, tags=tags, metrics={"test/mse": mse}),
    )


def test_seeds_of_one_setting_average_into_one_group():
    board = leaderboard([_run("a", 1.0, 0), _run("b", 3.0, 1, **{"data/path": "/copy/x.csv"})])
    (group,) = board.groups
    assert group.mean == 2.0 and group.settings == {} and board.notes() == []


def test_different_data_and_settings_split_the_group_and_name_the_difference():
    runs = [
        _run("weekly", 1.0, 0, data="aaa"),
        _run("hourly", 5.0, 0, data="bbb"),
        _run("short", 2.0, 0, data="aaa", **{"trainer/max_epochs": "5"}),
        _run("short-1", 4.0, 1, data="aaa", **{"trainer/max_epochs": "5"}),
    ]
    board = leaderboard(runs)
    records = {r["settings"]: r for r in board.records()}
    assert {k: (r["mean"], r["runs"]) for k, r in records.items()} == {
        "data content=aaaaaaaaaaaa, trainer/max_epochs=20": (1.0, 1),
        "data content=bbbbbbbbbbbb, trainer/max_epochs=20": (5.0, 1),
        "data content=aaaaaaaaaaaa, trainer/max_epochs=5": (3.0, 2),
    }
    (note,) = board.notes()
    assert note.startswith("lstm_seq2seq csv: split into 3 groups, whose runs differ in data content, trainer/max")
    table = as_table(board, "csv")
    assert "trainer/max_epochs=5" in table and note in table
    assert json.loads(as_json(board, "csv"))["notes"] == [note]


def test_a_seed_run_twice_with_the_same_settings_is_flagged():
    board = leaderboard([_run("a", 1.0, 0), _run("b", 1.2, 0), _run("c", 2.0, 1)])
    (group,) = board.groups
    assert len(group.values) == 3
    (note,) = board.notes()
    assert "seed 0 appears in more than one run with the same data and settings" in note


def test_grouping_by_a_setting_keeps_it_out_of_the_split():
    runs = [_run("a", 1.0, 0), _run("b", 2.0, 0, **{"model/net/hidden_size": "128"})]
    board = leaderboard(runs, group_by=["model", "model/net/hidden_size"])
    assert sorted(g.key for g in board.groups) == [("lstm_seq2seq", "128"), ("lstm_seq2seq", "64")]
    assert all(g.settings == {} for g in board.groups) and board.notes() == []


def test_names_a_spreadsheet_would_run_are_written_as_text_in_csv():
    run = _run("a", 1.0, 0)
    run.data.tags["tsattn.data"] = "=HYPERLINK(1)"
    board = leaderboard([run])
    assert "\n" + "lstm_seq2seq,'=HYPERLINK(1),1.0," in as_csv(board, "x")
    assert "\n" + "lstm_seq2seq,=HYPERLINK(1),1.0," in as_csv(board, "x", formula_guard=False)


def test_how_a_run_executed_and_settings_one_run_lacks_split_nothing():
    """A progress bar on a terminal or not, another device or DDP strategy, torch threads, and a setting that
    an older run never logged (absent is not different): seeds of one setting still average together."""
    runs = [
        _run("terminal", 1.0, 0, **{"trainer/enable_progress_bar": "True", "data/time_format": "None"}),
        _run("nohup", 2.0, 1, **{"trainer/enable_progress_bar": "False", "trainer/strategy": "ddp_spawn"}),
        _run("old", 3.0, 2),
    ]
    runs[1].data.params["threads"] = "1"
    board = leaderboard(runs)
    (group,) = board.groups
    assert group.mean == 2.0 and board.notes() == []
    assert leaderboard([*runs, _run("other", 9.0, 3, **{"data/time_format": "%d/%m/%Y"})]).notes()
