"""The history.jsonl row is one type (`nasviz.runs.history_row`): the search writes rows of it, the readers check
every field of it by its type, and rows recorded before the lineage fields existed still load."""

from __future__ import annotations

import dataclasses

import pytest

from nasviz.runs import events, rundir
from nasviz.runs.history_row import HistoryRow, IndividualRow, conforms, fields, row_problem
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search

LINEAGE = ("id", "born", "operator", "parents", "changes", "story")
"""An individual's fields that runs recorded before lineage lack."""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny search scored by the ground-truth table (no training)."""
    out = tmp_path_factory.mktemp("history") / "run"
    Search(SearchConfig.from_preset("smoke", space="mini", fitness="table", generations=2, population=4), out).run()
    return out


def wrong_value(kind) -> object:
    """A JSON value that is not of type `kind`."""
    return next(v for v in (True, "text", 5, None, [None]) if not conforms(v, kind))


def test_a_search_writes_rows_of_the_one_type(run):
    rows = rundir.load_history(run, check=True)
    assert [r["generation"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert set(row) == set(fields(HistoryRow))
        for individual in row["individuals"]:
            assert set(fields(IndividualRow)) >= set(individual) >= {*IndividualRow.__required_keys__, *LINEAGE}


def test_rows_recorded_before_lineage_still_load(run, tmp_path):
    old = []
    for row in rundir.load_history(run):
        row = {k: v for k, v in row.items() if k not in ("population_ids", "diagnostic_evaluations", "wall_time_s")}
        row["best"] = {k: v for k, v in row["best"].items() if k != "id"}
        row["individuals"] = [{k: v for k, v in i.items() if k not in LINEAGE} for i in row["individuals"]]
        assert row_problem(row) is None
        old.append(row)
    rundir.write_jsonl(tmp_path / rundir.HISTORY, old)
    records = rundir.lineage(tmp_path)
    assert len(records) == len({i["genotype"] for r in old for i in r["individuals"]})
    assert all(r["story"] for r in records.values())


@pytest.mark.parametrize("name", list(fields(HistoryRow)))
def test_every_field_of_a_row_is_checked_by_its_type(run, name):
    row = rundir.load_history(run)[1]
    problem = row_problem({**row, name: wrong_value(fields(HistoryRow)[name])})
    assert problem is not None and name in problem
    if name in HistoryRow.__required_keys__:
        assert row_problem({k: v for k, v in row.items() if k != name}) == f"lacks {name!r}"


@pytest.mark.parametrize("name", list(fields(IndividualRow)))
def test_every_field_of_an_individual_is_checked_by_its_type(run, name):
    row = rundir.load_history(run)[1]
    damaged = [{**row["individuals"][0], name: wrong_value(fields(IndividualRow)[name])}, *row["individuals"][1:]]
    assert row_problem({**row, "individuals": damaged}).startswith("has individual 0 = ")


def test_the_generation_event_carries_the_rows_fields():
    """The Generation event is the row without the paths trained (the TrainStep events carried them)."""
    assert {f.name for f in dataclasses.fields(events.Generation)} == set(fields(HistoryRow)) - {"trained_paths"}
