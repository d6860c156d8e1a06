"""A playbook's ``triggers``: cron expressions and time zones checked at load, errors naming the line."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from fleet.errors import InputError
from fleet.playbook.loader import load_playbook
from tests.deploy.conftest import EXAMPLE, ROOT

PLAYBOOK = """id: nightly
triggers:
  - cron: "0 3 * * 1"
    timezone: Europe/Paris
  - {trigger}
steps:
  - {{id: ok, type: assert, condition: "true"}}
"""


def _write(tmp_path, trigger):
    path = tmp_path / "nightly.yaml"
    path.write_text(PLAYBOOK.format(trigger=trigger))
    return path


def test_triggers_are_loaded_with_utc_as_the_default_zone(tmp_path):
    playbook = load_playbook(_write(tmp_path, 'cron: "@daily"')).playbook
    assert [(t.cron, t.timezone) for t in playbook.triggers] == [("0 3 * * 1", "Europe/Paris"), ("@daily", "Etc/UTC")]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ('cron: "0 3 * *"', r":5: triggers\[1\]\.cron: cron '0 3 \* \*' is not a schedule: five fields"),
        ('cron: "0 0 3 * * 1"', r":5: triggers\[1\]\.cron: cron '0 0 3 \* \* 1' is not a schedule"),
        ('cron: "61 * * * *"', r":5: triggers\[1\]\.cron: cron '61 \* \* \* \*' is not a schedule"),
        (
            '{cron: "@daily", timezone: Mars/Olympus}',
            r":5: triggers\[1\]\.timezone: timezone 'Mars/Olympus' is not an IANA",
        ),
        ('{cron: "@daily", tz: UTC}', r":5: triggers\[1\]\.tz"),
    ],
)
def test_a_bad_trigger_is_an_error_naming_its_line(tmp_path, trigger, message):
    with pytest.raises(InputError, match=message):
        load_playbook(_write(tmp_path, trigger))


def test_the_deploy_example_validates_against_the_published_schema():
    schema = json.loads((ROOT / "playbooks" / "playbook.schema.json").read_text())
    doc = yaml.safe_load(EXAMPLE.read_text())
    assert [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)] == []
    assert doc["triggers"] == [{"cron": "0 3 * * 1", "timezone": "Europe/Paris"}]
