from __future__ import annotations

import statistics
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securitybot.aer.baselines import (
    BUILTIN_THRESHOLD,
    MAD_TO_SIGMA,
    ThresholdConfig,
    baseline_size_bytes,
    learn_baseline,
    resolve_threshold_config,
    threshold,
)

WHEN = datetime(2024, 5, 1, tzinfo=UTC)
CFG = ThresholdConfig(floor=10, sensitivity=2.0, default=300, min_samples=20)


def test_level_is_max_of_quantile_and_median_plus_mad() -> None:
    counts = list(range(1, 101))  # median 50.5, MAD 25
    b = learn_baseline("T1", "file_download", counts, computed_at=WHEN)
    assert b.p50 == 50.5 and b.mad == 25.0
    assert b.level == max(b.p99, 50.5 + 3 * MAD_TO_SIGMA * 25.0)
    assert b.samples == 100 and b.computed_at == WHEN


def test_quantile_term_wins_for_a_tight_distribution_with_a_tail() -> None:
    counts = [5] * 95 + [40, 45, 50, 55, 60]
    b = learn_baseline("T1", "file_download", counts, computed_at=WHEN, quantile=0.99)
    assert b.mad == 0.0
    assert b.level == pytest.approx(b.p99)
    assert b.level > 55


def test_one_historic_burst_barely_moves_the_level() -> None:
    normal = [3, 4, 5, 6, 7] * 40
    clean = learn_baseline("T1", "x", normal, computed_at=WHEN)
    polluted = learn_baseline("T1", "x", [*normal, 50_000], computed_at=WHEN)
    assert polluted.level == pytest.approx(clean.level, rel=0.05)
    # A mean + 3 sd rule would have jumped by orders of magnitude:
    mean_rule = statistics.mean([*normal, 50_000]) + 3 * statistics.pstdev([*normal, 50_000])
    assert mean_rule > 100 * polluted.level


def test_zero_windows_are_ignored() -> None:
    with_zeros = learn_baseline("T1", "x", [0] * 500 + [10, 12, 14] * 10, computed_at=WHEN)
    assert with_zeros.samples == 30 and with_zeros.p50 == 12


def test_negative_counts_and_bad_quantile_are_rejected() -> None:
    with pytest.raises(ValueError, match="counts"):
        learn_baseline("T1", "x", [1, -1], computed_at=WHEN)
    with pytest.raises(ValueError, match="quantile"):
        learn_baseline("T1", "x", [1], quantile=1.0, computed_at=WHEN)


def test_too_few_samples_gives_an_empty_baseline() -> None:
    b = learn_baseline("T1", "x", [4, 5], min_samples=3, computed_at=WHEN)
    assert (b.samples, b.level) == (2, 0.0)


def test_cold_start_without_baseline_uses_default() -> None:
    assert threshold(None, CFG) == 300


def test_cold_start_with_too_little_history_uses_default() -> None:
    b = learn_baseline("T1", "x", [100] * 19, computed_at=WHEN)
    assert threshold(b, CFG) == 300


def test_learned_threshold_is_level_times_sensitivity_above_floor() -> None:
    b = learn_baseline("T1", "x", [40] * 30, computed_at=WHEN)
    assert threshold(b, CFG) == 80.0
    tiny = learn_baseline("T1", "x", [1] * 30, computed_at=WHEN)
    assert threshold(tiny, CFG) == 10.0  # the floor


def test_resolve_merges_field_by_field_with_org_winning() -> None:
    defaults = {
        "*": {"floor": 1, "sensitivity": 2, "default": 3, "min_samples": 4},
        "search": {"floor": 100},
    }
    org = {"*": {"default": 7}, "search": {"sensitivity": 5}}
    assert resolve_threshold_config("search", defaults, org) == ThresholdConfig(100, 5, 7, 4)
    assert resolve_threshold_config("other", defaults, None) == ThresholdConfig(1, 2, 3, 4)
    assert resolve_threshold_config("other", {}, None) == BUILTIN_THRESHOLD


@pytest.mark.parametrize(
    ("org", "match"),
    [
        ({"search": {"sensitivty": 5}}, r"org thresholds\.search\.sensitivty: unknown key"),
        ({"search": {"floor": "high"}}, r"org thresholds\.search\.floor: must be a number"),
        ({"search": {"sensitivity": 0}}, r"thresholds\.search\.sensitivity: must be a number > 0"),
        ({"search": {"min_samples": 2.5}}, r"min_samples: must be a whole number"),
        ({"search": 5}, r"org thresholds\.search: must be a mapping"),
    ],
)
def test_resolve_errors_name_the_key(org: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_threshold_config("search", {}, org)


def test_baseline_size_is_small() -> None:
    b = learn_baseline("T1", "file_download", [1, 2, 3], computed_at=WHEN)
    assert 100 < baseline_size_bytes(b) < 1000


counts_st = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=300)


@given(counts_st, st.randoms())
def test_baseline_ignores_order(counts: list[int], rnd: object) -> None:
    shuffled = list(counts)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = learn_baseline("T1", "x", counts, computed_at=WHEN)
    b = learn_baseline("T1", "x", shuffled, computed_at=WHEN)
    assert a == b


@given(counts_st)
def test_level_bounds(counts: list[int]) -> None:
    b = learn_baseline("T1", "x", counts, computed_at=WHEN)
    positive = [c for c in counts if c]
    if positive:
        assert b.p50 <= b.level
        assert b.p99 <= b.level <= max(positive) + 3 * MAD_TO_SIGMA * b.mad + 1e-9
        assert threshold(b, ThresholdConfig(5, 1.5, 50, 1)) >= 5
