"""``maxFailures`` as a count, and when it stops a run: reaching the budget stops, and a budget of 0 (or
``0%``) stops at the first failure (issue 8; Ansible's max_fail_percentage must be exceeded instead)."""

from __future__ import annotations

import pytest

from fleet.playbook.model import budget_of, budget_reached


@pytest.mark.parametrize(
    ("value", "total", "count"),
    [
        (None, 10, None),
        (0, 10, 0),
        (3, 10, 3),
        ("0%", 10, 0),
        ("0%", 0, 0),
        ("10%", 10, 1),
        ("10%", 11, 2),  # rounded up
        ("1%", 10, 1),  # a positive percentage is at least 1
        ("1%", 0, 1),
        ("25%", 20, 5),
        ("100%", 7, 7),
        ("12.5%", 8, 1),
    ],
)
def test_budget_of(value, total, count):
    assert budget_of(value, total) == count


@pytest.mark.parametrize(
    ("failures", "budget", "reached"),
    [
        (0, None, False),
        (100, None, False),  # no budget: every cluster runs
        (0, 0, False),
        (1, 0, True),  # 0: the first failure stops
        (0, 1, False),
        (1, 1, True),  # reaching it stops
        (2, 3, False),
        (3, 3, True),
        (4, 3, True),
    ],
)
def test_budget_reached(failures, budget, reached):
    assert budget_reached(failures, budget) is reached
