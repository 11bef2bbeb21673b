"""The final pick by short retraining: candidates are the best of everything evaluated, each retrained from
scratch and scored on held-out training images; the stage is checkpointed, resumes to the same pick, and is
recorded in result.json and events.jsonl."""

from __future__ import annotations

import html
import json

import pytest
import torch

from nasviz import Search, SearchConfig
from nasviz.data.batches import split_indices
from nasviz.errors import ConfigError
from nasviz.runs import rundir
from nasviz.search import final_pick


def retraining(**overrides) -> SearchConfig:
    """A table-fitness search (instant) whose final pick retrains tiny networks briefly."""
    return SearchConfig.from_preset("smoke", **{"space": "mini", "fitness": "table", "population": 4,
                                                "generations": 2, "final_pick": "retrain", "final_top_k": 3,
                                                "final_steps": 4, "final_images": 200, "channels": 4,
                                                "batch_size": 16, **overrides})


def test_candidates_are_the_best_last_fitness_of_everything_evaluated(tmp_path):
    search = Search(retraining(), tmp_path / "run")
    result = search.run()
    seen = {}
    for row in rundir.read_jsonl(tmp_path / "run" / rundir.HISTORY):
        for i in row["individuals"]:
            seen[search.space.key(search.space.parse(i["genotype"]))] = i["fitness"]  # later rows: later fitness
    block = result["final_pick"]
    fitness = [c["fitness"] for c in block["candidates"]]
    assert fitness == sorted(seen.values(), reverse=True)[:3]
    assert all(len(c["retrain_scores"]) == 1 and 0 <= c["retrain_scores"][0] <= 1 for c in block["candidates"])
    winner = max(block["candidates"], key=lambda c: (c["retrain_mean"], c["fitness"]))
    assert block["picked"] == winner["genotype"] == result["best_genotype"]
    assert result["truth"]["best_accuracy"] == search.truth.accuracy(winner["genotype"])
    assert block["cpu_s"] > 0 and result["finished"]
    kinds = [json.loads(line)["type"] for line in (tmp_path / "run" / rundir.EVENTS).read_text().splitlines()]
    assert kinds.count("retrained") == 3 and kinds.index("retrained") < kinds.index("done")


def test_fitness_pick_is_unchanged_and_has_no_block():
    result = Search(retraining(final_pick="fitness")).run()
    assert "final_pick" not in result
    assert result["best_fitness"] == result["top_k"][0]["fitness"]


def test_held_out_images_are_neither_weight_nor_fitness_images():
    config = retraining(weight_images=3000, fitness_images=500, final_images=700, seed=5)
    held = final_pick.held_out(60_000, config)
    weight, fitness = split_indices(60_000, 3000, 500, 5)
    assert len(held) == 700 and len(set(held.tolist())) == 700
    assert not set(held.tolist()) & (set(weight.tolist()) | set(fitness.tolist()))


def test_a_stop_in_the_stage_resumes_to_the_same_pick(tmp_path):
    full = Search(retraining(seed=3), tmp_path / "full").run()
    stopped = Search(retraining(seed=3), tmp_path / "stopped")
    while stopped.generation < stopped.config.generations:
        stopped.step()
    stopped.step()  # the first candidate retrained, then a checkpoint
    assert not stopped.done and len(stopped.state.final[0].scores) == 1 and not stopped.state.final[1].scores
    stopped.close()
    del stopped
    resumed = Search.resume(tmp_path / "stopped").run()
    def without_cpu(result: dict) -> dict:
        block = result["final_pick"]
        return {**block, "cpu_s": 0, "candidates": [{**c, "cpu_s": 0} for c in block["candidates"]]}

    assert (resumed["best_genotype"], resumed["best_fitness"]) == (full["best_genotype"], full["best_fitness"])
    assert without_cpu(resumed) == without_cpu(full)


def test_retraining_is_deterministic_per_seed():
    config = retraining()
    search = Search(config)
    data = search.evaluator.dataset()
    cell = "[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 0), ('max_pool_3x3', 2)]"
    g = search.space.parse(f"Genotype(normal={cell}, normal_concat=[2, 3], reduce={cell}, reduce_concat=[2, 3])")
    torch.manual_seed(123)
    a = final_pick.retrain_score(g, 0, data, config)
    assert a == final_pick.retrain_score(g, 0, data, config)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"final_top_k": 13}, "final_top_k=13 exceeds the 12 networks"),
    ({"weight_images": 59_000, "fitness_images": 500, "final_images": 1000},
     "final_images=1000 .*allowed: final_images <= 500"),
    ({"weight_images": None}, "weight_images=None leaves no held-out images"),
])
def test_bad_final_pick_settings_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        retraining(**overrides)


def test_the_dashboard_draws_the_candidates_and_the_pick():
    from nasviz.viz.dashboard import Dashboard

    search = Search(retraining(seed=4))
    dash = Dashboard(min_interval=0).attach(search)
    seen = []
    search.subscribe(lambda e: seen.append(dash.final_pick.value) if e.kind == "retrained" else None)
    result = search.run()
    assert "1 more to retrain" in seen[1] and seen[1].count("<tr title=") == 2
    table = dash.final_pick.value
    assert table.count("<tr") == 1 + 3 + 0 and table.count("picked</td>") == 1
    marked = next(row for row in table.split("<tr") if "picked</td>" in row)
    assert html.escape(result["final_pick"]["picked"], quote=True) in marked
