"""The evidence summary notebook 05 draws: shipped, complete over its seeds, and drawable."""

from __future__ import annotations

from nasviz.notebooks import evidence


def test_the_shipped_evidence_covers_every_method_and_supernet_over_many_seeds():
    e = evidence.load_evidence()
    seeds = len(e["provenance"]["seeds_methods"])
    assert seeds >= 10
    assert all(len(v) == seeds for v in e["regret"].values())
    assert set(e["regret"]) >= {"sft-ga", "ga", "random + extra warm-up"}
    assert all(0 <= r <= 1 for v in e["regret"].values() for r in v)
    assert all(e["regret"][m][i] >= e["explored_regret"][m][i] for m in e["regret"] for i in range(seeds))
    assert set(e["tau_b"]) == {"top", "region", "random"}
    assert all(set(v) == {"A", "FT", "C"} for v in e["tau_b"].values())


def test_figures_and_table_draw_from_it():
    e = evidence.load_evidence()
    assert len(evidence.regret_figure(e).data) == len(e["regret"])
    assert len(evidence.tau_figure(e).data) == 4
    assert len(evidence.fitness_images_figure(e).data[0].x) == len(e["fitness_images"])
    rows = evidence.regret_table(e)
    assert [r["method"] for r in rows] == list(e["regret"])
