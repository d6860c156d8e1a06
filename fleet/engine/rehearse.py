"""A rehearsal: a playbook run on a simulated fleet that mirrors the selected clusters, with faults.

``Rehearsal`` starts ``fleet.sim`` with one simulated cluster per selected cluster (the same names; the
targets keep their inventory entries, so tenants, regions, labels and waves are the run's own) and hands
out targets that open the simulated clusters instead of the real ones. The real clusters are not
contacted, and no secret is read: the inventory's connections are never resolved, and the playbook's
secret references resolve to stand-ins (``StandInSecrets``). ``copy_from_live`` is the one exception:
it reads (GET only) the kinds the playbook's get/wait/patch/restart/delete steps name, in their
namespaces, from the real clusters and creates them on the simulated ones. Objects a controller owns
are left to the simulated controllers, which make them again from their owners.

Faults (``parse_faults``: ``CLUSTER:KIND[=VALUE]``) are fleet.sim's own, switched on once the copy is
done; ``effects`` says afterwards which requests they hit, from each simulated cluster's request log.
"""

from __future__ import annotations

import difflib
import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel

from fleet import templating
from fleet.engine.fanout import Target, fan_out
from fleet.errors import ApiError, ClusterError, FleetError, InputError, Location
from fleet.kube import KubeClient
from fleet.kube.objects import JsonObject
from fleet.kube.schemas import builtin_kinds
from fleet.kube.selection import list_objects, locate
from fleet.kube.wait import condition_check, wait_for
from fleet.playbook.loader import LoadedPlaybook
from fleet.playbook.steps import OperationStep, walk
from fleet.playbook.validate import SECRET_PLACEHOLDER
from fleet.playbook.variables import ClusterInfo, variables
from fleet.redaction import register_secret
from fleet.secrets import SecretRef, SecretResolver
from fleet.settings import FleetSettings
from fleet.sim import Faults, RequestRecord, SimFleet

FLAG = "--fault"
#: The steps whose kinds ``copy_from_live`` copies: the steps that read or change existing objects.
READING = frozenset({"get", "wait", "patch", "restart", "delete"})
#: Objects the simulated cluster makes itself (its default namespaces are there already).
_SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation", "selfLink", "deletionTimestamp")
_CRD_READY = 30.0
_SHOWN = 3


# -- faults ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultKind:
    """A kind of ``--fault``: what it does, its value (``None``: it takes none) and fleet.sim's fields."""

    what: str
    unit: str | None
    default: float | None
    fields: Callable[[float], dict[str, Any]]
    share: bool = False

    def usage(self, name: str) -> str:
        return f"{name}[={self.unit}]" if self.unit else name


FAULT_KINDS: dict[str, FaultKind] = {
    "down": FaultKind("the cluster's API refuses connections", None, None, lambda v: {"down": True}),
    "slow": FaultKind("every response is delayed (default 0.5 s)", "SECONDS", 0.5, lambda v: {"latency": v}),
    "errors": FaultKind(
        "a share of requests is answered 500/503 (default 0.2)", "SHARE", 0.2, lambda v: {"error_rate": v}, True
    ),
    "throttle": FaultKind(
        "a share of requests is answered 429 (default 0.2)", "SHARE", 0.2, lambda v: {"throttle_rate": v}, True
    ),
    "notready": FaultKind(
        "containers never pass readiness: Deployments never become ready", None, None, lambda v: {"notready": True}
    ),
}


def fault_usage() -> str:
    """``down, slow[=SECONDS], …``: the kinds as a user writes them."""
    return ", ".join(kind.usage(name) for name, kind in FAULT_KINDS.items())


@dataclass(frozen=True)
class FaultSpec:
    """One ``--fault`` as given: the cluster, the kind and its value."""

    cluster: str
    kind: str
    value: float | None

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}={self.value:g}"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:20])
    return shown + (f" … ({len(names) - 20} more)" if len(names) > 20 else "")


def parse_fault(text: str, clusters: Sequence[str]) -> FaultSpec:
    """``CLUSTER:KIND[=VALUE]``; an unknown cluster or kind or a bad value is an ``InputError`` naming
    ``--fault`` and what it may be."""
    where = Location(field=FLAG)
    cluster, sep, rest = text.partition(":")
    name, has_value, raw = rest.partition("=")
    if not sep or not cluster or not name:
        raise InputError(f"{text!r}: expected CLUSTER:KIND[=VALUE], KIND one of {fault_usage()}", location=where)
    if cluster not in clusters:
        close = difflib.get_close_matches(cluster, clusters, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(
            f"{text!r}: no cluster {cluster!r} among the selected clusters{hint}; expected one of: {_names(clusters)}",
            location=where,
        )
    kind = FAULT_KINDS.get(name)
    if kind is None:
        raise InputError(f"{text!r}: unknown fault kind {name!r}; expected one of: {fault_usage()}", location=where)
    if not has_value:
        return FaultSpec(cluster, name, kind.default)
    if kind.unit is None:
        raise InputError(f"{text!r}: the fault {name!r} takes no value (write {cluster}:{name})", location=where)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or (kind.share and value > 1):  # `not >=` also refuses nan
        expected = "a share between 0 and 1" if kind.share else "a number of seconds (0 or more)"
        raise InputError(f"{text!r}: {name} takes {expected}, not {raw!r}", location=where)
    return FaultSpec(cluster, name, value)


def parse_faults(texts: Sequence[str], clusters: Sequence[str]) -> list[FaultSpec]:
    specs = [parse_fault(text, clusters) for text in texts]
    seen = Counter((s.cluster, s.kind) for s in specs)
    twice = [f"{c}:{k}" for (c, k), n in seen.items() if n > 1]
    if twice:
        raise InputError(f"{', '.join(twice)} given more than once: give each fault once", location=Location(FLAG))
    return specs


def sim_faults(specs: Sequence[FaultSpec]) -> dict[str, Faults]:
    """fleet.sim's ``Faults`` of each faulted cluster (its ``--fault``s combined)."""
    fields: dict[str, dict[str, Any]] = {}
    for spec in specs:
        kind = FAULT_KINDS[spec.kind]
        fields.setdefault(spec.cluster, {}).update(kind.fields(spec.value if spec.value is not None else 0.0))
    return {cluster: Faults(**values) for cluster, values in fields.items()}


@dataclass(frozen=True)
class FaultEffect:
    """What one fault did on its cluster."""

    cluster: str
    fault: str
    effect: str


def _hits(records: Sequence[RequestRecord], action: str) -> str:
    hit = [r for r in records if action in r.faults]
    if not hit:
        return f"0 of {len(records)} requests"
    top = Counter(f"{r.method} {r.path}" for r in hit).most_common(_SHOWN)
    codes = "/".join(str(c) for c in sorted({r.status for r in hit if r.status}))
    shown = ", ".join(f"{what} ({n} times)" if n > 1 else what for what, n in top)
    more = " …" if len({f"{r.method} {r.path}" for r in hit}) > _SHOWN else ""
    return f"{len(hit)} of {len(records)} requests{f' answered {codes}' if codes else ''}: {shown}{more}"


def describe_effect(spec: FaultSpec, records: Sequence[RequestRecord], held_unready: Sequence[str]) -> str:
    """One sentence of what ``spec`` did, from its cluster's request log and the pods it held unready."""
    if spec.kind == "down":
        return "refused every connection: no request reached the API"
    if spec.kind == "slow":
        delayed = sum(1 for r in records if "latency" in r.faults)
        return f"delayed {delayed} of {len(records)} requests by {spec.value:g} s"
    if spec.kind == "notready":
        if not held_unready:
            return "held no pod unready (no container started)"
        pods = ", ".join(held_unready[:_SHOWN]) + (" …" if len(held_unready) > _SHOWN else "")
        return f"held {len(held_unready)} pod(s) unready: {pods}"
    return _hits(records, "error" if spec.kind == "errors" else "throttle")


# -- secrets -----------------------------------------------------------------------------------------


class StandInSecrets(SecretResolver):
    """A rehearsal's secrets: a reference is checked as in a run, then resolves to a stand-in derived
    from it (``rehearsal-<hash>``, redacted like a secret); no store (Vault, AWS, a file) is read."""

    async def resolve(self, ref: SecretRef | str) -> str:
        parsed = self.parse(ref) if isinstance(ref, str) else ref
        value = f"rehearsal-{hashlib.sha256(parsed.text.encode()).hexdigest()[:16]}"
        register_secret(value)
        return value


# -- what the playbook reads -------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A kind a step names, where: a namespace (None: the kind's default), or all namespaces."""

    kind: str
    api_version: str | None
    api_group: str | None
    namespace: str | None
    all_namespaces: bool


def _rendered(value: Any, values: Mapping[str, Any]) -> tuple[bool, Any]:
    """``value`` rendered for a cluster before the run; (False, None) when it needs the run (outputs,
    secrets) or does not render."""
    try:
        return True, templating.render_data(value, values, location=Location())
    except InputError:
        return False, None


def reads(loaded: LoadedPlaybook, inputs: Mapping[str, Any], cluster: ClusterInfo) -> list[Read]:
    """The kinds and namespaces ``loaded``'s reading steps (rollback steps included) name for ``cluster``.
    A namespace known only at run time widens the read to every namespace; a kind known only then is
    not read (it cannot be known before the run)."""
    playbook = loaded.playbook
    kinds = {i.id: i.type for i in playbook.inputs}
    shown = {k: (SECRET_PLACEHOLDER if kinds.get(k) == "SECRET" else v) for k, v in inputs.items()}
    values = variables(
        run_id="rehearsal", inputs=shown, cluster=cluster, outputs={}, secrets={}, base_dir=loaded.base_dir
    )
    found: list[Read] = []
    for step in walk([*playbook.steps, *playbook.rollback.steps]):
        if not isinstance(step, OperationStep) or step.type not in READING:
            continue
        options = {to_camel(k): v for k, v in step.options.items()}  # as the step models read them
        ok, kind = _rendered(options.get("kind"), values)
        if not ok or not isinstance(kind, str) or not kind:
            continue
        api_version = _rendered(options.get("apiVersion"), values)[1]
        api_group = _rendered(options.get("apiGroup"), values)[1]
        ok, namespace = _rendered(options.get("namespace"), values)
        every = _rendered(options.get("allNamespaces", False), values)[1]
        all_namespaces = not ok or every is True or str(every).lower() == "true"
        read = Read(kind, api_version, api_group, None if all_namespaces else namespace, all_namespaces)
        if read not in found:
            found.append(read)
    return found


# -- copying from the live clusters -------------------------------------------------------------------


@dataclass(frozen=True)
class Copied:
    """What ``copy_from_live`` created on one simulated cluster, by kind."""

    cluster: str
    kinds: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def _for_sim(obj: JsonObject) -> JsonObject:
    """A live object as a create request: what the server sets, the status and finalizers (no controller
    of the simulated cluster would remove them) left out; who manages which field kept."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_SET and k != "finalizers"}
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = meta
    if obj.get("kind") == "Pod" and obj.get("apiVersion") == "v1":  # the simulated nodes are not the live ones
        out["spec"] = {k: v for k, v in (obj.get("spec") or {}).items() if k != "nodeName"}
    return out


def _custom(obj: JsonObject) -> bool:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return group not in builtin_kinds()


async def _live_objects(live: KubeClient, wanted: Sequence[Read]) -> list[JsonObject]:
    """Every object of the wanted kinds that no controller owns, the namespaces they are in and the
    definitions of their custom kinds: GET requests only."""
    objects: list[JsonObject] = []
    for read in wanted:
        try:
            located = await locate(
                live,
                read.kind,
                api_version=read.api_version,
                api_group=read.api_group,
                namespace=read.namespace,
                all_namespaces=read.all_namespaces,
            )
        except InputError:  # a kind this cluster does not serve has nothing to copy: its step fails as in a run
            continue
        objects += [
            o for o in await list_objects(live, located, {}) if not (o.get("metadata") or {}).get("ownerReferences")
        ]
    names = sorted({ns for o in objects if (ns := (o.get("metadata") or {}).get("namespace"))})
    namespaces = [
        await live.request("GET", f"/api/v1/namespaces/{ns}", operation=f"get namespace {ns}") for ns in names
    ]
    for ns in namespaces:
        ns.setdefault("apiVersion", "v1")
        ns.setdefault("kind", "Namespace")
    definitions = []
    custom = {(str(o["apiVersion"]).rpartition("/")[0], str(o["kind"])) for o in objects if _custom(o)}
    for group, kind in sorted(custom):
        info = await live.discovery.lookup(kind, api_group=group)
        crd = await live.request(
            "GET",
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{info.plural}.{info.group}",
            operation=f"get the definition of {info.kind}",
        )
        crd.setdefault("apiVersion", "apiextensions.k8s.io/v1")
        crd.setdefault("kind", "CustomResourceDefinition")
        definitions.append(crd)
    unique = {_key(o): o for o in [*definitions, *namespaces, *objects]}
    return list(unique.values())


def _key(obj: JsonObject) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta["name"]))


async def _create(sim: KubeClient, obj: JsonObject) -> bool:
    """Create ``obj`` on the simulated cluster; False if it is there already (a default namespace)."""
    meta = obj.get("metadata") or {}
    located = await locate(sim, str(obj["kind"]), api_version=str(obj["apiVersion"]), namespace=meta.get("namespace"))
    try:
        await sim.request("POST", located.path(), body=_for_sim(obj), operation=f"create {obj['kind']} {meta['name']}")
    except ApiError as e:
        if e.code == 409:
            return False
        raise
    return True


async def _copy_into(sim: Callable[[], KubeClient], objects: Sequence[JsonObject], cluster: str) -> Copied:
    kinds: Counter[str] = Counter()
    definitions = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
    with sim() as client:
        for crd in definitions:
            if await _create(client, crd):
                kinds["CustomResourceDefinition"] += 1
            name = str(crd["metadata"]["name"])
            await wait_for(client, "CustomResourceDefinition", name, condition_check("Established"), timeout=_CRD_READY)
    with sim() as client:  # a new client: its discovery sees the definitions just made
        for obj in objects:
            if obj.get("kind") != "CustomResourceDefinition" and await _create(client, obj):
                kinds[str(obj["kind"])] += 1
    return Copied(cluster, dict(kinds))


# -- the rehearsal ------------------------------------------------------------------------------------


class Rehearsal:
    """A simulated fleet mirroring ``live`` (use as a context manager); ``targets`` open its clusters."""

    def __init__(
        self, live: Sequence[Target], *, seed: int, out_dir: Path, settings: FleetSettings | None = None
    ) -> None:
        self.live = list(live)
        self.seed = seed
        self.settings = settings
        self.sim = SimFleet(names=[t.name for t in self.live], seed=seed, out_dir=out_dir)
        self.targets = [Target(t.name, self._opener(t.name), t.cluster) for t in self.live]
        self.faults: list[FaultSpec] = []

    def __enter__(self) -> Rehearsal:
        self.sim.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sim.stop()

    def client(self, name: str) -> KubeClient:
        """A client of the simulated cluster ``name``."""
        cluster = self.sim[name]
        return KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=name, name=name, settings=self.settings)

    def _opener(self, name: str) -> Callable[[], Any]:
        async def open_client() -> KubeClient:
            return self.client(name)

        return open_client

    async def copy_from_live(
        self, loaded: LoadedPlaybook, inputs: Mapping[str, Any], *, concurrency: int
    ) -> list[Copied]:
        """Copy what the playbook reads from each live cluster (GET requests only) to its simulated one.
        A live cluster that cannot be read is a ``ClusterError`` naming every such cluster: a rehearsal
        missing a cluster's state would rehearse something else."""
        opened: dict[int, Target] = {}

        def tagged(target: Target) -> Target:
            async def open_live() -> KubeClient:
                client = await target.open()
                opened[id(client)] = target
                return client

            return Target(target.name, open_live, target.cluster)

        async def copy(live: KubeClient) -> Copied:
            target = opened[id(live)]
            c = target.cluster
            info = ClusterInfo(target.name, c.tenant, c.region, c.labels) if c else ClusterInfo(target.name)
            objects = await _live_objects(live, reads(loaded, inputs, info))
            return await _copy_into(lambda: self.client(target.name), objects, target.name)

        results = await fan_out([tagged(t) for t in self.live], copy, concurrency=concurrency)
        failed = [r for r in results if r.error is not None]
        if failed:
            lines = "\n  ".join(f"{r.cluster}: {_message(r.error)}" for r in failed)
            raise ClusterError(f"--copy-from-live could not copy every cluster's objects:\n  {lines}")
        return [r.value for r in results]

    def inject(self, specs: Sequence[FaultSpec]) -> None:
        """Switch the faults on; the request logs start empty, so that they show what the faults hit."""
        self.faults = list(specs)
        for cluster in self.sim:
            cluster.clear_requests()
        for name, faults in sim_faults(specs).items():
            self.sim[name].set_faults(faults)

    def effects(self) -> list[FaultEffect]:
        """What each fault did, in the order given."""
        out = []
        for spec in self.faults:
            cluster = self.sim[spec.cluster]
            held = cluster.call(lambda state: list(state.held_unready))
            out.append(FaultEffect(spec.cluster, str(spec), describe_effect(spec, cluster.requests(), held)))
        return out


def _message(error: FleetError | None) -> str:
    return error.message if isinstance(error, ClusterError | InputError) else str(error)
