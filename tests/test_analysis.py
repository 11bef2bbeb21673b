"""Statistics of nasviz.analysis against hand-checked cases and scipy's definitions."""

from __future__ import annotations

import pytest
from scipy import stats

from nasviz.analysis import (
    holm_wilcoxon,
    kendall_tau_b,
    mean_with_interval,
    paired_difference,
    precision_at_k,
    regret,
    rounded_to,
    tau_with_interval,
)


def test_kendall_tau_b_handles_ties_like_scipy():
    a, b = [1, 2, 2, 3, 4], [1, 3, 2, 2, 5]
    assert kendall_tau_b(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert kendall_tau_b([1, 1, 1], [1, 2, 3]) is None and kendall_tau_b([1], [1]) is None
    with pytest.raises(ValueError, match="paired"):
        kendall_tau_b([1, 2], [1])


def test_tau_interval_contains_the_estimate_and_narrows_with_data():
    small = tau_with_interval(list(range(8)), [0, 2, 1, 3, 5, 4, 7, 6])
    large = tau_with_interval(list(range(64)), [i + (1 if i % 2 else -1) * 1.5 for i in range(64)])
    for e in (small, large):
        assert e.low <= e.value <= e.high
    assert large.high - large.low < small.high - small.low
    assert tau_with_interval([1, 2], [3, 3]) is None


def test_mean_and_paired_difference_intervals():
    e = mean_with_interval([1.0, 2.0, 3.0, 4.0])
    assert e.value == 2.5 and e.low < 2.5 < e.high and e.n == 4
    assert mean_with_interval([2.0]).low == mean_with_interval([2.0]).high == 2.0
    d = paired_difference([3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.0, 5.0])
    assert d.value == pytest.approx(1.75) and d.low >= 1.0 and d.high <= 2.0
    assert mean_with_interval([1.0, 2.0, 3.0], seed=1) == mean_with_interval([1.0, 2.0, 3.0], seed=1)


def test_holm_correction_is_monotone_and_multiplies():
    ref = [float(i) for i in range(12)]
    others = {"much worse": [x - 5 - 0.1 * i for i, x in enumerate(ref)],
              "a bit worse": [x - (0.5 if i % 3 else -0.2) for i, x in enumerate(ref)],
              "same": list(ref)}
    result = holm_wilcoxon(ref, others)
    assert result["same"] == {"p": 1.0, "p_holm": 1.0}
    smallest = min(result, key=lambda k: result[k]["p"])
    assert result[smallest]["p_holm"] == pytest.approx(min(1.0, 3 * result[smallest]["p"]))
    assert all(r["p_holm"] >= r["p"] for r in result.values())
    assert result["much worse"]["p"] == pytest.approx(stats.wilcoxon(ref, others["much worse"]).pvalue)


def test_precision_at_k_and_regret():
    truth = [0.9, 0.8, 0.7, 0.6]
    assert precision_at_k([4, 3, 2, 1], truth, 2) == 1.0
    assert precision_at_k([1, 2, 3, 4], truth, 2) == 0.0
    assert precision_at_k([4, 1, 3, 2], truth, 2) == 0.5
    assert regret([1, 2, 3, 4], truth) == pytest.approx(0.3)
    assert regret([4, 3, 2, 1], truth) == 0
    with pytest.raises(ValueError):
        precision_at_k([1], [1], 2)


def test_rounding_to_the_noise_makes_close_values_ties():
    assert rounded_to([0.801, 0.803, 0.812], 0.005) == pytest.approx([0.800, 0.805, 0.810])
    with pytest.raises(ValueError, match="positive"):
        rounded_to([1.0], 0)
