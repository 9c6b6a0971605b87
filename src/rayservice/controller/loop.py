"""The control loop: reconciles every RayService on its own schedule and never dies.

Each service is reconciled when its requeue time comes or when the API wakes the loop after a
change. An exception in one service is logged, recorded as an event and retried with back-off;
it never stops the loop or the other services. Clusters and fronts that belong to no stored
service (left by a crash during deletion) are removed.
"""

from __future__ import annotations

import logging
import threading
import time

from rayservice.controller.reconciler import Reconciler
from rayservice.planner.plan import front_key
from rayservice.spec.errors import RayServiceError
from rayservice.spec.vocabulary import KIND, EventReason, EventType

log = logging.getLogger("rayservice.controller")
MAX_BACKOFF = 30.0
IDLE_WAIT = 2.0


class ControlLoop:
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self.store = reconciler.store
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._due: dict[str, float] = {}
        self._failures: dict[str, int] = {}

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
        now = time.monotonic()
        resources = self.store.list_resources(KIND)
        for resource in resources:
            if self._stop.is_set():
                break
            if self._due.get(resource.key, 0.0) > now:
                continue
            self._due[resource.key] = time.monotonic() + self._reconcile(resource.key)
        self._collect_orphans({r.key for r in resources})
        if not self._due:
            return IDLE_WAIT
        return max(0.05, min(min(self._due.values()) - time.monotonic(), IDLE_WAIT))

    def _reconcile(self, key: str) -> float:
        namespace, name = key.split("/", 1)
        resource = self.store.get(KIND, namespace, name)
        if resource is None:
            self._due.pop(key, None)
            return IDLE_WAIT
        try:
            result = self.reconciler.reconcile(resource)
        except Exception as e:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            log.exception("reconcile of %s failed (%d in a row)", key, failures)
            kind = type(e).__name__ if isinstance(e, RayServiceError) else "unexpected error"
            self.store.add_event(
                namespace,
                name,
                EventType.WARNING,
                EventReason.RECONCILE_FAILED,
                f"{kind}: {e}",
                time.time(),
            )
            return float(min(2**failures * 0.5, MAX_BACKOFF))
        self._failures.pop(key, None)
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
