"""A kustomize overlay of ``deploy/kustomize`` as ``fleet deploy render`` needs it: rendered with
``kubectl kustomize``, its ``fleet-run`` PodTemplate (image, service account, mounts) and the files of the
ConfigMaps mounted at ``/playbooks`` and ``/inventory``."""

from __future__ import annotations

import copy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleet.errors import InputError, Location

POD_TEMPLATE = "fleet-run"
PLAYBOOKS_MOUNT = "/playbooks"
INVENTORY_MOUNT = "/inventory"
_KUSTOMIZE_TIMEOUT = 60.0

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Overlay:
    """What a rendered overlay gives each run: its namespace, the pod template, the files mounted."""

    source: Path
    namespace: str
    pod_template: JsonObject  # the PodTemplate's ``template`` (metadata and spec of a pod)
    playbooks: frozenset[str]  # the keys of the ConfigMap mounted at /playbooks
    inventory: str  # the path of the inventory file in the pod

    def run_pod(self, args: list[str], *, command: list[str] | None = None) -> JsonObject:
        """A copy of the pod template whose fleet container runs ``args`` (after ``command`` if given)."""
        template = copy.deepcopy(self.pod_template)
        container = template["spec"]["containers"][0]
        container["args"] = args
        if command is not None:
            container["command"] = command
        return template

    def playbook_path(self, file: Path) -> str:
        """Where ``file`` is in the pod: its name under /playbooks, if the overlay's ConfigMap has it."""
        if file.name not in self.playbooks:
            known = ", ".join(sorted(self.playbooks)) or "none"
            raise InputError(
                f"{file.name} is not in the ConfigMap the overlay {self.source} mounts at {PLAYBOOKS_MOUNT} "
                f"(it has: {known}): add it to that ConfigMap's configMapGenerator files",
                location=Location(file=str(file)),
            )
        return f"{PLAYBOOKS_MOUNT}/{file.name}"


def render_kustomization(directory: Path) -> list[JsonObject]:
    """The objects ``kubectl kustomize DIRECTORY`` renders."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise InputError("-k needs kubectl on PATH (it renders the overlay with `kubectl kustomize`)")
    if not (directory / "kustomization.yaml").is_file():
        raise InputError(f"-k {directory}: no kustomization.yaml in that directory")
    try:
        done = subprocess.run(
            [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=_KUSTOMIZE_TIMEOUT
        )
    except subprocess.TimeoutExpired as e:
        raise InputError(f"-k {directory}: kubectl kustomize took more than {_KUSTOMIZE_TIMEOUT:.0f}s") from e
    if done.returncode != 0:
        raise InputError(f"-k {directory}: kubectl kustomize failed: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if isinstance(doc, dict)]


def _mounted_config_map(objects: list[JsonObject], spec: JsonObject, mount: str, source: Path) -> JsonObject:
    container = spec["containers"][0]
    volume = next((m["name"] for m in container.get("volumeMounts") or [] if m.get("mountPath") == mount), None)
    name = next(
        (v["configMap"]["name"] for v in spec.get("volumes") or [] if v.get("name") == volume and "configMap" in v),
        None,
    )
    found = next((o for o in objects if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == name), None)
    if found is None:
        raise InputError(f"-k {source}: the PodTemplate {POD_TEMPLATE} mounts no ConfigMap of the overlay at {mount}")
    return found


def load_overlay(directory: Path) -> Overlay:
    """The overlay at ``directory``, rendered; an ``InputError`` if it lacks what a run pod needs."""
    objects = render_kustomization(directory)
    template = next(
        (o for o in objects if o.get("kind") == "PodTemplate" and o["metadata"]["name"] == POD_TEMPLATE), None
    )
    if template is None:
        raise InputError(
            f"-k {directory}: the overlay renders no PodTemplate named {POD_TEMPLATE} (see deploy/kustomize/base)"
        )
    spec = template["template"]["spec"]
    playbooks = _mounted_config_map(objects, spec, PLAYBOOKS_MOUNT, directory)
    inventory = _mounted_config_map(objects, spec, INVENTORY_MOUNT, directory)
    inventory_files = sorted(inventory.get("data") or {})
    if len(inventory_files) != 1:
        raise InputError(
            f"-k {directory}: the ConfigMap {inventory['metadata']['name']} holds {len(inventory_files)} files; "
            "an inventory ConfigMap holds one"
        )
    return Overlay(
        source=directory,
        namespace=template["metadata"].get("namespace", "default"),
        pod_template=template["template"],
        playbooks=frozenset(playbooks.get("data") or {}),
        inventory=f"{INVENTORY_MOUNT}/{inventory_files[0]}",
    )
