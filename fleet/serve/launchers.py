"""Where an accepted run goes.

- ``local`` (the default): in the server's own process, in its nursery, through the engine's one entry
  (``fleet.engine.run.run_playbook``, as ``fleet run``), with the run id the 202 answered; at most
  ``--max-runs`` at once (the others wait, ``queued``), so that a burst of events leaves the server the
  time to answer (a run's clients, TLS and journal cost more than accepting it). Stopping the
  server cancels the runs in flight (their clusters are journaled ``interrupted``); ``fleet resume ID``
  continues one.
- ``job``: a Kubernetes Job per run, made from a template (``deploy/kustomize/base/serve/run-job.yaml``)
  whose first container gets ``fleet run PLAYBOOK -i INVENTORY… --run-id ID --set k=v…``, created before
  the 202 is answered; the run lives in the Job's pod and outlives the server. The Job is named after the
  run id, so creating it again (a delivery the server saw but could not launch) finds it there (409)
  and is not a second run. The pod must see the playbooks and inventory at the server's paths (the
  shipped template and Deployment mount the same ConfigMaps at ``/playbooks`` and ``/inventory``) and
  share its journal.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
from pathlib import Path
from typing import Any, Protocol

import trio
import yaml

from fleet.artifacts import LocalArtifactStore
from fleet.engine.journal import Journal
from fleet.engine.run import RunOptions, run_playbook
from fleet.errors import ApiError, FleetError, InputError, Location
from fleet.inventory.connection import resolve_connection
from fleet.inventory.models import Cluster, ConnectionSpec
from fleet.kube import KubeClient
from fleet.playbook.variables import redacted_inputs
from fleet.pods.identity import MANAGED_BY, RUN_LABEL, label_value
from fleet.secrets import SecretResolver
from fleet.serve.config import JobConfig, ServeConfig
from fleet.serve.problems import Problem
from fleet.serve.runs import Prepared, set_arguments

log = logging.getLogger(__name__)

_JOB_NAME_MAX = 63


class Launcher(Protocol):
    name: str

    async def launch(self, run_id: str, prepared: Prepared) -> None:
        """Start ``prepared`` as run ``run_id``; returns once it is handed over (not when it ends)."""


def inventory_record(config: ServeConfig, prepared: Prepared) -> dict[str, Any]:
    """The journal's record of where the clusters came from, as ``fleet run`` writes it (``fleet resume``)."""
    targets = prepared.loaded.playbook.targets
    return {
        "inventory": [str(p.resolve()) for p in config.inventory],
        "select": targets.select,
        "tenant": list(targets.tenants),
        "limit": targets.limit,
        "kubeconfig": None,
        "context": [],
        "shard": None,
    }


class LocalLauncher:
    """Runs in this process, one task each in ``nursery``."""

    name = "local"

    def __init__(self, config: ServeConfig, nursery: trio.Nursery) -> None:
        self._config = config
        self._nursery = nursery
        #: Runs at once (``--max-runs``); the others wait, ``queued``, in the order they were accepted.
        self._slots = trio.CapacityLimiter(config.max_runs)

    async def launch(self, run_id: str, prepared: Prepared) -> None:
        self._nursery.start_soon(self._queued, run_id, prepared, name=f"fleet serve: run {run_id}")

    async def _queued(self, run_id: str, prepared: Prepared) -> None:
        async with self._slots:
            await self._run(run_id, prepared)

    async def _run(self, run_id: str, prepared: Prepared) -> None:
        config = self._config
        options = RunOptions(
            run_id=run_id,
            artifacts=LocalArtifactStore(config.artifacts),
            journal=config.journal,
            inventory=inventory_record(config, prepared),
        )
        loaded = prepared.loaded
        try:
            report = await run_playbook(
                loaded, prepared.targets, prepared.inputs, resolver=prepared.resolver, options=options
            )
        except FleetError as e:  # e.g. a SECRET default that cannot be resolved: the run fails, the server stays
            log.error("run %s of %s could not run: %s", run_id, loaded.playbook.id, e)
            with trio.CancelScope(shield=True):
                async with Journal.open(config.journal) as journal:
                    inputs = redacted_inputs(loaded.playbook, prepared.inputs)
                    record = inventory_record(config, prepared)
                    await journal.run_started(run_id, loaded.file.resolve(), loaded.playbook.id, inputs, record)
                    await journal.run_ended(run_id, "failed", str(e))
            return
        log.info("run %s of %s ended %s", run_id, loaded.playbook.id, report.status)


def job_name(run_id: str) -> str:
    """A DNS-1123 name for the Job of ``run_id``: readable, unique (a hash of the id ends it), ≤ 63."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    head = f"fleet-{slug}"[: _JOB_NAME_MAX - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"


def load_job_template(path: Path) -> dict[str, Any]:
    """The Job template at ``path``: one ``batch/v1`` Job with at least one container (an ``InputError``
    naming the file otherwise)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise InputError(f"cannot read the Job template: {e.strerror}", location=Location(file=str(path))) from e
    except yaml.YAMLError as e:
        raise InputError(f"the Job template is not YAML: {e}", location=Location(file=str(path))) from e
    if not isinstance(doc, dict) or doc.get("apiVersion") != "batch/v1" or doc.get("kind") != "Job":
        raise InputError("the Job template must be one batch/v1 Job", location=Location(file=str(path)))
    containers = (((doc.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        raise InputError(
            "the Job template has no container to run fleet in",
            location=Location(file=str(path), field="spec.template.spec.containers"),
        )
    return doc


def job_manifest(
    template: dict[str, Any], run_id: str, prepared: Prepared, *, namespace: str, inventory: tuple[Path, ...]
) -> dict[str, Any]:
    """The Job that runs ``run_id``: the template, named and labelled after the run, its first container
    running ``fleet run`` with the run's playbook, inventory, id and inputs."""
    job = copy.deepcopy(template)
    labels = {MANAGED_BY: "fleet-serve", RUN_LABEL: label_value(run_id)}
    metadata = job.setdefault("metadata", {})
    metadata.pop("generateName", None)
    metadata.update(name=job_name(run_id), namespace=namespace)
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    metadata["annotations"] = {**(metadata.get("annotations") or {}), "fleet.dev/run-id": run_id}
    pod = job["spec"]["template"]
    pod.setdefault("metadata", {})
    pod["metadata"]["labels"] = {**(pod["metadata"].get("labels") or {}), **labels}
    container = pod["spec"]["containers"][0]
    args = ["run", str(prepared.loaded.file)]
    for path in inventory:
        args += ["-i", str(path)]
    container["args"] = [*args, "--run-id", run_id, *set_arguments(prepared.given)]
    return job


async def open_job_client(job: JobConfig) -> KubeClient:
    """The client of the cluster the Jobs go to: ``job.kubeconfig`` (and context), else in-cluster."""
    if job.kubeconfig is not None:
        return KubeClient.from_kubeconfig(job.kubeconfig, context=job.context, name="job-cluster")
    cluster = Cluster(
        name="job-cluster",
        connection=ConnectionSpec.model_validate({"inCluster": True}),
        origin="fleet serve --launcher job (in-cluster)",
    )
    conn = await resolve_connection(cluster, SecretResolver())
    return KubeClient.from_kubeconfig(
        conn.kubeconfig, context=conn.cluster, name=cluster.name, token_provider=conn.token_provider
    )


class JobLauncher:
    """Creates one Job per run with ``client``."""

    name = "job"

    def __init__(self, config: ServeConfig, client: KubeClient, template: dict[str, Any]) -> None:
        assert config.job is not None
        self._config = config
        self._namespace = config.job.namespace
        self._client = client
        self._template = template

    def close(self) -> None:
        self._client.close()

    async def launch(self, run_id: str, prepared: Prepared) -> None:
        body = job_manifest(
            self._template, run_id, prepared, namespace=self._namespace, inventory=self._config.inventory
        )
        try:
            await self._client.request(
                "POST",
                f"/apis/batch/v1/namespaces/{self._namespace}/jobs",
                body=body,
                operation=f"create Job {body['metadata']['name']}",
            )
        except ApiError as e:
            if e.status.code == 409:  # created by an earlier attempt at this delivery: the same run
                return
            raise Problem(503, f"the run's Job could not be created: {e}") from e
        except FleetError as e:
            raise Problem(503, f"the run's Job could not be created: {e}") from e
        log.info("run %s: Job %s/%s created", run_id, self._namespace, body["metadata"]["name"])
