"""An in-memory TrafficFront for unit tests of the controller.

It behaves like HaproxyFront as seen through the protocol (a front keeps its pid across
changes, delete is idempotent, a crashed front is still listed by ``keys``) without starting
processes, and records every call so tests can assert what the controller asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rayservice.spec.errors import RayServiceError
from rayservice.spec.observed import FrontSpec, FrontState

FIRST_FAKE_PID = 10_000


@dataclass(frozen=True)
class FrontCall:
    """One call made to the fake: the method name, the key and the spec for ``ensure``."""

    method: str
    key: str
    spec: FrontSpec | None = None


class FakeFront:
    """TrafficFront kept in a dict; every serve backend counts as healthy."""

    def __init__(self) -> None:
        self.calls: list[FrontCall] = []
        self._running: dict[str, FrontState] = {}
        self._recorded: set[str] = set()
        self._next_pid = FIRST_FAKE_PID
        self._next_error: RayServiceError | None = None

    def ensure(self, key: str, spec: FrontSpec) -> FrontState:
        self.calls.append(FrontCall("ensure", key, spec))
        if self._next_error is not None:
            error, self._next_error = self._next_error, None
            raise error
        current = self._running.get(key)
        pid = current.pid if current is not None else self._new_pid()
        healthy = tuple(backend.name for backend in spec.serve_backends)
        state = FrontState(spec=spec, pid=pid, healthy_backends=healthy)
        self._running[key] = state
        self._recorded.add(key)
        return state

    def observe(self, key: str) -> FrontState | None:
        self.calls.append(FrontCall("observe", key))
        return self._running.get(key)

    def delete(self, key: str) -> None:
        self.calls.append(FrontCall("delete", key))
        self._running.pop(key, None)
        self._recorded.discard(key)

    def keys(self) -> list[str]:
        return sorted(self._recorded)

    def fail_next_ensure(self, error: RayServiceError) -> None:
        """Make the next ``ensure`` raise ``error`` (e.g. a PortInUse) and change nothing."""
        self._next_error = error

    def crash(self, key: str) -> None:
        """Simulate the front's process dying: observe() returns None, keys() still lists it."""
        self._running.pop(key, None)

    def lose_process(self, key: str, why: str) -> None:
        """Simulate one of the front's processes dying: observe() reports it degraded until
        the next ensure."""
        self._running[key] = replace(self._running[key], degraded=why)

    def set_healthy(self, key: str, names: tuple[str, ...]) -> None:
        """Report only ``names`` as passing the health check for ``key``."""
        self._running[key] = replace(self._running[key], healthy_backends=names)

    def _new_pid(self) -> int:
        self._next_pid += 1
        return self._next_pid
