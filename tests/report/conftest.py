"""``fleet`` as a user runs it (its own journal and artifacts), for the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.conftest import Fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(tmp_path)
