"""``check_renders`` (``fleet validate``, ``fleet plan`` and every run before a cluster is contacted) renders
the templates of ``assert`` and ``fail`` steps, ``if`` conditions and every ``when`` for each selected
cluster: an undefined variable or a template that fails there is an input error naming the line and
field, not a step that fails mid-rollout. A step whose ``when`` is false for a cluster is not rendered
for it; templates that read ``outputs`` wait for the run; ``clusters`` holds the selected clusters."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fleet.errors import InputError
from fleet.inventory import Cluster, ConnectionSpec
from fleet.playbook.loader import load_playbook
from fleet.playbook.validate import check_renders

CLUSTERS = [
    Cluster(name=name, tenant="acme", region=region, labels=labels, connection=ConnectionSpec(in_cluster=True),
            origin="test")
    for name, region, labels in (("eu-1", "eu-west-1", {"tier": "gold"}), ("us-1", "us-east-1", {}))
]  # fmt: skip


def _check(tmp_path: Path, steps: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("id: t\ninputs:\n  - {id: wanted, type: STRING, default: gold}\nsteps:\n"
                    + textwrap.indent(textwrap.dedent(steps), "  "))  # fmt: skip
    check_renders(load_playbook(path), {"wanted": "gold"}, CLUSTERS)


@pytest.mark.parametrize(
    ("steps", "line", "field", "message"),
    [
        ("- {id: a, type: assert, condition: \"inputs.nosuch == 1\"}\n", 5, "steps[0].condition",
         "has no attribute 'nosuch' (for cluster eu-1)"),
        ("- id: a\n  type: assert\n  condition: \"true\"\n  message: \"{{ cluster.name }} lacks {{ wanted }}\"\n",
         8, "steps[0].message", "'wanted' is undefined (for cluster eu-1)"),
        ("- {id: a, type: fail, message: \"{{ cluster.labels.tier }} is frozen\"}\n", 5, "steps[0].message",
         "has no attribute 'tier' (for cluster us-1)"),
        ("- {id: a, type: fail, message: x, when: \"cluster.zone == 'a'\"}\n", 5, "steps[0].when",
         "has no attribute 'zone' (for cluster eu-1)"),
        ("- id: a\n  type: if\n  condition: \"cluster.labels.tier == 'gold'\"\n  then:\n"
         "    - {id: b, type: fail, message: x}\n", 7, "steps[0].condition", "(for cluster us-1)"),
        ("- id: a\n  type: if\n  condition: \"true\"\n  then:\n    - {id: b, type: fail, message: \"{{ 1 / 0 }}\"}\n",
         9, "steps[0].then[0].message", "division by zero (for cluster eu-1)"),
    ],
)  # fmt: skip
def test_an_assert_fail_if_or_when_template_that_cannot_render_is_an_input_error(tmp_path, steps, line, field, message):
    with pytest.raises(InputError) as caught:
        _check(tmp_path, steps)
    assert (caught.value.location.line, caught.value.location.field) == (line, field)
    assert message in caught.value.message
    assert caught.value.exit_code == 2


def test_a_step_whose_when_is_false_is_not_rendered_for_that_cluster(tmp_path):
    _check(tmp_path, "- {id: a, type: fail, when: \"'tier' in cluster.labels\", message: \"{{ cluster.labels.tier }}\"}"
                     "\n")


def test_templates_that_read_outputs_wait_for_the_run_and_clusters_is_the_selection(tmp_path):
    _check(tmp_path, """\
        - {id: first, type: fail, when: "false", message: x}
        - {id: a, type: assert, condition: "outputs.first.yet", message: "{{ outputs.first.yet }}"}
        - id: b
          type: assert
          condition: "clusters | length == 2 and clusters['us-1'].outcome == 'not_started'"
          message: "{{ clusters.values() | map(attribute='region') | join(', ') }}: {{ clusters['eu-1'].outputs }}"
        """)  # fmt: skip


GUARDED = """\
    - {id: has-tier, type: assert, condition: "'tier' in cluster.labels", message: "no tier"%s}
    - {id: frozen, type: fail, message: "{{ cluster.labels.tier }} clusters are frozen"}
    """


def test_the_steps_after_a_false_assert_are_not_rendered_for_that_cluster(tmp_path):
    """us-1 has no tier: it fails at the assert, so the run never renders the message after it."""
    _check(tmp_path, GUARDED % "")


@pytest.mark.parametrize(
    "option", [", retry: {type: constant, interval: PT1S, maxAttempts: 3}", ", allowFailure: true"],
    ids=["with-retry", "allowed-to-fail"],
)
def test_an_assert_that_may_still_pass_or_is_allowed_to_fail_does_not_stop_the_checks(tmp_path, option):
    with pytest.raises(InputError) as caught:
        _check(tmp_path, GUARDED % option)
    assert caught.value.location.field == "steps[1].message"
    assert "(for cluster us-1)" in caught.value.message
