"""The options of the cluster-operation steps (``apply``, ``get``, ``patch``, ``restart``, ``delete``,
``wait``) as users write them (camelCase, as in the seeds: ``fetchType``, ``waitUntilReady``,
``patchType``, ``propagationPolicy``, ``missingOk``…), validated into pydantic models, and how each runs
on one cluster through ``fleet.kube``'s operations. Durations are ISO 8601 (``PT5M``) or seconds.

Manifests and patches come inline (YAML/JSON text or data), from a ``file`` relative to the playbook
(read as is), or from a ``template`` file rendered with the run's variables when the step runs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import trio
import yaml
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from fleet import templating
from fleet.errors import ClusterError, FleetError, InputError, Location
from fleet.kube.apply import apply, unified_diff
from fleet.kube.delete import Propagation, delete
from fleet.kube.get import FetchType, get
from fleet.kube.jsonpath import compile_jsonpath
from fleet.kube.manifests import Manifest, load_manifests
from fleet.kube.objects import BeforeWrite, JsonObject, ObjectRef
from fleet.kube.patch import PatchType, parse_patch, parse_patch_type, patch
from fleet.kube.restart import RESTARTED_AT, restart
from fleet.kube.selection import KindOptions, ListOptions, check_field_selector, check_selector, parse_choice
from fleet.kube.wait import Predicate, condition_check, gone_check, jsonpath_check, ready_check, wait_for
from fleet.playbook.context import Snapshot, StepContext, StepResult

JsonMap = dict[str, Any]


def _compiles(expression: str) -> str:
    compile_jsonpath(expression)
    return expression


JsonPathText = Annotated[str, AfterValidator(_compiles)]


class _Task(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class _Kind(_Task):
    """Which kind, and where: ``apiVersion`` (exact kind) or ``apiGroup``, and ``namespace``."""

    #: The kind (``Deployment``), its plural or its short name (``deploy``).
    kind: str
    #: The exact group/version (``apps/v1``) when several serve the kind.
    api_version: str | None = None
    #: The API group of the kind, any version (``apps``).
    api_group: str | None = None
    #: The namespace of a namespaced kind (default: ``default``).
    namespace: str | None = None


class _Selected(_Kind):
    """A kind plus a name, or the label/field selectors of a list (all namespaces if asked)."""

    #: One object by name (else the objects the selectors match).
    name: str | None = None
    #: A label selector (``app=web,tier in (a,b)``).
    label_selector: str | None = None
    #: A field selector (``status.phase=Running``).
    field_selector: str | None = None
    #: In every namespace.
    all_namespaces: bool = False

    @model_validator(mode="after")
    def _selectors_parse(self) -> _Selected:
        check_selector(self.label_selector)
        check_field_selector(self.field_selector)
        return self


class _Source(_Task):
    """Where a document comes from: inline, a ``file`` relative to the playbook, or a ``template`` file."""

    #: A file relative to the playbook, read as it is.
    file: str | None = None
    #: A file relative to the playbook, rendered with the run's variables when the step runs.
    template: str | None = None

    def _one_source(self, inline: object, inline_name: str) -> None:
        sources = ((inline_name, inline is not None), ("file", bool(self.file)), ("template", bool(self.template)))
        given = [name for name, present in sources if present]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {inline_name}, file or template (got {', '.join(given) or 'none'})")


class ApplyTask(_Source):
    """Server-side apply of one or many manifests (YAML or JSON, multi-document, any kind)."""

    #: The manifests inline: YAML or JSON text (multi-document), an object or a list of objects.
    manifest: str | JsonMap | list[JsonMap] | None = Field(
        default=None, validation_alias=AliasChoices("manifest", "manifests", "resource", "resources")
    )
    #: The namespace of namespaced objects that name none (default: ``default``).
    namespace: str | None = None
    #: The server-side apply field manager.
    field_manager: str = "fleet"
    #: Take over the fields other field managers own (kubectl's ``--force-conflicts``).
    force: bool = False
    #: Send the apply as a server-side dry run (``dryRun=All``): nothing changes.
    dry_run: bool = False
    #: Then wait, at most this long, until every applied object is ready.
    wait_until_ready: timedelta | None = None

    @model_validator(mode="after")
    def _source(self) -> ApplyTask:
        self._one_source(self.manifest, "manifest")
        return self

    async def run(self, ctx: StepContext) -> StepResult:
        document, source = _document(ctx, self, self.manifest)
        touched: list[Snapshot] = []
        applied = await apply(
            ctx.client,
            _manifests(document, source),
            namespace=self.namespace,
            field_manager=self.field_manager,
            force=self.force,
            dry_run=self.dry_run or ctx.dry_run,
            wait_until_ready=self.wait_until_ready,
            before_write=_recorder(ctx, touched),
        )
        counts = {r: sum(1 for o in applied if o.result == r) for r in ("created", "changed", "unchanged")}
        return StepResult({"objects": [o.as_output() for o in applied], **counts}, touched)


class GetTask(_Selected):
    """Read one object (``fetchType`` FETCH_ONE), a list (FETCH) or a big list into the artifact store (STORE)."""

    #: ``FETCH_ONE``: one object (``name``); ``FETCH``: a list; ``STORE``: a list written to the artifact store.
    fetch_type: FetchType = FetchType.FETCH
    #: Extract values from the objects (output ``values``).
    jsonpath: JsonPathText | None = None
    #: Wait, at most this long, until the objects are ready.
    wait_until_ready: timedelta | None = None

    @field_validator("fetch_type", mode="before")
    @classmethod
    def _fetch_type(cls, value: Any) -> FetchType:
        return parse_choice(FetchType, str(value), "fetchType")

    async def run(self, ctx: StepContext) -> StepResult:
        result = await get(
            ctx.client,
            self.kind,
            self.name,
            fetch_type=self.fetch_type,
            jsonpath=self.jsonpath,
            wait_until_ready=self.wait_until_ready,
            store=ctx.artifacts,
            store_key=f"{ctx.run_id}/{ctx.cluster}/{ctx.step_id}.jsonl",
            **_list_options(self),
        )
        return StepResult(result.as_output())


class PatchTask(_Source, _Kind):
    """Patch one object: ``patchType`` strategic (default), merge or json."""

    #: The object to patch.
    name: str
    #: The patch inline: YAML or JSON text, or data (a list of operations for ``json``).
    patch: str | JsonMap | list[Any] | None = None
    #: ``strategic`` (strategic merge patch), ``merge`` (JSON merge patch) or ``json`` (JSON patch).
    patch_type: PatchType = PatchType.STRATEGIC
    #: The field manager the change is recorded under.
    field_manager: str = "fleet-patch"
    #: Then wait, at most this long, until the object is ready.
    wait_until_ready: timedelta | None = None

    @field_validator("patch_type", mode="before")
    @classmethod
    def _patch_type(cls, value: Any) -> PatchType:
        return parse_patch_type(str(value))

    @model_validator(mode="after")
    def _source(self) -> PatchTask:
        self._one_source(self.patch, "patch")
        if self.patch is not None:
            parse_patch(self.patch, self.patch_type)
        return self

    async def run(self, ctx: StepContext) -> StepResult:
        body, source = _document(ctx, self, self.patch)
        touched: list[Snapshot] = []
        live: list[JsonObject | None] = []

        async def keep_live(ref: ObjectRef, obj: JsonObject | None) -> None:
            live.append(obj)

        item = await patch(
            ctx.client,
            self.kind,
            self.name,
            parse_patch(body, self.patch_type, source=source),
            patch_type=self.patch_type,
            field_manager=self.field_manager,
            wait_until_ready=self.wait_until_ready,
            before_write=keep_live if ctx.dry_run else _recorder(ctx, touched),
            dry_run=ctx.dry_run,
            **_kind_options(self),
        )
        if ctx.dry_run:  # the server's dry run diffed against the live object, as apply's
            return StepResult({"item": item, "dryRun": True, "objects": [_dry_run_output(live[0], item)]})
        return StepResult({"item": item}, touched)


class RestartTask(_Task):
    """Rolling restart of a Deployment, StatefulSet or DaemonSet (``name``), or of several at once
    (``names``: a list, or comma-separated text as a template renders it); the rollout itself is the wait
    (``timeout``; ``waitUntilReady`` is accepted as the same deadline)."""

    #: ``Deployment``, ``StatefulSet`` or ``DaemonSet`` (or their plural or short names).
    kind: str
    #: The workload to restart.
    name: str | None = None
    #: Several workloads of the kind to restart at once (a list, or comma-separated text).
    names: list[str] | None = None
    #: Its namespace (default: ``default``).
    namespace: str | None = None
    #: How long the rollout may take. In a playbook the step's ``timeout:`` (a limit on each attempt) is
    #: this deadline too, unless ``waitUntilReady`` is given.
    timeout: timedelta = Field(
        default=timedelta(minutes=10), validation_alias=AliasChoices("timeout", "waitUntilReady")
    )

    @field_validator("names", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return [n.strip() for n in value.split(",") if n.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_target(self) -> RestartTask:
        if (self.name is None) == (self.names is None):
            raise ValueError("give name (one object) or names (several), not both and not neither")
        return self

    async def run(self, ctx: StepContext) -> StepResult:
        if ctx.dry_run:
            return StepResult({"item": None, "dryRun": True})
        touched: list[Snapshot] = []
        items: dict[str, JsonObject] = {}
        errors: list[FleetError] = []

        async def one(name: str) -> None:
            try:
                items[name] = await restart(
                    ctx.client,
                    self.kind,
                    name,
                    namespace=self.namespace,
                    timeout=self.timeout,
                    before_write=_recorder(ctx, touched),
                )
            except FleetError as e:  # each rollout runs to its end; the step fails with every error
                errors.append(e)

        if self.name is not None:
            await one(self.name)
            if errors:
                raise errors[0]
            item = items[self.name]
            restarted_at = item["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
            return StepResult({"item": item, "restartedAt": restarted_at}, touched)
        names = list(dict.fromkeys(self.names or []))
        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(one, name)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ClusterError("; ".join(str(e) for e in errors), cluster=ctx.cluster)
        return StepResult({"items": [items[n] for n in names], "restarted": names}, touched)


class DeleteTask(_Selected):
    """Delete by kind and name or by selector, then wait (``timeout``) until gone."""

    #: What happens to the objects' dependents (as ``kubectl delete --cascade``).
    propagation_policy: Propagation = Propagation.BACKGROUND
    #: An object that does not exist is not an error.
    missing_ok: bool = False
    #: The objects' grace period (default: each object's own).
    grace_period_seconds: int | None = None
    #: How long to wait until the objects are gone (null: do not wait). In a playbook the step's
    #: ``timeout:`` (a limit on each attempt) is this deadline too.
    timeout: timedelta | None = timedelta(minutes=5)

    @field_validator("propagation_policy", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Propagation:
        return parse_choice(Propagation, str(value), "propagationPolicy")

    @model_validator(mode="after")
    def _target(self) -> DeleteTask:
        if not self.name and not (self.label_selector or self.field_selector):
            raise ValueError("delete needs a name or a selector (refusing to delete every object of a kind)")
        return self

    async def run(self, ctx: StepContext) -> StepResult:
        if ctx.dry_run:
            return StepResult({"deleted": [], "dryRun": True})
        touched: list[Snapshot] = []
        deleted = await delete(
            ctx.client,
            self.kind,
            self.name,
            propagation_policy=self.propagation_policy,
            missing_ok=self.missing_ok,
            grace_period_seconds=self.grace_period_seconds,
            wait=self.timeout,
            before_write=_recorder(ctx, touched),
            **_list_options(self),
        )
        return StepResult({"deleted": [{**_ref_output(d.ref), "found": d.found} for d in deleted]}, touched)


class WaitTask(_Kind):
    """Wait until a condition holds (``condition`` + ``status``), a ``jsonpath`` has ``value``, the object
    is ``deleted``, or (none of those) it is ready; at most ``timeout``."""

    #: The object to wait on.
    name: str
    #: A condition type (``Available``) that must have ``status``.
    condition: str | None = None
    #: The status the ``condition`` must have.
    status: str = "True"
    #: A JSONPath into the object that must have ``value``.
    jsonpath: JsonPathText | None = None
    #: The value the ``jsonpath`` must have.
    value: Any = None
    #: Wait until the object is gone.
    deleted: bool = False
    #: How long to wait. In a playbook the step's ``timeout:`` (a limit on each attempt) is this deadline
    #: too.
    timeout: timedelta = timedelta(minutes=5)

    @model_validator(mode="after")
    def _one_predicate(self) -> WaitTask:
        given = [
            n for n, v in (("condition", self.condition), ("jsonpath", self.jsonpath), ("deleted", self.deleted)) if v
        ]
        if len(given) > 1:
            raise ValueError(f"wait for one thing: condition, jsonpath or deleted (got {', '.join(given)})")
        if self.jsonpath and self.value is None:
            raise ValueError("jsonpath needs the value to wait for")
        return self

    def predicate(self) -> Predicate:
        if self.condition:
            return condition_check(self.condition, self.status)
        if self.jsonpath:
            return jsonpath_check(self.jsonpath, self.value)
        return gone_check if self.deleted else ready_check

    async def run(self, ctx: StepContext) -> StepResult:
        state = await wait_for(
            ctx.client, self.kind, self.name, self.predicate(), timeout=self.timeout, **_kind_options(self)
        )
        return StepResult({"item": state})


KubeTask = ApplyTask | GetTask | PatchTask | RestartTask | DeleteTask | WaitTask
TASK_TYPES: dict[str, type[KubeTask]] = {
    "apply": ApplyTask,
    "get": GetTask,
    "patch": PatchTask,
    "restart": RestartTask,
    "delete": DeleteTask,
    "wait": WaitTask,
}


def _recorder(ctx: StepContext, touched: list[Snapshot]) -> BeforeWrite | None:
    """The ``before_write`` hook of an operation: keep (and hand to the engine) each object's prior state."""
    if ctx.snapshot is None:
        return None
    record = ctx.snapshot

    async def before_write(ref: ObjectRef, live: JsonObject | None) -> None:
        snapshot = Snapshot(ref, live)
        await record(snapshot)
        touched.append(snapshot)

    return before_write


def _read(ctx: StepContext, name: str, option: str) -> str:
    path = Path(name) if ctx.base_dir is None or Path(name).is_absolute() else ctx.base_dir / name
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"cannot read {option}: {e.strerror}", location=Location(file=name)) from e
    if option != "template":
        return text
    return templating.render(text, ctx.variables, location=Location(file=name))


def _document(
    ctx: StepContext, task: _Source, inline: str | JsonMap | list[Any] | None
) -> tuple[str | JsonMap | list[Any], str]:
    """The document a task names (inline, file, or rendered template) and where it came from."""
    if task.file:
        return _read(ctx, task.file, "file"), task.file
    if task.template:
        return _read(ctx, task.template, "template"), task.template
    assert inline is not None
    return inline, "<inline>"


def _manifests(document: str | JsonMap | list[Any], source: str) -> list[Manifest]:
    if isinstance(document, str):
        return load_manifests(document, source=source)
    return load_manifests(yaml.safe_dump_all(document if isinstance(document, list) else [document]), source=source)


def _kind_options(task: _Kind) -> KindOptions:
    return {"api_version": task.api_version, "api_group": task.api_group, "namespace": task.namespace}


def _list_options(task: _Selected) -> ListOptions:
    return {
        **_kind_options(task),
        "all_namespaces": task.all_namespaces,
        "label_selector": task.label_selector,
        "field_selector": task.field_selector,
    }


def _dry_run_output(live: JsonObject | None, proposed: JsonObject) -> JsonMap:
    """What a dry-run patch would do to one object, in the shape of apply's objects."""
    meta = proposed.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    label = f"{proposed.get('kind')}/{namespace + '/' if namespace else ''}{name}"
    diff = unified_diff(live, proposed, label)
    result = "changed" if diff else "unchanged"
    return {"kind": proposed.get("kind"), "name": name, "namespace": namespace, "result": result, "diff": diff}


def _ref_output(ref: ObjectRef) -> JsonMap:
    return {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name, "namespace": ref.namespace}
