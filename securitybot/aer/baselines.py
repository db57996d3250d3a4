"""Per-organisation dynamic thresholds learned from history, with robust statistics.

A baseline summarises, for one (org, action), how many times a user did that action within a
one-hour window, across many users and windows. The alert threshold is derived from it:

    level     = max(q-quantile, median + k * 1.4826 * MAD)
    threshold = max(floor, level * sensitivity)     (cold start: the configured default)

Why not mean + n*stddev: volume data is heavy-tailed and history may already contain one
compromised account's burst. A single 50,000-download window drags the mean and inflates the
standard deviation so much that the next burst of the same size looks normal (breakdown point
0). The median and MAD ignore up to half the data being wild, and the 0.99 quantile ignores the
top 1%. The quantile tracks a genuinely long tail (an org where some users legitimately export a
lot); the MAD term keeps the level a real margin above typical users when the tail is thin or
the sample small, where the quantile sits on the last few values. 1.4826 scales MAD to a
standard deviation for normal data, so ``k`` reads like "sigmas".
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

WINDOW_SECONDS = 3600
MAD_TO_SIGMA = 1.4826
DEFAULT_QUANTILE = 0.99
DEFAULT_MAD_K = 3.0
# learn_baseline only needs one value to compute statistics; whether there is *enough* history
# to trust them is decided per action by ThresholdConfig.min_samples, so one learned baseline
# stays usable when an admin changes that setting.
DEFAULT_LEARN_MIN_SAMPLES = 1


@dataclass(slots=True, frozen=True)
class Baseline:
    org: str
    action: str
    level: float
    samples: int
    p50: float
    p90: float
    p99: float
    mad: float
    computed_at: datetime


@dataclass(slots=True, frozen=True)
class ThresholdConfig:
    floor: float
    sensitivity: float
    default: float
    min_samples: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.floor) and self.floor >= 0):
            raise ValueError("floor: must be a number >= 0")
        if not (math.isfinite(self.sensitivity) and self.sensitivity > 0):
            raise ValueError("sensitivity: must be a number > 0")
        if not (math.isfinite(self.default) and self.default > 0):
            raise ValueError("default: must be a number > 0")
        if self.min_samples < 0:
            raise ValueError("min_samples: must be >= 0")


THRESHOLD_KEYS = frozenset(f.name for f in fields(ThresholdConfig))
# Used only when neither the rules file nor the org names the action or a "*" entry.
BUILTIN_THRESHOLD = ThresholdConfig(floor=20.0, sensitivity=3.0, default=200.0, min_samples=50)


def sorted_quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default) of an already sorted sequence."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def learn_baseline(
    org: str,
    action: str,
    per_user_window_counts: Sequence[int],
    *,
    quantile: float = DEFAULT_QUANTILE,
    min_samples: int = DEFAULT_LEARN_MIN_SAMPLES,
    mad_k: float = DEFAULT_MAD_K,
    computed_at: datetime | None = None,
) -> Baseline:
    """Learn a baseline from per-user, per-hour counts of ``action`` (windows with activity).

    Zero windows are dropped: for rare actions they would pull the median and MAD to 0 and the
    threshold would then depend only on how many idle users the caller happened to include.
    Fewer than ``min_samples`` usable values give an all-zero baseline that ``threshold`` treats
    as a cold start.
    """
    q = quantile
    if not 0.5 <= q < 1.0:
        raise ValueError("quantile: must be in [0.5, 1.0)")
    when = computed_at or datetime.now(UTC)
    values: list[float] = []
    for c in per_user_window_counts:
        if c < 0:
            raise ValueError("per_user_window_counts: counts must be >= 0")
        if c:
            values.append(float(c))
    n = len(values)
    if n < max(min_samples, 1):
        return Baseline(org, action, 0.0, n, 0.0, 0.0, 0.0, 0.0, when)
    values.sort()
    med = sorted_quantile(values, 0.5)
    deviations = sorted(abs(v - med) for v in values)
    mad = sorted_quantile(deviations, 0.5)
    q_val = sorted_quantile(values, q)
    level = max(q_val, med + mad_k * MAD_TO_SIGMA * mad)
    return Baseline(
        org=org,
        action=action,
        level=level,
        samples=n,
        p50=med,
        p90=sorted_quantile(values, 0.90),
        p99=sorted_quantile(values, 0.99),
        mad=mad,
        computed_at=when,
    )


def threshold(baseline: Baseline | None, cfg: ThresholdConfig) -> float:
    """The count above which one user's hour is anomalous for this (org, action)."""
    if baseline is None or baseline.samples < cfg.min_samples or baseline.samples == 0:
        return cfg.default
    return max(cfg.floor, baseline.level * cfg.sensitivity)


def _merge_layer(
    merged: dict[str, Any], layer: Mapping[str, Any] | ThresholdConfig | None, where: str
) -> None:
    if layer is None:
        return
    if isinstance(layer, ThresholdConfig):
        merged.update({k: getattr(layer, k) for k in THRESHOLD_KEYS})
        return
    if not isinstance(layer, Mapping):
        raise ValueError(f"{where}: must be a mapping of floor/sensitivity/default/min_samples")
    for key, value in layer.items():
        if key not in THRESHOLD_KEYS:
            raise ValueError(
                f"{where}.{key}: unknown key (use {', '.join(sorted(THRESHOLD_KEYS))})"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}.{key}: must be a number")
        if key == "min_samples" and not float(value).is_integer():
            raise ValueError(f"{where}.{key}: must be a whole number")
        merged[key] = value


def resolve_threshold_config(
    action: str,
    defaults: Mapping[str, Any],
    org_overrides: Mapping[str, Any] | None = None,
) -> ThresholdConfig:
    """Merge field by field: built-in < defaults["*"] < defaults[action] < org "*" < org action.

    Field-level merging lets an org say only ``{file_download: {sensitivity: 5}}`` and keep the
    rest of the defaults, instead of restating every number.
    """
    merged: dict[str, Any] = {k: getattr(BUILTIN_THRESHOLD, k) for k in THRESHOLD_KEYS}
    overrides = org_overrides or {}
    _merge_layer(merged, defaults.get("*"), "thresholds.*")
    _merge_layer(merged, defaults.get(action), f"thresholds.{action}")
    _merge_layer(merged, overrides.get("*"), "org thresholds.*")
    _merge_layer(merged, overrides.get(action), f"org thresholds.{action}")
    try:
        return ThresholdConfig(
            floor=float(merged["floor"]),
            sensitivity=float(merged["sensitivity"]),
            default=float(merged["default"]),
            min_samples=int(merged["min_samples"]),
        )
    except ValueError as exc:
        raise ValueError(f"thresholds.{action}.{exc}") from None


def check_threshold_layers(layers: Mapping[str, Any], where: str) -> None:
    """Validate partial per-action overrides, naming ``<where>.<action>.<key>`` on error."""
    for action, layer in layers.items():
        merged: dict[str, Any] = {k: getattr(BUILTIN_THRESHOLD, k) for k in THRESHOLD_KEYS}
        _merge_layer(merged, layer, f"{where}.{action}")
        try:
            ThresholdConfig(**merged)
        except ValueError as exc:
            raise ValueError(f"{where}.{action}.{exc}") from None


def deep_sizeof(obj: object, _seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it references (each object counted once).

    Shared interned strings are counted too, so this is an upper bound on the marginal cost.
    """
    seen = _seen if _seen is not None else set()
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_sizeof(k, seen) + deep_sizeof(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_sizeof(v, seen) for v in obj)
    else:
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot):
                size += deep_sizeof(getattr(obj, slot), seen)
    return size


def baseline_size_bytes(baseline: Baseline) -> int:
    """Deep size of one baseline, for capacity planning (orgs x actions x this)."""
    return deep_sizeof(baseline)
