"""The Deployment controller: one ReplicaSet per pod template, rolled out by the strategy, with the status
and conditions ``kubectl rollout status`` and kstatus read."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from fleet.sim.controllers.conditions import get_condition, remove_condition, set_condition
from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.naming import template_hash
from fleet.sim.controllers.ownership import controller_ref, delete_object, is_finished_pod, owner_reference
from fleet.sim.controllers.pods import parse_time, wall_now
from fleet.sim.controllers.rollout import Sizes, new_rs_replicas, old_rs_replicas, resolve_fenceposts
from fleet.sim.controllers.selectors import matches
from fleet.sim.model import JsonObject, WatchEvent
from fleet.sim.store import now_rfc3339

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = frozenset(
    {REVISION, REVISION_HISTORY, DESIRED, MAX_REPLICAS, "kubectl.kubernetes.io/last-applied-configuration"}
)
DEFAULT_PROGRESS_DEADLINE = 600
DEFAULT_HISTORY_LIMIT = 10


def comparable(value: Any) -> Any:
    """A template as Go types see it: null, ``{}`` and ``[]`` values are absent.

    Typed clients (``kubectl rollout undo`` among them) send ``creationTimestamp: null`` and
    ``resources: {}``; the API server decodes those to the zero value, so they must neither make a
    template differ nor change its hash.
    """
    if isinstance(value, dict):
        cleaned = {k: comparable(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def _without_hash(template: JsonObject) -> JsonObject:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels and HASH_LABEL in labels:
        del labels[HASH_LABEL]
    return comparable(t)  # type: ignore[no-any-return]


def _revision(rs: JsonObject) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _spec_replicas(obj: JsonObject) -> int:
    return int(obj.get("spec", {}).get("replicas", 1))


def _status(obj: JsonObject, field: str) -> int:
    return int(obj.get("status", {}).get(field, 0) or 0)


class DeploymentController(Controller):
    name = "deployment"
    watches = frozenset({"deployments.apps", "replicasets.apps", "pods"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.d_rt = self.state.rt("apps", "Deployment")
        self.rs_rt = self.state.rt("apps", "ReplicaSet")
        self.pod_rt = self.state.rt("", "Pod")
        self._collisions: dict[str, int] = {}

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        meta = event.object["metadata"]
        namespace = meta.get("namespace", "")
        if event.resource.key == "deployments.apps":
            if event.type != "DELETED":
                yield (namespace, meta["name"])
            return
        ref = controller_ref(event.object)
        if ref is None:
            return
        if event.resource.key == "replicasets.apps":
            if ref.get("kind") == "Deployment":
                yield (namespace, ref.get("name", ""))
        elif event.type == "DELETED" and ref.get("kind") == "ReplicaSet":
            # The Recreate strategy waits for the old pods to be gone.
            rs = self.state.store.get(self.rs_rt, namespace, ref.get("name", ""))
            owner = controller_ref(rs) if rs is not None else None
            if owner is not None and owner.get("kind") == "Deployment":
                yield (namespace, owner.get("name", ""))

    # -- reconcile -------------------------------------------------------------------------------

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        d = self.state.store.get(self.d_rt, namespace, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return None
        spec = d.get("spec", {})
        template = comparable(spec.get("template") or {})
        owned = self.ctx.owners.owned(self.state, d["metadata"]["uid"], self.rs_rt)
        owned = [rs for rs in owned if not rs["metadata"].get("deletionTimestamp")] + self._adopt(d)
        owned.sort(key=lambda rs: (rs["metadata"].get("creationTimestamp", ""), rs["metadata"]["name"]))
        new_rs = next((rs for rs in owned if _without_hash(rs.get("spec", {}).get("template") or {}) == template), None)
        old = [rs for rs in owned if rs is not new_rs]
        if new_rs is not None and not spec.get("paused"):
            new_rs = self._bump_revision(new_rs, old)
        created = False
        if not spec.get("paused"):
            if (spec.get("strategy") or {}).get("type") == "Recreate":
                new_rs, old, created = self._recreate(d, new_rs, old)
            else:
                new_rs, old, created = self._rolling(d, new_rs, old)
            old = self._prune_history(d, new_rs, old)
        elif new_rs is not None and not any(_spec_replicas(rs) for rs in old):
            new_rs = self._scale(d, new_rs, _spec_replicas(d))
        return self._sync_status(d, new_rs, old, created)

    def _bump_revision(self, new_rs: JsonObject, old: list[JsonObject]) -> JsonObject:
        """A ReplicaSet that becomes current again (``kubectl rollout undo``) takes the next revision number;
        the numbers it had are kept in ``deployment.kubernetes.io/revision-history``."""
        latest = max((_revision(rs) for rs in old), default=0)
        current = _revision(new_rs)
        if current > latest:
            return new_rs
        updated = copy.deepcopy(new_rs)
        annotations = updated["metadata"].setdefault("annotations", {})
        if current:
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            annotations[REVISION_HISTORY] = ",".join([*history, str(current)])
        annotations[REVISION] = str(latest + 1)
        return self.state.store.update(self.rs_rt, updated, check_version=False)

    def _adopt(self, d: JsonObject) -> list[JsonObject]:
        """ReplicaSets matching the selector that no controller owns (left by an orphaning delete) become ours."""
        selector = (d.get("spec") or {}).get("selector")
        adopted = []
        for rs in self.state.store.list_objects(self.rs_rt, d["metadata"].get("namespace", "")):
            meta = rs["metadata"]
            if (
                controller_ref(rs) is None
                and not meta.get("deletionTimestamp")
                and matches(selector, meta.get("labels"))
            ):
                updated = copy.deepcopy(rs)
                updated["metadata"].setdefault("ownerReferences", []).append(owner_reference(d))
                adopted.append(self.state.store.update(self.rs_rt, updated, check_version=False))
                self.ctx.owners.note(self.rs_rt, adopted[-1])
        return adopted

    def _rolling(
        self, d: JsonObject, new_rs: JsonObject | None, old: list[JsonObject]
    ) -> tuple[JsonObject | None, list[JsonObject], bool]:
        replicas = _spec_replicas(d)
        rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        surge, unavailable = resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"), replicas)
        all_spec = sum(_spec_replicas(rs) for rs in old) + (_spec_replicas(new_rs) if new_rs is not None else 0)
        created = False
        new_spec = _spec_replicas(new_rs) if new_rs is not None else 0
        target = new_rs_replicas(replicas, surge, new_spec, all_spec)
        if new_rs is None:
            new_rs = self._create_rs(d, old, target)
            created = True
        elif target != new_spec:
            new_rs = self._scale(d, new_rs, target)
        sizes = [Sizes(_spec_replicas(rs), _status(rs, "availableReplicas")) for rs in old]
        new_size = Sizes(_spec_replicas(new_rs), _status(new_rs, "availableReplicas"))
        targets = old_rs_replicas(sizes, new_size, replicas, unavailable)
        old = [self._scale(d, rs, n) if n != _spec_replicas(rs) else rs for rs, n in zip(old, targets, strict=True)]
        return new_rs, old, created

    def _recreate(
        self, d: JsonObject, new_rs: JsonObject | None, old: list[JsonObject]
    ) -> tuple[JsonObject | None, list[JsonObject], bool]:
        old = [self._scale(d, rs, 0) if _spec_replicas(rs) else rs for rs in old]
        for rs in old:
            pods = self.ctx.owners.owned(self.state, rs["metadata"]["uid"], self.pod_rt)
            if any(not is_finished_pod(p) for p in pods):
                return new_rs, old, False
        if new_rs is None:
            return self._create_rs(d, old, _spec_replicas(d)), old, True
        if _spec_replicas(new_rs) != _spec_replicas(d):
            new_rs = self._scale(d, new_rs, _spec_replicas(d))
        return new_rs, old, False

    def _create_rs(self, d: JsonObject, old: list[JsonObject], replicas: int) -> JsonObject:
        meta, spec = d["metadata"], d["spec"]
        collisions = int(d.get("status", {}).get("collisionCount", 0))
        hash_ = template_hash(comparable(spec.get("template") or {}), collisions)
        # A name taken by a ReplicaSet that is not ours: count the collision and hash again.
        while self.state.store.get(self.rs_rt, meta.get("namespace", ""), f"{meta['name']}-{hash_}") is not None:
            collisions += 1
            hash_ = template_hash(comparable(spec.get("template") or {}), collisions)
        if collisions:
            self._collisions[meta["uid"]] = collisions
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hash_
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = hash_
        revision = max((_revision(rs) for rs in old), default=0) + 1
        rs: JsonObject = {
            "metadata": {
                "name": f"{meta['name']}-{hash_}",
                "namespace": meta.get("namespace", ""),
                "labels": dict(template["metadata"]["labels"]),
                "annotations": self._rs_annotations(d, revision, replicas),
                "ownerReferences": [owner_reference(d)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": spec.get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
            "status": {"replicas": 0},
        }
        created = self.state.store.create(self.rs_rt, rs)
        self._scaled_event(d, created, 0, replicas)
        return created

    def _rs_annotations(self, d: JsonObject, revision: int, replicas: int) -> dict[str, str]:
        annotations = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED}
        _, surge = self._max_total(d)
        annotations[REVISION] = str(revision)
        annotations[DESIRED] = str(_spec_replicas(d))
        annotations[MAX_REPLICAS] = str(surge)
        return annotations

    def _max_total(self, d: JsonObject) -> tuple[int, int]:
        replicas = _spec_replicas(d)
        strategy = d["spec"].get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return replicas, replicas
        rolling = strategy.get("rollingUpdate") or {}
        surge, _ = resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"), replicas)
        return replicas, replicas + surge

    def _scale(self, d: JsonObject, rs: JsonObject, replicas: int) -> JsonObject:
        before = _spec_replicas(rs)
        updated = copy.deepcopy(rs)
        updated["spec"]["replicas"] = replicas
        annotations = updated["metadata"].setdefault("annotations", {})
        annotations[DESIRED] = str(_spec_replicas(d))
        annotations[MAX_REPLICAS] = str(self._max_total(d)[1])
        result = self.state.store.update(self.rs_rt, updated, check_version=False)
        if before != replicas:
            self._scaled_event(d, rs, before, replicas)
        return result

    def _scaled_event(self, d: JsonObject, rs: JsonObject, before: int, after: int) -> None:
        direction = "up" if after > before else "down"
        self.state.record_event(
            d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {after}",
            "deployment-controller",
        )

    def _prune_history(self, d: JsonObject, new_rs: JsonObject | None, old: list[JsonObject]) -> list[JsonObject]:
        limit = int(d["spec"].get("revisionHistoryLimit", DEFAULT_HISTORY_LIMIT))
        idle = [rs for rs in old if _spec_replicas(rs) == 0 and _status(rs, "replicas") == 0]
        excess = len(idle) - limit
        if excess <= 0:
            return old
        doomed = sorted(idle, key=_revision)[:excess]
        for rs in doomed:
            delete_object(self.state, self.rs_rt, rs)
        return [rs for rs in old if rs not in doomed]

    # -- status ----------------------------------------------------------------------------------

    def _sync_status(
        self, d: JsonObject, new_rs: JsonObject | None, old: list[JsonObject], created: bool
    ) -> float | None:
        replicas = _spec_replicas(d)
        old_status = d.get("status") or {}
        all_rs = [*old, *([new_rs] if new_rs is not None else [])]
        # RS objects may be stale in this pass; the store has the latest.
        all_rs = [
            self.state.store.get(self.rs_rt, rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs for rs in all_rs
        ]
        new_fresh = all_rs[-1] if new_rs is not None else None
        available = sum(_status(rs, "availableReplicas") for rs in all_rs)
        counts = {
            "replicas": sum(_status(rs, "replicas") for rs in all_rs),
            "updatedReplicas": _status(new_fresh, "replicas") if new_fresh is not None else 0,
            "readyReplicas": sum(_status(rs, "readyReplicas") for rs in all_rs),
            "availableReplicas": available,
            "unavailableReplicas": max(replicas - available, 0),
        }
        status: JsonObject = {"observedGeneration": d["metadata"].get("generation", 1)}
        status.update({k: v for k, v in counts.items() if v})
        collisions = self._collisions.pop(d["metadata"]["uid"], 0) or old_status.get("collisionCount", 0)
        if collisions:
            status["collisionCount"] = collisions
        if old_status.get("conditions"):
            status["conditions"] = copy.deepcopy(old_status["conditions"])
        now = now_rfc3339()
        _, max_unavailable = self._fenceposts(d)
        if available >= replicas - max_unavailable:
            set_condition(
                status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
                with_update_time=True,
            )
        else:
            set_condition(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
                with_update_time=True,
            )
        requeue = self._progress(d, status, old_status, new_fresh, created, now)
        metadata_changed = False
        updated = copy.deepcopy(d)
        if new_fresh is not None:
            revision = (new_fresh["metadata"].get("annotations") or {}).get(REVISION)
            annotations = updated["metadata"].setdefault("annotations", {})
            if revision and annotations.get(REVISION) != revision:
                annotations[REVISION] = revision
                metadata_changed = True
        if status != old_status or metadata_changed:
            updated["status"] = status
            self.state.store.update(self.d_rt, updated, check_version=False)
        return requeue

    def _fenceposts(self, d: JsonObject) -> tuple[int, int]:
        replicas = _spec_replicas(d)
        strategy = d["spec"].get("strategy") or {}
        if strategy.get("type") == "Recreate" or replicas == 0:
            return 0, 0
        rolling = strategy.get("rollingUpdate") or {}
        surge, unavailable = resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"), replicas)
        return surge, min(unavailable, replicas)

    def _progress(
        self,
        d: JsonObject,
        status: JsonObject,
        old_status: JsonObject,
        new_rs: JsonObject | None,
        created: bool,
        now: str,
    ) -> float | None:
        """The Progressing condition, as syncRolloutStatus sets it; returns when the deadline is due."""
        spec = d["spec"]
        current = get_condition(old_status, "Progressing")
        if spec.get("paused"):
            if current is None or current.get("reason") != "DeploymentPaused":
                set_condition(
                    status,
                    "Progressing",
                    "Unknown",
                    "DeploymentPaused",
                    "Deployment is paused",
                    now,
                    with_update_time=True,
                )
            return None
        if current is not None and current.get("reason") == "DeploymentPaused":
            set_condition(
                status,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                now,
                with_update_time=True,
            )
        deadline = spec.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE)
        if deadline is None:
            remove_condition(status, "Progressing")
            return None
        rs_name = new_rs["metadata"]["name"] if new_rs is not None else ""
        if created:
            set_condition(
                status,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{rs_name}"',
                now,
                with_update_time=True,
                touch=True,
            )
        elif new_rs is not None and get_condition(status, "Progressing") is None:
            set_condition(
                status,
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                f'Found new replica set "{rs_name}"',
                now,
                with_update_time=True,
            )
        replicas = _spec_replicas(d)
        cond = get_condition(status, "Progressing")
        complete_before = (
            status.get("replicas", 0) == status.get("updatedReplicas", 0)
            and cond is not None
            and cond.get("reason") == "NewReplicaSetAvailable"
        )
        if complete_before or new_rs is None:
            return None
        if (
            status.get("updatedReplicas", 0) == replicas
            and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
        ):
            set_condition(
                status,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                now,
                with_update_time=True,
            )
            return None
        if self._made_progress(old_status, status):
            set_condition(
                status,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                now,
                with_update_time=True,
                touch=True,
            )
            return float(deadline) + 0.5
        cond = get_condition(status, "Progressing")
        if cond is None or cond.get("reason") == "ProgressDeadlineExceeded":
            return None
        since = parse_time(cond.get("lastUpdateTime")) or wall_now()
        left = since + float(deadline) - wall_now()
        if left < 0:
            set_condition(
                status,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                now,
                with_update_time=True,
            )
            return None
        return left + 0.5

    @staticmethod
    def _made_progress(old: JsonObject, new: JsonObject) -> bool:
        def count(status: JsonObject, field: str) -> int:
            return int(status.get(field, 0) or 0)

        old_old = count(old, "replicas") - count(old, "updatedReplicas")
        new_old = count(new, "replicas") - count(new, "updatedReplicas")
        return (
            count(new, "updatedReplicas") > count(old, "updatedReplicas")
            or new_old < old_old
            or count(new, "readyReplicas") > count(old, "readyReplicas")
            or count(new, "availableReplicas") > count(old, "availableReplicas")
        )
