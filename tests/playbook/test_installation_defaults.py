"""``FLEET_DEFAULTS``: installation-wide step defaults under the playbook's ``defaults:``; the playbook's and
the step's own values win, except the installation's ``forced:``; maps merge deeply."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fleet.errors import InputError
from fleet.playbook.loader import load_playbook
from fleet.playbook.steps import OperationStep

PLAYBOOK = """
id: defaulted
defaults:
  pod: {pullPolicy: IfNotPresent, labels: {team: web}}
steps:
  - id: own
    type: pod
    image: busybox
    namespace: mine
    serviceAccountName: chosen
    commands: ["true"]
  - id: bare
    type: pod
    image: busybox
    commands: ["true"]
"""

INSTALLATION = """
pod:
  namespace: jobs
  pullPolicy: Always
  labels: {cost-center: platform}
  forced: {serviceAccountName: runner}
"""


def _options(path, defaults):
    loaded = load_playbook(path, installation_defaults=defaults)
    return {s.id: s.options for s in loaded.playbook.steps if isinstance(s, OperationStep)}


def test_installation_defaults_sit_under_the_playbook_and_the_step_except_forced(tmp_path):
    playbook = tmp_path / "p.yaml"
    playbook.write_text(PLAYBOOK)
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text(INSTALLATION)
    steps = _options(playbook, defaults)
    assert steps["own"]["namespace"] == "mine"  # the step's own value wins
    assert steps["bare"]["namespace"] == "jobs"  # the installation's, where nobody else says
    assert steps["own"]["pullPolicy"] == steps["bare"]["pullPolicy"] == "IfNotPresent"  # the playbook's wins
    assert steps["bare"]["labels"] == {"cost-center": "platform", "team": "web"}  # maps merge deeply
    assert steps["own"]["serviceAccountName"] == steps["bare"]["serviceAccountName"] == "runner"  # forced
    assert _options(playbook, None)["bare"].get("namespace") is None


def test_bad_installation_defaults_are_an_input_error_naming_the_file(tmp_path):
    playbook = tmp_path / "p.yaml"
    playbook.write_text(PLAYBOOK)
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("pod: [namespace]\n")
    with pytest.raises(InputError, match="mapping of step type to options") as info:
        load_playbook(playbook, installation_defaults=defaults)
    assert str(defaults) in str(info.value)
    result = subprocess.run(
        [sys.executable, "-m", "fleet", "validate", str(playbook), "--kubeconfig", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env={**os.environ, "FLEET_DEFAULTS": str(defaults)},
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "FLEET_DEFAULTS" in result.stderr
