"""``fleet serve --launcher job`` on the sim: an accepted run becomes one Job made from the shipped
template (``deploy/kustomize/components/serve/run-job.yaml``), named after the run, running ``fleet run
PLAYBOOK -i INVENTORY --run-id ID --set …``, created before the 202; a duplicate creates none, and after a
restart a retried event finds its Job there (409) instead of making a second. The rendered Job validates
against the Kubernetes schema."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest
import trio

from fleet.kube import KubeClient
from fleet.serve.config import JobConfig
from fleet.serve.launchers import job_name
from tests.deploy.conftest import KUSTOMIZE, validated
from tests.serve.conftest import bearer, body, running

pytestmark = pytest.mark.sim_only

TEMPLATE = KUSTOMIZE / "components" / "serve" / "run-job.yaml"


async def _jobs_posted(cluster) -> list[int]:
    seen = await trio.to_thread.run_sync(cluster.requests)
    return [r.status for r in seen if r.method == "POST" and r.path == "/apis/batch/v1/namespaces/fleet/jobs"]


async def test_a_run_becomes_one_job_that_runs_fleet_run_with_the_run_id(serve_config, sim2):
    cluster = sim2.clusters[0]
    config = replace(
        serve_config,
        launcher="job",
        job=JobConfig(TEMPLATE, namespace="fleet", kubeconfig=cluster.kubeconfig_path, context=cluster.name),
    )
    with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.name) as kube:
        if await kube.get_or_none("/api/v1/namespaces/fleet") is None:
            await kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "fleet"}})
        await trio.to_thread.run_sync(cluster.clear_requests)
        headers = {**bearer(), "X-Delivery-Id": "job-event-1"}
        async with running(config) as url, httpx.AsyncClient(base_url=url) as client:
            refused = await client.post("/v1/playbooks/hello/runs", content=body({"replicas": 2}), headers=headers)
            assert refused.status_code == 422
            assert await _jobs_posted(cluster) == []
            answer = await client.post("/v1/playbooks/hello/runs", content=body({"name": "in-a-job"}), headers=headers)
            assert answer.status_code == 202, answer.text
            run_id = answer.json()["run_id"]
            assert await _jobs_posted(cluster) == [201]  # created before the 202
            status = (await client.get(f"/v1/runs/{run_id}", headers=bearer())).json()
            assert (status["status"], status["launcher"]) == ("queued", "job")
            again = await client.post("/v1/playbooks/hello/runs", content=body({"name": "in-a-job"}), headers=headers)
            assert again.json() == {**answer.json(), "duplicate": True}
            assert await _jobs_posted(cluster) == [201]
        job = await kube.request("GET", f"/apis/batch/v1/namespaces/fleet/jobs/{job_name(run_id)}")
        async with running(config) as url, httpx.AsyncClient(base_url=url) as client:  # restarted
            retried = await client.post("/v1/playbooks/hello/runs", content=body({"name": "in-a-job"}), headers=headers)
            assert retried.json()["run_id"] == run_id
        assert await _jobs_posted(cluster) == [201, 409]  # the Job was there: no second one
        listed = await kube.request("GET", "/apis/batch/v1/namespaces/fleet/jobs")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "run", str(config.playbooks / "hello.yaml"), "-i", str(config.inventory[0]),
        "--run-id", run_id, "--set", "name=in-a-job",
    ]  # fmt: skip
    assert job["metadata"]["labels"]["fleet.dev/run-id"] == run_id
    assert job["metadata"]["annotations"]["fleet.dev/run-id"] == run_id
    assert job["spec"]["backoffLimit"] == 0
    assert [j["metadata"]["name"] for j in listed["items"]].count(job_name(run_id)) == 1
    manifest = {k: job[k] for k in ("apiVersion", "kind")} | {
        "metadata": {k: job["metadata"][k] for k in ("name", "namespace", "labels", "annotations")},
        "spec": {k: v for k, v in job["spec"].items() if k not in ("selector",)},
    }
    manifest["spec"]["template"]["metadata"]["labels"] = {
        k: v for k, v in manifest["spec"]["template"]["metadata"]["labels"].items() if "controller" not in k
    }
    validated(json.dumps(manifest), "the run's Job")


def test_job_names_are_dns_labels_unique_per_run():
    long = "a-very-long-playbook-id-that-goes-on-and-on-and-on-20260101-000000-beef"
    names = {job_name(long), job_name(long + "x"), job_name("Release_2.0-20260101-000000-beef")}
    assert len(names) == 3
    for name in names:
        assert len(name) <= 63
        assert name == name.lower()
        assert name[0].isalnum()
        assert name[-1].isalnum()
