"""What a failed action means for trying it again: the one place errors are interpreted.

Adapters raise the error tree of :mod:`rayservice.spec.errors`; here its types become a stored
``ActionFailure``:

- ``TemporaryError`` (a dashboard not answering, a process not started yet): tried again after
  a back-off that doubles from 1 s up to 60 s, with up to 25% jitter so that many services do
  not retry in step;
- ``ServeConfigRejected`` (Ray answered 400): not tried again until the config changes, and the
  user is told it is theirs to fix;
- any other ``PermanentError`` or ``InvalidSpec`` (a refused token, a spec the backend cannot
  run): not tried again until what the action would do changes.

The planner holds the action back accordingly (:mod:`rayservice.planner.retries`); nothing
retries on the next 50 ms pass.
"""

from __future__ import annotations

from rayservice.planner.record import ActionFailure
from rayservice.serve_client.base import ServeConfigRejected
from rayservice.spec.errors import RayServiceError, TemporaryError
from rayservice.spec.text import headline
from rayservice.spec.vocabulary import FailureKind

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
JITTER = 0.25


def kind_of(error: RayServiceError) -> FailureKind:
    if isinstance(error, TemporaryError):
        return FailureKind.TEMPORARY
    if isinstance(error, ServeConfigRejected):
        return FailureKind.REJECTED
    return FailureKind.PERMANENT


def backoff(attempts: int, jitter: float) -> float:
    """Seconds before attempt ``attempts + 1``; ``jitter`` in [0, 1) spreads it by up to 25%."""
    base = min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** (attempts - 1))
    return min(MAX_BACKOFF, base * (1 + JITTER * jitter))


def failure_after(
    error: RayServiceError,
    fingerprint: str,
    previous: ActionFailure | None,
    now: float,
    jitter: float,
) -> ActionFailure:
    """The stored failure of an action that just failed with ``error``."""
    kind = kind_of(error)
    again = previous is not None and previous.fingerprint == fingerprint
    attempts = previous.attempts + 1 if previous is not None and again else 1
    return ActionFailure(
        fingerprint=fingerprint,
        kind=kind,
        message=headline(str(error)),  # the condition's words; the log keeps the whole
        attempts=attempts,
        since=previous.since if previous is not None and again else now,
        retry_at=now + backoff(attempts, jitter) if kind is FailureKind.TEMPORARY else None,
    )
