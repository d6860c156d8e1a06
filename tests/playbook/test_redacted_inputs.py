"""What the journal keeps of a run's inputs: a SECRET's reference, never its value; an unset SECRET stays
unset (``fleet resume`` of a release run without ``slackWebhook`` read the text "None" as a reference)."""

from __future__ import annotations

from fleet.playbook.loader import load_playbook
from fleet.playbook.variables import redacted_inputs

PLAYBOOK = """
id: inputs
inputs:
  - {id: version, type: STRING}
  - {id: hook, type: SECRET}
steps:
  - {id: ok, type: assert, condition: "true"}
"""


def test_secret_inputs_keep_their_reference_and_unset_ones_stay_unset(tmp_path):
    path = tmp_path / "inputs.yaml"
    path.write_text(PLAYBOOK)
    playbook = load_playbook(path).playbook
    given = {"version": "1", "hook": "env:HOOK"}
    assert redacted_inputs(playbook, given) == {"version": "1", "hook": "secret:env:HOOK"}
    assert redacted_inputs(playbook, {"version": "1", "hook": None}) == {"version": "1", "hook": None}
