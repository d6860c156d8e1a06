"""External programs the tests run (kubectl, OpenBao's ``bao``)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, how_to_get_it: str) -> str:
    """The path of ``name``. Missing, the test is skipped on a developer's machine but fails where
    ``FLEET_TEST_REQUIRE_TOOLS`` is set (``.ci/run`` sets it), so CI can never pass by skipping."""
    path = shutil.which(name)
    if path is not None:
        return path
    unavailable(f"{name} is not on PATH ({how_to_get_it})")
    raise AssertionError("unreachable")


def unavailable(message: str) -> None:
    """What a test needs is not on this machine: skipped on a developer's machine, a failure where
    ``FLEET_TEST_REQUIRE_TOOLS`` is set (CI)."""
    if os.environ.get("FLEET_TEST_REQUIRE_TOOLS"):
        pytest.fail(message)
    pytest.skip(message)
