"""One run per event: deliveries with the same ``X-Delivery-Id`` (or ``X-GitHub-Delivery``) start one run
and answer with its id — when they arrive together, one after the other, and after the server restarted
(the event ids are in the journal)."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.serve.conftest import Journal, bearer, body, running, signed, wait_ended

pytestmark = pytest.mark.sim_only


async def test_concurrent_duplicates_start_one_run_and_all_answer_with_its_id(serve_config):
    answers: list[httpx.Response] = []
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:

        async def deliver(event: str) -> None:
            headers = {**bearer(), "X-GitHub-Delivery": event}
            sent = body({"name": "dup"})
            answers.append(await client.post("/v1/playbooks/hello/runs", content=sent, headers=headers))

        async with trio.open_nursery() as nursery:
            for index in range(20):
                nursery.start_soon(deliver, f"event-{index % 4}")  # 4 events, 5 deliveries each
        assert {a.status_code for a in answers} == {202}
        by_event: dict[bool, list[str]] = {}
        for a in answers:
            by_event.setdefault(a.json()["duplicate"], []).append(a.json()["run_id"])
        assert len(by_event[False]) == 4
        assert len(by_event[True]) == 16
        assert set(by_event[True]) == set(by_event[False])
        for run_id in by_event[False]:
            assert (await wait_ended(client, run_id))["status"] == "succeeded"
    assert sorted(Journal(serve_config.journal).runs()) == sorted(by_event[False])


async def test_a_duplicate_after_a_restart_answers_with_the_first_run_and_starts_nothing(serve_config):
    payload = body({"name": "restarted"})
    headers = {**signed(payload), "X-Delivery-Id": "7d3c6a70-event"}
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        first = await client.post("/v1/playbooks/hello/runs", content=payload, headers=headers)
        assert first.status_code == 202, first.text
        run_id = first.json()["run_id"]
        assert (await wait_ended(client, run_id))["status"] == "succeeded"
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        again = await client.post("/v1/playbooks/hello/runs", content=payload, headers=headers)
        assert again.status_code == 202, again.text
        assert again.json() == {"run_id": run_id, "status_url": f"/v1/runs/{run_id}", "duplicate": True}
        other = await client.post(
            "/v1/playbooks/hello/runs", content=payload, headers={**signed(payload), "X-Delivery-Id": "another-event"}
        )
        assert other.json()["run_id"] != run_id
        await wait_ended(client, other.json()["run_id"])
    assert sorted(Journal(serve_config.journal).runs()) == sorted([run_id, other.json()["run_id"]])


async def test_an_event_accepted_by_a_server_that_stopped_before_the_run_started_runs_once_on_its_retry(
    serve_config,
):
    """The server recorded the event, then died before the run's first journal row: the sender's retry
    (same event id) starts that run, under the id first answered, once."""
    from fleet.serve.deliveries import Deliveries

    deliveries = Deliveries(serve_config.journal, "local")
    try:
        claim = await deliveries.claim("lost-event", "hello-20260101-000000-dead", "hello")
    finally:
        deliveries.close()
    assert claim.action == "new"
    answers: list[httpx.Response] = []
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        queued = (await client.get("/v1/runs/hello-20260101-000000-dead", headers=bearer())).json()
        assert queued["status"] == "queued"
        assert queued["report"] is None

        async def retry() -> None:
            headers = {**bearer(), "X-Delivery-Id": "lost-event"}
            sent = body({"name": "lost"})
            answers.append(await client.post("/v1/playbooks/hello/runs", content=sent, headers=headers))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(retry)
        assert {a.json()["run_id"] for a in answers} == {"hello-20260101-000000-dead"}
        assert (await wait_ended(client, "hello-20260101-000000-dead"))["status"] == "succeeded"
    assert Journal(serve_config.journal).runs() == ["hello-20260101-000000-dead"]


async def test_an_event_id_used_for_another_playbook_is_a_conflict(serve_config):
    (serve_config.playbooks / "other.yaml").write_text(
        "id: other\nsteps:\n  - {id: ok, type: assert, condition: 'true'}\n"
    )
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        headers = {**bearer(), "X-Delivery-Id": "shared-event"}
        first = await client.post("/v1/playbooks/other/runs", headers=headers)
        assert first.status_code == 202, first.text
        clash = await client.post("/v1/playbooks/hello/runs", content=body({"name": "x"}), headers=headers)
        assert clash.status_code == 409
        assert first.json()["run_id"] in clash.json()["reason"]
        await wait_ended(client, first.json()["run_id"])
    assert Journal(serve_config.journal).runs() == [first.json()["run_id"]]
