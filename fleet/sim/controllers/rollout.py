"""Rolling-update arithmetic of the Deployment controller, as pure functions (same rounding as Kubernetes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_SURGE = "25%"
DEFAULT_UNAVAILABLE = "25%"


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString (``3`` or ``"25%"``) against ``total``; percentages round up or down."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer or a percentage, got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        pct = int(text[:-1])
        return -(-total * pct // 100) if round_up else total * pct // 100
    return int(text)


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods; both zero would stall, so unavailable becomes 1."""
    surge = scaled_value(DEFAULT_SURGE if max_surge is None else max_surge, replicas, round_up=True)
    unavailable = scaled_value(
        DEFAULT_UNAVAILABLE if max_unavailable is None else max_unavailable, replicas, round_up=False
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def new_rs_replicas(replicas: int, max_surge: int, new_spec: int, all_spec: int) -> int:
    """How far the new ReplicaSet may grow now (``NewRSNewReplicas`` for RollingUpdate)."""
    if new_spec >= replicas:
        return replicas
    max_total = replicas + max_surge
    if all_spec >= max_total:
        return new_spec
    return new_spec + min(max_total - all_spec, replicas - new_spec)


@dataclass(frozen=True)
class Sizes:
    """A ReplicaSet's desired and available pods."""

    spec: int
    available: int


def old_rs_replicas(old: list[Sizes], new: Sizes, replicas: int, max_unavailable: int) -> list[int]:
    """New ``spec.replicas`` for each old ReplicaSet (oldest first): unhealthy pods go first, then
    available ones, never taking availability below ``replicas - max_unavailable``."""
    result = [rs.spec for rs in old]
    if sum(result) == 0:
        return result
    all_pods = sum(result) + new.spec
    min_available = replicas - max_unavailable
    new_unavailable = new.spec - new.available
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return result
    cleaned = 0
    for i, rs in enumerate(old):
        if cleaned >= max_scaled_down:
            break
        unhealthy = result[i] - rs.available
        if result[i] == 0 or unhealthy <= 0:
            continue
        down = min(max_scaled_down - cleaned, unhealthy)
        result[i] -= down
        cleaned += down
    available_pods = sum(rs.available for rs in old) + new.available
    if available_pods <= min_available:
        return result
    to_scale_down = available_pods - min_available
    done = 0
    for i in range(len(old)):
        if done >= to_scale_down:
            break
        if result[i] == 0:
            continue
        down = min(result[i], to_scale_down - done)
        result[i] -= down
        done += down
    return result
