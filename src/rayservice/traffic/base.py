"""The TrafficFront protocol: the stable endpoints of a RayService.

``<name>-serve-svc`` and ``<name>-head-svc`` must keep their ports while the clusters behind
them come and go. A front is keyed by ``<namespace>.<name>`` of its RayService.
"""

from __future__ import annotations

from typing import Protocol

from rayservice.spec.observed import FrontSpec, FrontState


class TrafficFront(Protocol):
    def ensure(self, key: str, spec: FrontSpec) -> FrontState:
        """Serve ``spec`` under ``key``: start the front, or change it in place without
        dropping an accepted connection. Idempotent."""
        ...

    def observe(self, key: str) -> FrontState | None:
        """The front as it runs now, or None when no front process is alive for ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Stop the front for ``key`` and forget it. Idempotent."""
        ...

    def keys(self) -> list[str]:
        """Every key this front manages (running or recorded)."""
        ...
