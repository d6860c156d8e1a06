"""ControllerRevisions: the pod-template history of StatefulSets and DaemonSets (``kubectl rollout history``)."""

from __future__ import annotations

import copy

from fleet.sim.cluster import ClusterState
from fleet.sim.controllers.manager import Context
from fleet.sim.controllers.naming import template_hash
from fleet.sim.controllers.ownership import delete_object, owner_reference
from fleet.sim.model import JsonObject

HASH_LABEL = "controller.kubernetes.io/hash"
REVISION_LABEL = "controller-revision-hash"


def revision_data(template: JsonObject) -> JsonObject:
    """What a revision stores: the template as a replacing patch, as the real controllers do."""
    return {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}}


def template_of(revision: JsonObject) -> JsonObject:
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


class Revisions:
    """The revisions one owner has, and the one for its current template."""

    def __init__(self, ctx: Context, owner: JsonObject) -> None:
        self.state: ClusterState = ctx.state
        self.rt = ctx.state.rt("apps", "ControllerRevision")
        self.owner = owner
        self.all = ctx.owners.owned(ctx.state, owner["metadata"]["uid"], self.rt)

    def by_name(self, name: str | None) -> JsonObject | None:
        return next((r for r in self.all if r["metadata"]["name"] == name), None)

    def for_template(self, template: JsonObject) -> JsonObject:
        """The revision holding ``template``, created (or moved to the newest number) as needed."""
        data = revision_data(template)
        newest = max((int(r.get("revision", 0)) for r in self.all), default=0)
        match = next((r for r in self.all if r.get("data") == data), None)
        if match is not None:
            if int(match.get("revision", 0)) < newest:
                updated = copy.deepcopy(match)
                updated["revision"] = newest + 1
                match = self.state.store.update(self.rt, updated, check_version=False)
                self.all = [match if r["metadata"]["name"] == match["metadata"]["name"] else r for r in self.all]
            return match
        meta = self.owner["metadata"]
        hash_ = template_hash(data)
        selector_labels = ((self.owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        revision: JsonObject = {
            "metadata": {
                "name": f"{meta['name']}-{hash_}",
                "namespace": meta.get("namespace", ""),
                "labels": {**selector_labels, HASH_LABEL: hash_},
                "ownerReferences": [owner_reference(self.owner)],
            },
            "data": data,
            "revision": newest + 1,
        }
        created = self.state.store.create(self.rt, revision)
        self.all.append(created)
        return created

    def prune(self, keep: set[str], limit: int) -> None:
        """Delete the oldest revisions beyond ``limit`` that nothing uses any more."""
        unused = sorted(
            (r for r in self.all if r["metadata"]["name"] not in keep), key=lambda r: int(r.get("revision", 0))
        )
        for revision in unused[: max(len(unused) - limit, 0)]:
            delete_object(self.state, self.rt, revision)
            self.all.remove(revision)
