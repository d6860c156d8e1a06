"""``playbooks/playbook.schema.json`` is what the models produce (``fleet schema playbook``), and every
playbook that comes with fleet validates against it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from fleet.playbook.schema import playbook_schema

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
PUBLISHED = PLAYBOOKS / "playbook.schema.json"


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(PUBLISHED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_published_schema_is_the_models_schema():
    assert json.loads(PUBLISHED.read_text()) == playbook_schema(), (
        "run: fleet schema playbook > playbooks/playbook.schema.json"
    )


def test_fleet_schema_playbook_prints_the_published_schema():
    result = subprocess.run(
        [sys.executable, "-m", "fleet", "schema", "playbook"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(PUBLISHED.read_text())


@pytest.mark.parametrize("playbook", sorted(PLAYBOOKS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_playbook_validates_against_the_schema(playbook):
    errors = [f"{list(e.path)}: {e.message}" for e in _validator().iter_errors(yaml.safe_load(playbook.read_text()))]
    assert errors == []


def test_the_schema_rejects_an_unknown_step_option():
    doc = yaml.safe_load((PLAYBOOKS / "release.yaml").read_text())
    doc["steps"][0]["waitUntilRedy"] = "PT1M"
    assert not _validator().is_valid(doc)
