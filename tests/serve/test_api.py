"""``fleet serve``'s API on the sim: a POST starts a run that completes and a GET reports it; every refusal
(400, 401, 404, 413, 422) says why and starts nothing — no journal run row, no write to any cluster."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.serve.conftest import Journal, bearer, body, running, signed, wait_ended, writes

pytestmark = pytest.mark.sim_only


async def test_a_post_runs_the_playbook_on_the_clusters_and_the_get_reports_it(serve_config, sim2):
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/v1/playbooks/hello/runs", content=body({"name": "from-serve"}), headers=bearer())
        assert answer.status_code == 202, answer.text
        accepted = answer.json()
        assert accepted["status_url"] == f"/v1/runs/{accepted['run_id']}"
        assert accepted["run_id"].startswith("hello-")
        assert accepted["duplicate"] is False
        doc = await wait_ended(client, accepted["run_id"])
        assert doc["status"] == "succeeded", doc
        report = doc["report"]
        assert report["inputs"] == {"name": "from-serve", "replicas": 1, "mode": "fast"}
        assert sorted(c["cluster"] for c in report["clusterRows"]) == sorted(c.name for c in sim2.clusters)
        assert {c["outcome"] for c in report["clusterRows"]} == {"succeeded"}
        assert [s["step"] for s in report["steps"]] == ["config", "config"]
        listed = (await client.get("/v1/runs", headers=bearer())).json()["runs"]
        assert listed[0]["run_id"] == accepted["run_id"]
        assert listed[0]["status"] == "succeeded"
    for cluster in sim2.clusters:
        seen = await trio.to_thread.run_sync(cluster.requests)
        applied = [r for r in seen if r.method == "PATCH" and r.path.endswith("/configmaps/from-serve")]
        assert applied, f"{cluster.name} got no apply of the ConfigMap"


async def test_a_signed_post_with_a_fresh_timestamp_is_accepted(serve_config):
    payload = body({"name": "signed-run"})
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/v1/playbooks/hello/runs", content=payload, headers=signed(payload))
        assert answer.status_code == 202, answer.text
        assert (await wait_ended(client, answer.json()["run_id"]))["status"] == "succeeded"


def _refusals(now: float) -> list[tuple[str, dict[str, str], bytes, int, str]]:
    good = body({"name": "never"})
    return [
        ("/v1/playbooks/hello/runs", {}, good, 401, "no credentials"),
        ("/v1/playbooks/hello/runs", bearer("wrong-token-0000"), good, 401, "bearer token is not valid"),
        ("/v1/playbooks/hello/runs", {"Authorization": "Basic Zm9vOmJhcg=="}, good, 401, "Bearer TOKEN"),
        ("/v1/playbooks/hello/runs", signed(good, key="another-key-123"), good, 401, "does not match"),
        ("/v1/playbooks/hello/runs", signed(b"{}"), good, 401, "does not match"),  # signed another body
        ("/v1/playbooks/hello/runs", signed(good, at=now - 301), good, 401, "replay window"),  # replayed
        ("/v1/playbooks/hello/runs", signed(good, at=now + 400), good, 401, "replay window"),
        (
            "/v1/playbooks/hello/runs",
            {"X-Hub-Signature-256": signed(good)["X-Hub-Signature-256"]},
            good,
            401,
            "X-Fleet-Timestamp",
        ),
        ("/v1/playbooks/hello/runs?token=" + "serve-test-token-4f1c9a", {}, good, 401, "GET only"),
        ("/v1/playbooks/nope/runs", bearer(), good, 404, "no served playbook has the id 'nope'"),
        ("/v1/playbooks/hello/runs", bearer(), b"{not json", 400, "not JSON"),
        ("/v1/playbooks/hello/runs", bearer(), b"[1, 2]", 400, "JSON object"),
        ("/v1/playbooks/hello/runs", bearer(), b'{"inputs": [1]}', 400, "'inputs' must be a JSON object"),
        ("/v1/playbooks/hello/runs", bearer(), body({}), 422, "input 'name' is required"),
        ("/v1/playbooks/hello/runs", bearer(), body({"name": "x", "replicas": "many"}), 422, "is not an integer"),
        ("/v1/playbooks/hello/runs", bearer(), body({"name": "x", "mode": "turbo"}), 422, "is not one of"),
        ("/v1/playbooks/hello/runs", bearer(), body({"name": "x", "colour": "red"}), 422, "unknown input 'colour'"),
        ("/v1/playbooks/hello/runs", bearer(), body({"name": 5}), 422, "is not text"),
        ("/v1/playbooks/hello/runs?input.name=/missing", bearer(), b"{}", 422, "nothing at /missing"),
        ("/v1/playbooks/hello/runs", bearer(), b"x" * (1024 * 1024 + 1), 413, "at most 1048576"),
    ]


async def test_every_refusal_says_why_and_starts_nothing(serve_config, sim2):
    import time

    for cluster in sim2.clusters:
        await trio.to_thread.run_sync(cluster.clear_requests)
    journal = Journal(serve_config.journal)
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        for path, headers, content, status, reason in _refusals(time.time()):
            answer = await client.post(path, content=content, headers=headers)
            assert answer.status_code == status, (path, headers, answer.text)
            assert reason in answer.json()["reason"], (path, answer.json())
            if status == 422 and "field" in answer.json():
                assert answer.json()["field"].startswith("inputs.")
        assert (await client.get("/v1/runs", headers=bearer())).json() == {"runs": []}
    assert journal.runs() == []
    assert journal.rows("SELECT * FROM deliveries") == []
    assert await trio.to_thread.run_sync(writes, sim2) == []


async def test_an_oversized_body_is_refused_while_it_is_read(serve_config):
    """No Content-Length (chunked): the server stops at the limit, before the body ends."""
    sent = 0

    async def chunks():
        nonlocal sent
        for _ in range(64):  # 64 MiB offered, the limit is 1 MiB
            sent += 1
            yield b"x" * (1024 * 1024)

    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        try:
            answer = await client.post("/v1/playbooks/hello/runs", content=chunks(), headers=bearer())
        except httpx.WriteError:  # the server answered and closed while the client still wrote
            answer = None
        if answer is not None:
            assert answer.status_code == 413, answer.text
        assert sent < 64
    assert Journal(serve_config.journal).runs() == []


async def test_reads_need_credentials_too_and_a_browser_may_pass_the_token_in_the_query(serve_config):
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        for path in ("/v1/runs", "/v1/runs/some-run", "/v1/playbooks"):
            assert (await client.get(path)).status_code == 401
            assert (await client.get(path, params={"token": "wrong"})).status_code == 401
        assert (await client.get("/v1/runs", params={"token": "serve-test-token-4f1c9a"})).status_code == 200
        missing = await client.get("/v1/runs/some-run", headers=bearer())
        assert missing.status_code == 404
        assert "no run 'some-run'" in missing.json()["reason"]
        playbooks = (await client.get("/v1/playbooks", headers=bearer())).json()["playbooks"]
        assert [p["id"] for p in playbooks] == ["hello"]
        assert {"id": "name", "type": "STRING", "required": True} in playbooks[0]["inputs"]


async def test_inputs_can_be_mapped_from_a_webhook_body_by_json_pointer(serve_config):
    payload = b'{"action": "published", "release": {"tag_name": "v1-2-3"}}'
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.post(
            "/v1/playbooks/hello/runs?input.name=/release/tag_name", content=payload, headers=signed(payload)
        )
        assert answer.status_code == 202, answer.text
        doc = await wait_ended(client, answer.json()["run_id"])
        assert doc["report"]["inputs"]["name"] == "v1-2-3"


SLOW = """
id: slow
steps:
  - id: never
    type: assert
    condition: "false"
    retry: {interval: PT0.2S, maxAttempts: 1000}
"""


async def test_stopping_the_server_interrupts_its_runs_promptly_and_journals_them(serve_config):
    (serve_config.playbooks / "slow.yaml").write_text(SLOW)
    journal = Journal(serve_config.journal)
    with trio.fail_after(60):
        async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
            answer = await client.post("/v1/playbooks/slow/runs", headers=bearer())
            assert answer.status_code == 202, answer.text
            run_id = answer.json()["run_id"]
            while not journal.rows("SELECT 1 FROM steps WHERE run_id=? AND status='running'", run_id):  # noqa: ASYNC110
                await trio.sleep(0.05)
    outcomes = {outcome for (outcome,) in journal.rows("SELECT outcome FROM clusters WHERE run_id=?", run_id)}
    assert outcomes == {"interrupted"}
    assert journal.rows("SELECT status FROM steps WHERE run_id=?", run_id)


async def test_the_run_view_is_served_behind_the_same_authentication(serve_config):
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert (await client.get("/view/api/runs")).status_code == 401
        assert (await client.get("/view/api/runs", params={"token": "wrong"})).status_code == 401
        assert (await client.get("/view/api/runs", headers=bearer())).status_code == 200
        answer = await client.post("/v1/playbooks/hello/runs", content=body({"name": "viewed"}), headers=bearer())
        run_id = answer.json()["run_id"]
        await wait_ended(client, run_id)
        shown = await client.get(f"/view/api/runs/{run_id}", params={"token": "serve-test-token-4f1c9a"})
        assert shown.status_code == 200, shown.text
        assert run_id in shown.text
