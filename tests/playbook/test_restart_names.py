"""``restart``'s ``names``: several objects at once, as a list or as the comma-separated text a template
renders; exactly one of ``name`` and ``names``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fleet.playbook.kube_steps import RestartTask


@pytest.mark.parametrize(
    ("names", "expected"),
    [("api,worker", ["api", "worker"]), ("api, worker,", ["api", "worker"]), ("", []), (["a", "b"], ["a", "b"])],
)
def test_names_from_text_or_a_list(names, expected):
    assert RestartTask.model_validate({"kind": "Deployment", "names": names}).names == expected


@pytest.mark.parametrize("options", [{"kind": "Deployment"}, {"kind": "Deployment", "name": "a", "names": "b"}])
def test_name_or_names(options):
    with pytest.raises(ValidationError, match="give name \\(one object\\) or names \\(several\\)"):
        RestartTask.model_validate(options)


def test_wait_until_ready_is_the_rollout_deadline():
    task = RestartTask.model_validate({"kind": "Deployment", "names": "a", "waitUntilReady": "PT8S"})
    assert task.timeout.total_seconds() == 8
