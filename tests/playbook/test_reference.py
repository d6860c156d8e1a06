"""``docs/reference.md`` is what the models produce (``fleet schema reference``), and it names every step
type and every property a playbook can have, a step type added to ``OPTIONS`` included."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from fleet.playbook import steps
from fleet.playbook.model import Playbook
from fleet.playbook.reference import COMMAND, control_steps, reference_markdown

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_the_published_reference_is_the_models_reference():
    assert PUBLISHED.read_text() == reference_markdown(), f"run: {COMMAND}"


def test_fleet_schema_reference_prints_it():
    result = subprocess.run(
        [sys.executable, "-m", "fleet", "schema", "reference"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == PUBLISHED.read_text()


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n### ", start + 1)
    return text[start : end if end > 0 else None]


def _properties(section: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def _names(model: type[BaseModel], skip: frozenset[str] = frozenset()) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items() if n not in skip]


def test_every_step_type_has_its_section_with_every_property():
    text = reference_markdown()
    for step_type, model in steps.OPTIONS.items():
        assert _properties(_section(text, f"### {step_type}")) == _names(model), step_type
    common = set(steps.OperationStep.model_fields)
    for model in control_steps():
        step_type = model.model_fields["type"].annotation.__args__[0]
        assert _properties(_section(text, f"### {step_type}")) == _names(model, frozenset(common)), step_type
    assert _properties(_section(text, "## Playbook")) == _names(Playbook)
    assert set(steps.STEP_TYPES) <= set(re.findall(r"\[`([^`]+)`\]\(#", text))  # the list of step types


class _Notify(BaseModel):
    """Post a message (a step type another module adds)."""

    #: Where the message goes.
    url: str
    text: str = "done"


def test_a_step_type_added_to_options_appears_without_a_change(monkeypatch):
    monkeypatch.setitem(steps.OPTIONS, "vault.read", _Notify)
    text = reference_markdown()
    section = _section(text, "### vault.read")
    assert "Post a message (a step type another module adds)." in section
    assert "| `url` | string | *required* | Where the message goes. |" in section
    assert "| `text` | string | `done` |  |" in section
    assert "[`vault.read`](#vaultread)" in text  # GitHub's anchor of the heading
