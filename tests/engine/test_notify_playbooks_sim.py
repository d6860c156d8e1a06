"""release.yaml and promote.yaml end with one Slack message per run (``finally``), saying how the run went;
without a webhook they send none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleet.sim import SimFleet
from tests.engine.conftest import PLAYBOOKS, inventory
from tests.http_server import HOOK, TestServer, serving

pytestmark = pytest.mark.sim_only


@pytest.fixture
def server() -> Iterator[TestServer]:
    with serving() as state:
        yield state


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path_factory.mktemp("sim3")) as sim:
        yield sim


def test_a_release_posts_one_message_with_its_outcome(fleet, three, server, tmp_path):
    inv = str(inventory(three, tmp_path / "inv.yaml"))
    args = ("run", str(PLAYBOOKS / "release.yaml"), "-i", inv, "--set", "namespace=notified", "-q")
    result = fleet(*args, "--set", "slackWebhook=env:SLACK_WEBHOOK_URL", SLACK_WEBHOOK_URL=server.webhook)
    assert result.returncode == 0, result.stdout + result.stderr
    (message,) = server.messages()
    assert message["text"] == "release 1.27 succeeded: 3/3 clusters succeeded"
    assert HOOK not in result.stdout + result.stderr
    assert HOOK.encode() not in fleet.journal.read_bytes()

    quiet = fleet(*args)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert len(server.messages()) == 1  # no webhook given: no message
    assert fleet.rows("SELECT status FROM steps WHERE step='notify' ORDER BY started") == [
        ("succeeded",),
        ("skipped",),
    ]


def test_a_promotion_says_which_clusters_it_did_not_reach(fleet, three, server, tmp_path):
    names = [c.name for c in three.clusters]
    labels = {names[0]: {"env": "staging"}, names[1]: {"env": "prod"}, names[2]: {"env": "prod"}}
    inv = str(inventory(three, tmp_path / "inv.yaml", labels=labels))
    result = fleet(
        "run",
        str(PLAYBOOKS / "promote.yaml"),
        "-i",
        inv,
        "--set",
        "version=1.27-fail",
        "--set",
        "wait=PT3S",
        "--set",
        "slackWebhook=env:SLACK_WEBHOOK_URL",
        "-q",
        SLACK_WEBHOOK_URL=server.webhook,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    (message,) = server.messages()
    assert message["text"].startswith("promotion of 1.27-fail stopped: 0/3 clusters succeeded; not started: ")
    assert names[1] in message["text"]
