"""Status conditions: read them, and set them keeping lastTransitionTime while the status holds."""

from __future__ import annotations

from fleet.sim.model import JsonObject


def get_condition(status: JsonObject, type_: str) -> JsonObject | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_true(status: JsonObject, type_: str) -> bool:
    cond = get_condition(status, type_)
    return cond is not None and cond.get("status") == "True"


def set_condition(
    status: JsonObject,
    type_: str,
    value: str,
    reason: str,
    message: str,
    now: str,
    *,
    with_update_time: bool = False,
    touch: bool = False,
) -> None:
    """Put a condition into ``status["conditions"]`` (in place).

    Nothing changes when status and reason are the same, unless ``touch`` asks for a new
    lastUpdateTime (the Deployment controller's "progress was made"). lastTransitionTime moves only
    when the status value changes.
    """
    conditions: list[JsonObject] = list(status.get("conditions") or [])
    current = next((c for c in conditions if c.get("type") == type_), None)
    if current is not None and current.get("status") == value and current.get("reason") == reason and not touch:
        return
    cond: JsonObject = {"type": type_, "status": value}
    if with_update_time:
        cond["lastUpdateTime"] = now
    cond["lastTransitionTime"] = (
        current["lastTransitionTime"]
        if current is not None and current.get("status") == value and current.get("lastTransitionTime")
        else now
    )
    cond["reason"] = reason
    cond["message"] = message
    status["conditions"] = [c for c in conditions if c.get("type") != type_] + [cond]


def remove_condition(status: JsonObject, type_: str) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
