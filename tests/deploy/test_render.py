"""``fleet deploy render``: a playbook's triggers as CronJobs and ``--shards N`` as an Indexed Job, from an
overlay's run pod. Rendered objects validate against the Kubernetes schema and apply to the cluster under
test, where the CronJob controller starts a Job when a run is due and the Job controller starts one pod
per shard."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import kubernetes
import pytest
import yaml

from tests.deploy.conftest import EXAMPLE, KUSTOMIZE, ROOT, fleet_cli, render, validated

PROD = KUSTOMIZE / "overlays" / "prod"
NAMESPACE = "fleet"
DEADLINE = 30.0


def test_a_trigger_becomes_a_cronjob_of_the_overlays_run_pod():
    (cronjob,) = validated(render("-k", str(PROD), str(EXAMPLE)), "render")
    spec = cronjob["spec"]
    assert cronjob["metadata"] == {
        "name": "fleet-nightly-check",
        "namespace": NAMESPACE,
        "labels": {
            "app.kubernetes.io/name": "fleet",
            "fleet.dev/playbook": "fleet-nightly-check",
            "app.kubernetes.io/managed-by": "fleet-deploy-render",
        },
    }
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("0 3 * * 1", "Europe/Paris", "Forbid")
    assert spec["startingDeadlineSeconds"] == 600
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 5)
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "fleet"
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/example/fleet:0.1.0"
    assert container["args"] == ["run", "/playbooks/nightly-check.yaml", "-i", "/inventory/inventory.yaml"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["playbooks"]["configMap"] == {"name": "fleet-playbooks"}
    assert volumes["journal"]["persistentVolumeClaim"] == {"claimName": "fleet-journal"}
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/playbooks", "/inventory", "/journal"}


def test_shards_become_an_indexed_job_writing_one_report_per_shard():
    (job,) = validated(render("-k", str(PROD), "--shards", "3", str(EXAMPLE)), "render")
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    assert spec["backoffLimitPerIndex"] == 0
    assert "backoffLimit" not in spec, "a failed shard does not stop the others"
    (container,) = spec["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "-c"]
    assert container["args"] == [
        "mkdir -p /journal/reports && exec fleet run /playbooks/nightly-check.yaml -i /inventory/inventory.yaml "
        '--shard "$JOB_COMPLETION_INDEX/3" -o json > /journal/reports/shard-"$JOB_COMPLETION_INDEX".json'
    ]


@pytest.mark.parametrize(
    ("example", "args"), [("nightly-check.cronjob.yaml", ()), ("nightly-check.shards.yaml", ("--shards", "3"))]
)
def test_the_examples_in_deploy_are_what_render_prints(example, args):
    assert (ROOT / "deploy" / "examples" / example).read_text() == render("-k", str(PROD), *args, str(EXAMPLE))


def test_output_dir_gets_one_file_per_object(tmp_path):
    playbook = tmp_path / "nightly-check.yaml"
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["triggers"].append({"cron": "@hourly"})
    playbook.write_text(yaml.safe_dump(doc))
    written = render("-k", str(PROD), "--output-dir", str(tmp_path / "out"), str(playbook))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["fleet-nightly-check-0.yaml", "fleet-nightly-check-1.yaml"]
    assert written.split() == [str(tmp_path / "out" / n) for n in names]
    hourly = yaml.safe_load((tmp_path / "out" / names[1]).read_text())
    assert (hourly["spec"]["schedule"], hourly["spec"]["timeZone"]) == ("@hourly", "Etc/UTC")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["playbooks/release.yaml"],
            "playbooks/release.yaml: the playbook has no triggers to schedule: add `triggers:",
        ),
        (
            ["--shards", "2", "playbooks/release.yaml"],
            "release.yaml is not in the ConfigMap the overlay deploy/kustomize/base mounts at /playbooks "
            "(it has: nightly-check.yaml): add it",
        ),
        (["-k", "deploy", str(EXAMPLE)], "-k deploy: no kustomization.yaml in that directory"),
        (["--shards", "0", str(EXAMPLE)], "--shards"),
    ],
)
def test_bad_input_is_an_error_naming_what_to_change(args, message):
    result = fleet_cli("deploy", "render", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# On the cluster: the overlay plus a playbook due every minute, in a kustomization of the test's own.


@pytest.fixture
def overlay(tmp_path, kubectl):
    directory = tmp_path / "overlay"
    directory.mkdir()
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc.update(id="every-minute", triggers=[{"cron": "* * * * *"}])
    (directory / "every-minute.yaml").write_text(yaml.safe_dump(doc))
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(KUSTOMIZE / "overlays" / "staging", directory)],
                "configMapGenerator": [
                    {"name": "fleet-playbooks", "behavior": "merge", "files": ["every-minute.yaml"]}
                ],
            }
        )
    )
    kubectl("apply", "-k", str(directory))
    yield directory
    kubectl("delete", "-k", str(directory), "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def batch(api_client):
    return kubernetes.client.BatchV1Api(api_client)


def _jobs(batch, selector: str) -> list:
    return batch.list_namespaced_job(NAMESPACE, label_selector=selector).items


def _eventually(condition, what: str):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {DEADLINE:.0f}s: {what}")


@pytest.mark.sim_only
def test_the_cronjob_controller_starts_a_job_when_the_run_is_due(overlay, kubectl, batch, tmp_path):
    rendered = tmp_path / "cronjob.yaml"
    rendered.write_text(render("-k", str(overlay), str(overlay / "every-minute.yaml")))
    (cronjob,) = validated(rendered.read_text(), str(rendered))
    kubectl("apply", "-f", str(rendered))
    # As if the last run had been two minutes ago: the run of the current minute is due now, and
    # within startingDeadlineSeconds (rather than waiting up to a minute for the next one).
    last = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    batch.patch_namespaced_cron_job_status("fleet-every-minute", NAMESPACE, {"status": {"lastScheduleTime": last}})
    (job,) = _eventually(lambda: _jobs(batch, "fleet.dev/playbook=fleet-every-minute"), "a Job of the CronJob")
    assert job.metadata.owner_references[0].kind == "CronJob"
    scheduled = datetime.fromisoformat(job.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"])
    assert scheduled.second == 0
    assert datetime.now(UTC) - scheduled < timedelta(minutes=1, seconds=DEADLINE)
    (container,) = job.spec.template.spec.containers
    assert container.args == ["run", "/playbooks/every-minute.yaml", "-i", "/inventory/inventory.yaml"]
    assert job.spec.template.spec.service_account_name == "fleet"
    assert job.spec.backoff_limit == cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0


def test_the_indexed_job_applies_and_starts_one_pod_per_shard(overlay, kubectl, api_client, tmp_path):
    rendered = tmp_path / "shards.yaml"
    rendered.write_text(render("-k", str(overlay), "--shards", "3", str(overlay / "every-minute.yaml")))
    validated(rendered.read_text(), str(rendered))
    kubectl("apply", "-f", str(rendered))
    core = kubernetes.client.CoreV1Api(api_client)
    name = "fleet-every-minute-shards"

    def created_indexes() -> set[str]:
        # The Job controller's events (pods of finished shards may already be gone): "Created pod: NAME-I-xxxxx".
        events = core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={name}").items
        pods = [e.message.removeprefix("Created pod: ") for e in events if e.reason == "SuccessfulCreate"]
        return {p.removeprefix(f"{name}-").split("-")[0] for p in pods}

    try:
        assert _eventually(lambda: created_indexes() == {"0", "1", "2"}, "a pod for each of shards 0, 1 and 2")
        job = kubernetes.client.BatchV1Api(api_client).read_namespaced_job(name, NAMESPACE)
        assert (job.spec.completion_mode, job.spec.completions, job.spec.parallelism) == ("Indexed", 3, 3)
    finally:
        kubectl("delete", "-f", str(rendered), "--wait=false")
