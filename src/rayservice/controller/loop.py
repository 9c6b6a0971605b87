"""The control loop: reconciles every RayService and RayCluster on its own schedule and never
dies.

Each service is reconciled when its requeue time comes or when the API wakes the loop after a
change. An exception in one service is logged, recorded as an event and retried with back-off;
it never stops the loop or the other services. Clusters and fronts that belong to no stored
service (left by a crash during deletion) are removed, at the first tick and then every
``ORPHAN_SCAN_SECONDS``: asking the provider about every cluster costs more than a tick should.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from rayservice.controller.metrics import PassResult
from rayservice.controller.reconciler import Reconciler
from rayservice.planner.plan import front_key
from rayservice.spec.errors import RayServiceError
from rayservice.spec.events import ObjectKind
from rayservice.spec.vocabulary import EventReason, EventType

log = logging.getLogger("rayservice.controller")
MAX_BACKOFF = 30.0
IDLE_WAIT = 2.0
ORPHAN_SCAN_SECONDS = 30.0
# Services due this soon are reconciled in the same tick: steady services fall due at scattered
# times, and waking once for each costs more than reconciling a few a little early.
BATCH_WINDOW = 0.25
RECONCILED_KINDS = (ObjectKind.RAY_SERVICE, ObjectKind.RAY_CLUSTER)


class ControlLoop:
    def __init__(
        self, reconciler: Reconciler, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.reconciler = reconciler
        self.store = reconciler.store
        self.metrics = reconciler.metrics  # passes are counted here, where settled is told apart
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._due: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self.monotonic = monotonic
        self._next_orphan_scan = 0.0  # on the monotonic clock

    def wake(self) -> None:
        """Reconcile everything now (called after an apply or delete)."""
        self._due.clear()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.run_once()
            except Exception:  # the loop must survive anything, even a broken store
                log.exception("control loop pass failed")
                wait = IDLE_WAIT
            self._wake.wait(timeout=wait)
            self._wake.clear()

    def run_once(self) -> float:
        """Reconcile the services that are due; return how long to sleep."""
        now = self.monotonic()
        # keys are unique across kinds: admission refuses a RayService and a RayCluster of
        # one name in one namespace
        keyed = [(kind, key) for kind in RECONCILED_KINDS for key in self.store.keys(kind)]
        for kind, key in keyed:
            if self._stop.is_set():
                break
            if self._due.get(key, 0.0) > now + BATCH_WINDOW:
                continue
            self._due[key] = self.monotonic() + self._reconcile(kind, key)
        if now >= self._next_orphan_scan:
            self._collect_orphans({key for _, key in keyed})
            self._next_orphan_scan = now + ORPHAN_SCAN_SECONDS
        if not self._due:
            return IDLE_WAIT
        return max(0.05, min(min(self._due.values()) - self.monotonic(), IDLE_WAIT))

    def _reconcile(self, kind: ObjectKind, key: str) -> float:
        namespace, name = key.split("/", 1)
        passed = PassResult.SETTLED
        try:
            result = self.reconciler.settled(kind, namespace, name)
            if result is None:
                resource = self.store.get(kind, namespace, name)
                if resource is None:
                    self._due.pop(key, None)
                    return IDLE_WAIT
                passed = PassResult.PLANNED
                with self.metrics.full_pass():
                    result = self.reconciler.reconcile(resource)
        except Exception as e:
            self.metrics.pass_ended(PassResult.ERROR)
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            log.exception("reconcile of %s failed (%d in a row)", key, failures)
            what = type(e).__name__ if isinstance(e, RayServiceError) else "unexpected error"
            try:
                self.store.add_event(
                    namespace,
                    name,
                    EventType.WARNING,
                    EventReason.RECONCILE_FAILED,
                    f"{what}: {e}",
                    time.time(),
                )
            except RayServiceError:  # the store itself fails (locked, full): the log tells it
                log.exception("could not record the failure of %s as an event", key)
            return float(min(2**failures * 0.5, MAX_BACKOFF))
        self._failures.pop(key, None)
        self.metrics.pass_ended(passed)
        return result.requeue_after

    def _collect_orphans(self, keys: set[str]) -> None:
        provider, front = self.reconciler.provider, self.reconciler.front
        owned = {name for key in keys for name in provider.clusters(owner=key)}
        for name in provider.clusters():
            if name not in owned:
                log.warning("deleting cluster %s: the service that owned it is gone", name)
                provider.delete(name)
        fronts = {front_key(k) for k in keys}
        for key in front.keys():  # noqa: SIM118 (a TrafficFront, not a dict)
            if key not in fronts:
                log.warning("deleting the endpoints of %s: the service is gone", key)
                front.delete(key)
