"""The ``http`` and ``notify`` steps in ``fleet run``, against a real HTTP server on 127.0.0.1: the answer
in the outputs, a status that is not the expected one, a server that answers late, a retry that ends in
success, and secrets (an Authorization header, a webhook URL) that never reach the journal, the report
or the logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fleet.sim import SimFleet
from tests.engine.conftest import Fleet, inventory, report
from tests.http_server import HOOK, TOKEN, TestServer, serving

pytestmark = pytest.mark.sim_only


@pytest.fixture(scope="module")
def one_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path_factory.mktemp("sim1")) as sim:
        yield sim


@pytest.fixture
def server() -> Iterator[TestServer]:
    with serving() as state:
        yield state


def _run(fleet: Fleet, sim: SimFleet, tmp_path: Path, steps: list[dict], *args: str, **env: str):
    playbook = tmp_path / "http.yaml"
    playbook.write_text(yaml.safe_dump({"id": "http", "steps": steps}, sort_keys=False))
    inv = inventory(sim, tmp_path / "inv.yaml")
    result = fleet("run", str(playbook), "-i", str(inv), "-o", "json", *args, **env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _cluster(result) -> dict:
    (cluster,) = report(result)["clusters"]
    return cluster


def test_a_json_answer_lands_in_the_outputs_for_the_next_step(fleet, one_cluster, server, tmp_path):
    steps = [
        {
            "id": "register",
            "type": "http",
            "method": "post",
            "url": f"{server.url}/models",
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "body": {"name": "resnet", "version": "{{ cluster.name }}"},
            "expectedStatus": 201,
        },
        {"id": "read", "type": "http", "url": f"{server.url}/models/{{{{ outputs.register.json.name }}}}"},
        {"id": "same", "type": "assert", "condition": "outputs.read.json.id == outputs.register.json.id"},
    ]
    result = _run(fleet, one_cluster, tmp_path, steps)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = _cluster(result)["outputs"]
    assert outputs["register"]["status"] == 201
    assert outputs["register"]["reason"] == "Created"
    assert outputs["register"]["headers"]["content-type"] == "application/json"
    assert (
        outputs["register"]["json"] | {"name": "resnet", "version": "sim-0", "id": "m-1"} == outputs["register"]["json"]
    )
    assert outputs["read"]["json"] == {"name": "resnet", "version": "sim-0", "id": "m-1"}
    sent = server.requests[0]
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json() == {"name": "resnet", "version": "sim-0"}


def test_an_unexpected_status_fails_with_the_status_and_the_start_of_the_body(fleet, one_cluster, server, tmp_path):
    steps = [{"id": "call", "type": "http", "url": f"{server.url}/status/500", "expectedStatus": ["2xx", 404]}]
    result = _run(fleet, one_cluster, tmp_path, steps)
    assert result.returncode == 1
    cluster = _cluster(result)
    assert cluster["failedStep"] == "call"
    error = cluster["error"]
    assert (
        f"GET {server.url}/status/500 answered 500 Internal Server Error, expected 2xx or 404: the server said no."
        in error
    )
    assert "more characters)" in error
    assert len(error) < 600


def test_a_server_that_answers_late_fails_the_request_and_the_step_timeout_bounds_the_attempt(
    fleet, one_cluster, server, tmp_path
):
    steps = [
        {"id": "late", "type": "http", "url": f"{server.url}/slow/2", "requestTimeout": "PT0.3S", "allowFailure": True},
        {"id": "bounded", "type": "http", "url": f"{server.url}/slow/2", "timeout": "PT0.3S"},
    ]
    result = _run(fleet, one_cluster, tmp_path, steps)
    assert result.returncode == 1
    cluster = _cluster(result)
    assert cluster["failedStep"] == "bounded"
    assert "timed out after 300ms" in cluster["error"]
    errors = dict(fleet.rows("SELECT step, error FROM steps WHERE step IN ('late', 'bounded')"))
    assert errors["late"] == f"GET {server.url}/slow/2: no answer in time (read timed out)"


def test_the_step_retry_sends_the_request_again_until_it_succeeds(fleet, one_cluster, server, tmp_path):
    steps = [
        {
            "id": "flaky",
            "type": "http",
            "url": f"{server.url}/flaky/k/2",
            "retry": {"type": "constant", "interval": "PT0.1S", "maxAttempts": 3},
        }
    ]
    result = _run(fleet, one_cluster, tmp_path, steps)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _cluster(result)["outputs"]["flaky"]["json"] == {"attempt": 3}
    assert [r.path for r in server.requests] == ["/flaky/k/2"] * 3
    attempts = fleet.rows("SELECT attempt, status, error FROM steps WHERE step = 'flaky' ORDER BY attempt")
    assert [(a, s) for a, s, _ in attempts] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert "answered 503 Service Unavailable, expected 2xx: try again" in attempts[0][2]


def test_an_authorization_header_and_a_webhook_url_never_reach_the_journal_the_report_or_the_logs(
    fleet, one_cluster, server, tmp_path
):
    steps = [
        {
            "id": "register",
            "type": "http",
            "method": "POST",
            "url": f"{server.url}/models",
            "headers": {"Authorization": "Bearer {{ secret('env:REGISTRY_TOKEN') }}"},
            "body": {"name": "bert"},
        },
        {
            "id": "literal",
            "type": "http",
            "url": f"{server.url}/models/bert",
            "headers": {"X-Api-Key": "k-literal-9931"},
        },
        {
            "id": "tell",
            "type": "notify",
            "webhook": "{{ secret('env:SLACK_WEBHOOK_URL') }}",
            "text": "model {{ outputs.register.json.id }} registered",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*bert* is in"}}],
        },
        {"id": "broken", "type": "notify", "url": "{{ secret('env:BROKEN_WEBHOOK_URL') }}", "text": "never"},
    ]
    broken = f"{server.url}/status/500?{HOOK}"
    env = {"REGISTRY_TOKEN": TOKEN, "SLACK_WEBHOOK_URL": server.webhook, "BROKEN_WEBHOOK_URL": broken}
    result = _run(fleet, one_cluster, tmp_path, steps, FLEET_LOG_LEVEL="DEBUG", **env)
    assert result.returncode == 1
    cluster = _cluster(result)
    assert cluster["failedStep"] == "broken"
    assert cluster["error"].startswith("POST *** answered 500 Internal Server Error, expected 2xx: the server")
    assert cluster["outputs"]["register"]["json"]["receivedAuthorization"] == "***"
    assert cluster["outputs"]["tell"] == {"status": 200, "body": "ok", "text": "model m-1 registered"}
    assert server.messages() == [
        {
            "text": "model m-1 registered",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*bert* is in"}}],
        }
    ]
    assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert server.requests[1].headers["X-Api-Key"] == "k-literal-9931"
    assert "httpx" in result.stderr  # DEBUG: the HTTP client's own log lines are there, redacted
    journal = fleet.journal.read_bytes()
    for secret in (TOKEN, HOOK, server.webhook, "k-literal-9931"):
        assert secret not in result.stdout
        assert secret not in result.stderr
        assert secret.encode() not in journal


def test_a_webhook_written_in_the_playbook_is_refused_before_anything_runs(fleet, tmp_path):
    playbook = tmp_path / "notify.yaml"
    hook = "https://hooks.example.com/services/T1/B2/written-in-clear"
    steps = [{"id": "tell", "type": "notify", "webhook": hook, "text": "hi"}]
    playbook.write_text(yaml.safe_dump({"id": "notify", "steps": steps}, sort_keys=False))
    result = fleet("validate", str(playbook))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{playbook}:" in result.stderr
    assert "webhook" in result.stderr
    assert "the webhook URL must come from a secret" in result.stderr
    assert "written-in-clear" not in result.stdout + result.stderr
