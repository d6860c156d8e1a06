"""Rolling restart, exactly as ``kubectl rollout restart``: stamp the pod template's
``kubectl.kubernetes.io/restartedAt`` annotation with now (RFC 3339 with zone) and let the controller
roll the pods; then wait until the rollout is complete (kstatus Current: new generation observed, all
replicas updated and ready, no old ones left)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet.errors import InputError, Location
from fleet.kube.client import KubeClient
from fleet.kube.objects import BeforeWrite, JsonObject, ObjectRef
from fleet.kube.types import STRATEGIC_MERGE_PATCH
from fleet.kube.wait import wait_ready

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTARTABLE = {"Deployment": "deploy", "StatefulSet": "sts", "DaemonSet": "ds"}  # with kubectl's short names
_RESTARTABLE_NAMES = {
    name: kind for kind, short in RESTARTABLE.items() for name in (kind.lower(), f"{kind.lower()}s", short)
}


def check_restartable(kind: str) -> str:
    """The kind ``kind`` names (kind, plural or short name) if ``restart`` supports it, else an
    ``InputError``: found before any cluster is asked (``fleet restart configmap x``)."""
    found = _RESTARTABLE_NAMES.get(kind.lower())
    if found is None:
        raise InputError(
            f"cannot restart {kind!r}: expected deployment (deploy), statefulset (sts) or daemonset (ds)",
            location=Location(field="kind"),
        )
    return found


def restarted_at(now: datetime | None = None) -> str:
    """Now as Go's ``time.RFC3339`` prints it: seconds, and ``Z`` for UTC or a ``+hh:mm`` offset."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    text = moment.isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def restart_patch(now: datetime | None = None) -> JsonObject:
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at(now)}}}}}


async def restart(
    client: KubeClient,
    kind: str,
    name: str,
    *,
    namespace: str | None = None,
    field_manager: str = "fleet-rollout",
    timeout: timedelta | float | None = timedelta(minutes=10),
    before_write: BeforeWrite | None = None,
) -> JsonObject:
    """Restart a Deployment, StatefulSet or DaemonSet and wait (at most ``timeout``) for the rollout."""
    info = await client.discovery.lookup(check_restartable(kind), api_group="apps")
    ns = namespace or "default"
    if before_write is not None:
        live = await client.get_or_none(info.path(ns, name))
        await before_write(ObjectRef(info.api_version, info.kind, name, ns), live)
    patched = await client.request(
        "PATCH",
        info.path(ns, name),
        query={"fieldManager": field_manager},
        body=restart_patch(),
        content_type=STRATEGIC_MERGE_PATCH,
        operation=f"restart {info.kind} {ns}/{name}",
    )
    ready = await wait_ready(client, info, ns, name, timeout=timeout, known=patched)
    assert ready is not None
    return ready
