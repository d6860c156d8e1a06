"""Building the pod (a plain JSON dict) from a rendered ``PodTask``: the two forms, the merge rules, the
shared file volume and the transfer containers. No I/O here, so every rule is table-testable."""

from __future__ import annotations

import base64
import copy
import json
import os

from fleet.pods.identity import IDENTITY_ANNOTATION, PodIdentity, pod_name
from fleet.pods.merge import merge
from fleet.pods.models import Credentials, JsonMap, PodTask

MAIN = "main"
INIT_CONTAINER = "fleet-init"
SIDECAR_CONTAINER = "fleet-sidecar"
TRANSFER_CONTAINERS = frozenset({INIT_CONTAINER, SIDECAR_CONTAINER})
VOLUME = "fleet-files"
MOUNT_PATH = "/fleet"
WORKING_DIR = "/fleet/working-dir"
OUTPUT_DIR = "/fleet/working-dir/output"
READY_MARKER = "/fleet/ready"
ENDED_MARKER = "/fleet/ended"
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh"})


def template_variables(task: PodTask) -> dict[str, str]:
    """The pod's own template variables: present only when the step moves files."""
    if not task.moves_files:
        return {}
    return {"workingDir": WORKING_DIR, "outputDir": OUTPUT_DIR}


def build_pod(
    task: PodTask,
    *,
    name: str,
    identity: PodIdentity,
    pull_secret: str | None = None,
) -> JsonMap:
    """The complete pod for a rendered ``task``."""
    metadata = copy.deepcopy(task.metadata or {})
    metadata["name"] = name
    metadata.pop("generateName", None)
    metadata["namespace"] = task.namespace
    metadata["labels"] = {**task.labels, **(metadata.get("labels") or {}), **identity.labels()}
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        IDENTITY_ANNOTATION: json.dumps(
            {"run": identity.run_id, "cluster": identity.cluster, "step": identity.step_id, "attempt": identity.attempt}
        ),
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": build_pod_spec(task, pull_secret)}


def build_pod_spec(task: PodTask, pull_secret: str | None = None) -> JsonMap:
    """The pod spec: the step's spec or shorthand, ``podSpec`` beneath it, then the per-container rules."""
    own = copy.deepcopy(task.spec) if task.spec is not None else _shorthand_spec(task)
    own.setdefault("restartPolicy", "Never")

    overlay = copy.deepcopy(task.pod_spec or {})
    extra_containers: list[JsonMap] = overlay.pop("containers", None) or []
    spec: JsonMap = merge(overlay, own)

    containers: list[JsonMap] = spec["containers"]
    main_index = next((i for i, c in enumerate(containers) if c.get("name") == MAIN), 0)
    main = merge(task.container_spec, containers[main_index])
    for extra in extra_containers:
        if extra.get("name") == main["name"] or (extra.get("name") == MAIN and main_index == 0):
            main = merge(extra, main)
        elif any(c.get("name") == extra.get("name") for c in containers):
            containers[:] = [merge(extra, c) if c.get("name") == extra.get("name") else c for c in containers]
        else:
            containers.append(copy.deepcopy(extra))
    main = _main_properties(task, main)
    containers[main_index] = main

    spec["containers"] = [_user_container(task, c) for c in containers]
    if spec.get("initContainers"):
        spec["initContainers"] = [_user_container(task, c) for c in spec["initContainers"]]

    if task.node_selector:
        spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **task.node_selector}
    if task.service_account_name:
        spec["serviceAccountName"] = task.service_account_name
    if pull_secret:
        spec["imagePullSecrets"] = merge(spec.get("imagePullSecrets"), [{"name": pull_secret}])

    if task.moves_files:
        spec["volumes"] = merge(spec.get("volumes"), [{"name": VOLUME, "emptyDir": {"medium": "Memory"}}])
        spec["initContainers"] = [_transfer_container(task, INIT_CONTAINER)] + (spec.get("initContainers") or [])
        if task.needs_download:
            spec["containers"].append(_transfer_container(task, SIDECAR_CONTAINER))
    return spec


def name_for(task: PodTask, step_id: str) -> str:
    """The pod's name: ``metadata.name`` as given, else ``metadata.generateName`` (or the step id) + a random
    suffix. fleet picks the suffix itself so that it knows the name before the pod exists (resume, cancel)."""
    metadata = task.metadata or {}
    if metadata.get("name"):
        return str(metadata["name"])
    return pod_name(str(metadata.get("generateName") or step_id))


def main_container_name(pod: JsonMap) -> str:
    """The main container of a built pod: the one named ``main``, else the first one."""
    containers = pod["spec"]["containers"]
    names = [c["name"] for c in containers]
    return MAIN if MAIN in names else str(names[0])


def pull_secret_manifest(name: str, namespace: str, credentials: Credentials, labels: dict[str, str]) -> JsonMap:
    """The temporary ``kubernetes.io/dockerconfigjson`` Secret for image pull credentials."""
    password = credentials.password.get_secret_value()
    auth = base64.b64encode(f"{credentials.username}:{password}".encode()).decode()
    config = {
        "auths": {
            credentials.registry: {"username": credentials.username, "password": password, "auth": auth},
        }
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


def _shorthand_spec(task: PodTask) -> JsonMap:
    interpreter = list(task.interpreter)
    if task.commands is not None:
        body = "\n".join(task.commands)
        if os.path.basename(interpreter[0]) in SHELLS:
            body = f"set -e\n{body}"
    else:
        body = task.script or ""
    main: JsonMap = {"name": MAIN, "image": task.image, "command": [*interpreter, body]}
    if task.env:
        main["env"] = [{"name": k, "value": v} for k, v in task.env.items()]
    if task.moves_files:
        main["workingDir"] = WORKING_DIR
    return {"restartPolicy": "Never", "containers": [main]}


def _main_properties(task: PodTask, main: JsonMap) -> JsonMap:
    """The step's first-class properties win over whatever the container says."""
    main = copy.deepcopy(main)
    if task.pull_policy:
        main["imagePullPolicy"] = task.pull_policy
    if task.resources is not None:
        main["resources"] = merge(main.get("resources"), task.resources.as_requirements())
    return main


def _injected(task: PodTask) -> JsonMap:
    """What fleet injects into every container when files move; it wins over user values."""
    if not task.moves_files:
        return {}
    return {
        "env": [{"name": "WORKING_DIR", "value": WORKING_DIR}, {"name": "OUTPUT_DIR", "value": OUTPUT_DIR}],
        "volumeMounts": [{"name": VOLUME, "mountPath": MOUNT_PATH}],
    }


def _user_container(task: PodTask, container: JsonMap) -> JsonMap:
    merged: JsonMap = merge(merge(task.container_default_spec, container), _injected(task))
    return merged


def _transfer_container(task: PodTask, name: str) -> JsonMap:
    sidecar = task.file_sidecar
    base: JsonMap = {"name": name, "image": sidecar.image}
    if sidecar.resources:
        base["resources"] = copy.deepcopy(sidecar.resources)
    defaults = sidecar.default_spec if sidecar.default_spec is not None else task.container_default_spec
    container: JsonMap = merge(defaults, merge(task.file_sidecar_spec, base))
    container = merge(container, {"volumeMounts": [{"name": VOLUME, "mountPath": MOUNT_PATH}]})
    container["name"] = name
    container["command"] = ["sh", "-c", _transfer_script(task, name)]
    container.pop("args", None)
    return container


def _transfer_script(task: PodTask, name: str) -> str:
    if name == SIDECAR_CONTAINER:
        return f"while [ ! -e {ENDED_MARKER} ]; do sleep 0.1; done"
    prepare = f"mkdir -p {OUTPUT_DIR} && chmod 0777 {WORKING_DIR} {OUTPUT_DIR}"
    if not task.input_files:
        return prepare
    return f"{prepare} && while [ ! -e {READY_MARKER} ]; do sleep 0.1; done"
