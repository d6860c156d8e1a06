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


# -- docs/concepts.md: its examples load, and what it says they do is what fleet does ---------------------

CONCEPTS = PUBLISHED.parent / "concepts.md"


def _examples(tmp_path: Path) -> dict[str, Path]:
    """Every YAML example of concepts.md written to ``tmp_path`` under the name its first line gives."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", CONCEPTS.read_text(), flags=re.MULTILINE | re.DOTALL)
    assert blocks
    written: dict[str, Path] = {}
    for block in blocks:
        header = re.match(r"# (inventory|playbook): (\S+)\n", block)
        assert header, f"an example without '# inventory: NAME' or '# playbook: NAME': {block[:60]!r}"
        path = tmp_path / header.group(1) / header.group(2)
        path.parent.mkdir(exist_ok=True)
        path.write_text(block)
        written[header.group(2)] = path
    return written


def test_the_concepts_examples_load_and_do_what_the_text_says(tmp_path):
    from fleet.engine.waves import assign_waves
    from fleet.inventory import load_inventory
    from fleet.inventory.selection import select_clusters
    from fleet.playbook.loader import load_playbook
    from fleet.playbook.validate import check_renders
    from fleet.playbook.variables import check_inputs

    examples = _examples(tmp_path)
    clusters = load_inventory([examples["clusters.yaml"]]).clusters
    assert {c.name: c.labels["env"] for c in clusters} == {"eu-1": "prod", "eu-2": "prod", "us-1": "staging"}

    def names(selected):
        return [c.name for c in selected]

    assert names(select_clusters(clusters, "env=prod")) == ["eu-1", "eu-2"]
    assert names(select_clusters(clusters, tenants=["acme"])) == ["eu-1", "us-1"]
    assert names(select_clusters(clusters, limit="eu-*,!eu-2")) == ["eu-1"]

    playbooks = {name: load_playbook(path) for name, path in examples.items() if path.parent.name == "playbook"}
    assert set(playbooks) == {"config.yaml", "waves.yaml", "rollback.yaml"}
    for name, loaded in playbooks.items():
        inputs = check_inputs(loaded.playbook, {"level": "debug"} if name == "config.yaml" else {}, file=name)
        check_renders(loaded, inputs, clusters)
    waves = assign_waves(playbooks["waves.yaml"], clusters)
    assert [names(w) for w in waves] == [["eu-1"], [], ["eu-2", "us-1"], []]
    assert playbooks["rollback.yaml"].playbook.rollback.auto
