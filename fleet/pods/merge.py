"""The merge rules for container and pod specs (``containerDefaultSpec``, ``containerSpec``, ``podSpec``...).

``merge(defaults, specific)`` returns a new object; neither argument is changed:

- maps deep-merge;
- lists of objects keyed by ``name`` (``env``, ``ports``, ``containers``, ``volumes``) or by ``mountPath``
  (``volumeMounts``) merge by key: the specific entry replaces the default entry with the same key, the
  defaults' order comes first, new specific entries follow;
- other lists concatenate, defaults first, except ``command`` and ``args``, which are one value each
  (a concatenated command line is never what anyone meant), so the specific one wins;
- scalars: the specific value wins (an explicit ``None`` in the specific side counts as absent).
"""

from __future__ import annotations

import copy
from typing import Any

#: Lists whose objects are identified by a key other than ``name``.
LIST_KEYS = {"volumeMounts": "mountPath", "volumeDevices": "devicePath"}
#: Lists that are a single value: the specific one replaces the default.
ATOMIC_LISTS = frozenset({"command", "args"})


def merge(defaults: Any, specific: Any, *, field: str = "") -> Any:
    """Merge ``specific`` over ``defaults`` following the rules in the module docstring."""
    if specific is None:
        return copy.deepcopy(defaults)
    if defaults is None:
        return copy.deepcopy(specific)
    if isinstance(defaults, dict) and isinstance(specific, dict):
        merged = copy.deepcopy(defaults)
        for key, value in specific.items():
            merged[key] = merge(merged.get(key), value, field=key)
        return merged
    if isinstance(defaults, list) and isinstance(specific, list) and field not in ATOMIC_LISTS:
        key = _list_key(field, defaults, specific)
        if key is None:
            return copy.deepcopy(defaults) + copy.deepcopy(specific)
        return _merge_keyed(defaults, specific, key)
    return copy.deepcopy(specific)


def _list_key(field: str, *lists: list[Any]) -> str | None:
    key = LIST_KEYS.get(field, "name")
    items = [item for items in lists for item in items]
    if items and all(isinstance(item, dict) and key in item for item in items):
        return key
    return None


def _merge_keyed(defaults: list[dict[str, Any]], specific: list[dict[str, Any]], key: str) -> list[Any]:
    by_key = {item[key]: item for item in specific}
    merged = [copy.deepcopy(by_key.pop(item[key], item)) for item in defaults]
    merged.extend(copy.deepcopy(item) for item in specific if item[key] in by_key)
    return merged
