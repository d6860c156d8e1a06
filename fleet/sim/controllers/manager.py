"""The controller manager of one cluster: one trio task that follows the store's change feed.

Every event updates the owner index and is mapped by each interested controller to the keys it
must reconcile; reconciles are synchronous (the store lives on this thread), idempotent, and may ask
to be run again at a known instant (minReadySeconds, progress deadlines, Job deadlines and TTLs).
Between bursts of work the task sleeps on ``Store.wait_changed`` bounded by the earliest such
instant, so an idle cluster costs one parked task.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import trio

from fleet.sim.cluster import ClusterState
from fleet.sim.controllers.ownership import OwnerIndex
from fleet.sim.model import StatusError, WatchEvent

log = logging.getLogger("fleet.sim.controllers")

Key = tuple[str, ...]

# Reconciles between two checkpoints, so that the HTTP front sharing this thread stays responsive.
_BATCH = 64
_RETRY_CONFLICT = 0.5
_RETRY_ERROR = 5.0


@dataclass
class Context:
    """What every controller of a cluster shares."""

    state: ClusterState
    owners: OwnerIndex = field(default_factory=OwnerIndex)


class Controller(ABC):
    """Reacts to changes of some resources by reconciling objects identified by keys."""

    # Storage keys (``deployments.apps``, ``pods``) of the resources whose events concern this
    # controller; ``None`` means every resource (garbage collection, namespace deletion).
    watches: ClassVar[frozenset[str] | None]
    name: ClassVar[str]

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    @abstractmethod
    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        """The keys to reconcile because of this event."""

    @abstractmethod
    def reconcile(self, key: Key) -> float | None:
        """Make the world match the object behind ``key``; return seconds until a re-check is due, if any."""


ControllerFactory = Callable[[Context], Controller]


class ControllerManager:
    """Runs a cluster's controllers on its change feed."""

    def __init__(self, state: ClusterState, factories: Sequence[ControllerFactory]) -> None:
        self.ctx = Context(state)
        self.controllers = [make(self.ctx) for make in factories]
        self._by_key: dict[str, list[int]] = {}
        self._everything: list[int] = []
        for i, c in enumerate(self.controllers):
            if c.watches is None:
                self._everything.append(i)
            else:
                for key in c.watches:
                    self._by_key.setdefault(key, []).append(i)
        self._queue: dict[tuple[int, Key], None] = {}
        self._timers: list[tuple[float, int, int, Key]] = []
        self._timer_due: dict[tuple[int, Key], float] = {}
        self._seq = itertools.count()
        self._rv = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        store = self.ctx.state.store
        self._resync()
        task_status.started()
        while True:
            self._drain_feed()
            self._fire_timers()
            if self._queue:
                await self._work()
                continue
            deadline = self._timers[0][0] if self._timers else math.inf
            with trio.move_on_at(deadline):
                await store.wait_changed(self._rv)

    # -- feed ------------------------------------------------------------------------------------

    def _resync(self) -> None:
        """Start over from the store's current contents (at start, and if the feed was outrun)."""
        state = self.ctx.state
        self._rv = state.store.resource_version
        self.ctx.owners.clear()
        types = {rt.key: rt for rt in state.resources.all()} | self.ctx.owners.types
        for key, obj in list(state.store.iter_all()):
            rt = types.get(key)
            if rt is not None:
                self._dispatch(WatchEvent("ADDED", rt, obj, int(obj["metadata"]["resourceVersion"])))

    def _drain_feed(self) -> None:
        store = self.ctx.state.store
        if store.resource_version == self._rv:
            return
        try:
            events = store.events_since(self._rv)
        except StatusError:
            log.warning("controllers of %s fell behind the change feed; resyncing", self.ctx.state.name)
            self._resync()
            return
        self._rv = store.resource_version
        for event in events:
            self._dispatch(event)

    def _dispatch(self, event: WatchEvent) -> None:
        self.ctx.owners.observe(event)
        for i in itertools.chain(self._by_key.get(event.resource.key, ()), self._everything):
            for key in self.controllers[i].keys_for(event):
                self._queue[(i, key)] = None

    # -- work ------------------------------------------------------------------------------------

    async def _work(self) -> None:
        batch = list(self._queue)
        self._queue.clear()
        for n, (i, key) in enumerate(batch, 1):
            self._reconcile(i, key)
            if n % _BATCH == 0:
                self._drain_feed()
                await trio.lowlevel.checkpoint()
        await trio.lowlevel.checkpoint()

    def _reconcile(self, i: int, key: Key) -> None:
        controller = self.controllers[i]
        try:
            again = controller.reconcile(key)
        except StatusError as e:
            # A write lost a race with the HTTP front (conflict, already exists): try again shortly.
            log.debug("%s %s/%s: %s; retrying", self.ctx.state.name, controller.name, "/".join(key), e)
            again = _RETRY_CONFLICT
        except Exception:
            log.exception("%s: the %s controller failed on %s", self.ctx.state.name, controller.name, "/".join(key))
            again = _RETRY_ERROR
        if again is not None:
            self._schedule(i, key, trio.current_time() + max(again, 0.0))

    def _schedule(self, i: int, key: Key, when: float) -> None:
        due = self._timer_due.get((i, key))
        if due is not None and due <= when:
            return
        self._timer_due[(i, key)] = when
        heapq.heappush(self._timers, (when, next(self._seq), i, key))

    def _fire_timers(self) -> None:
        now = trio.current_time()
        while self._timers and self._timers[0][0] <= now:
            when, _, i, key = heapq.heappop(self._timers)
            if self._timer_due.get((i, key)) == when:
                del self._timer_due[(i, key)]
                self._queue[(i, key)] = None
