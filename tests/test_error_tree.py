"""Every exception class fleet defines is in the tree drawn in ``fleet/errors.py``'s docstring, under the
parent drawn there, and no fleet class derives from ``Exception`` outside that tree."""

from __future__ import annotations

import importlib
import pkgutil
import re

import fleet
import fleet.errors
from fleet.errors import FleetError

_BRANCH = re.compile(r"^(?P<indent>[ │]*)[├└]── (?P<name>\w+)")


def _import_every_module() -> None:
    for module in pkgutil.walk_packages(fleet.__path__, "fleet."):
        if module.name != "fleet.__main__":  # it runs the CLI
            importlib.import_module(module.name)


def _drawn_parents() -> dict[str, str]:
    """Each class of the drawing and the class drawn as its parent."""
    doc = fleet.errors.__doc__ or ""
    lines = doc.splitlines()
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = [(-1, "FleetError")]
    for line in lines:
        match = _BRANCH.match(line.strip("\n")[4:])  # the drawing is indented by four spaces
        if not match:
            continue
        depth = len(match["indent"]) // 4
        while stack[-1][0] >= depth:
            stack.pop()
        parents[match["name"]] = stack[-1][1]
        stack.append((depth, match["name"]))
    return parents


def _subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def _fleet_parent(cls: type[BaseException]) -> str:
    return next(base.__name__ for base in cls.__bases__ if issubclass(base, FleetError))


def test_the_drawing_is_read():
    parents = _drawn_parents()
    assert parents["InputError"] == "FleetError"
    assert parents["ApiError"] == "ClusterError"
    assert parents["StatusError"] == "SimError"


def test_every_fleet_error_is_drawn_under_its_parent():
    _import_every_module()
    drawn = _drawn_parents()
    classes = {cls for cls in _subclasses(FleetError) if cls.__module__.startswith("fleet.")}
    names = {cls.__name__ for cls in classes}
    assert len(names) == len(classes), "two error classes share a name"
    assert sorted(names - drawn.keys()) == [], "classes missing from the drawing in fleet/errors.py"
    assert sorted(drawn.keys() - names) == [], "the drawing shows classes that do not exist"
    wrong = {c.__name__: (_fleet_parent(c), drawn[c.__name__]) for c in classes}
    wrong = {name: pair for name, pair in wrong.items() if pair[0] != pair[1]}
    assert wrong == {}, "(actual parent, drawn parent) of classes drawn under another parent"


def test_no_fleet_exception_lives_outside_the_tree():
    _import_every_module()
    outside = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _subclasses(BaseException)
        if cls.__module__.startswith("fleet.") and not issubclass(cls, FleetError)
    )
    assert outside == []


def test_input_errors_exit_2_and_the_others_1():
    _import_every_module()
    for cls in _subclasses(FleetError):
        assert cls.exit_code == (2 if issubclass(cls, fleet.errors.InputError) else 1), cls
