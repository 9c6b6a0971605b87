"""KubeRay's initializing timeout (``ray.io/initializing-timeout``): when to give up. Pure.

A RayService that has never served gets the annotation's time to become ready. The clock is
stored in the record (``ServiceRecord.initializing``): it starts when the planner first plans a
generation (for the first apply, when the first cluster is asked for) and starts over with
every new generation; once the service has had a serve endpoint (``ServiceRecord.served``) it
never runs again, so a service that served and lost its endpoints is not timed out. When the
clock runs out the service gives up: Ready is False with reason InitializingTimeout, its
clusters are deleted and nothing is tried again until the spec changes. The verdict is stored
with the generation it applies to, so a restarted controller neither resets nor forgets it.

KubeRay measures from the Ready condition's transition to Initializing and keeps a timed-out
service failed until it is recreated; here a changed spec starts over.
"""

from __future__ import annotations

from rayservice.planner.record import Initializing, ServiceRecord
from rayservice.spec.durations import format_seconds, parse_duration
from rayservice.spec.manifest import RayService
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import (
    AnnotationKey,
    ConditionReason,
    ConditionStatus,
    ConditionType,
)


def timeout_of(service: RayService) -> float | None:
    """The annotation's timeout in seconds; None when there is none. Admission refuses a value
    that is not a duration; one stored before that check counts as none."""
    text = service.metadata.annotations.get(AnnotationKey.INITIALIZING_TIMEOUT, "")
    if not text:
        return None
    try:
        return parse_duration(text)
    except ValueError:
        return None


def was_ready(previous: RayServiceStatus) -> bool:
    """The stored status says the service served before (records of earlier releases do not
    say it themselves)."""
    ready = previous.condition(ConditionType.READY)
    return ready is not None and (
        ready.status == ConditionStatus.TRUE or ready.reason == ConditionReason.ZERO_SERVE_ENDPOINTS
    )


def with_clock(
    record: ServiceRecord, previous: RayServiceStatus, generation: int, now: float
) -> ServiceRecord:
    """``record`` with the clock of ``generation``: kept when it runs for that generation,
    started (its earlier verdict dropped) for a new one, gone once the service has served."""
    if record.served or was_ready(previous):
        return record.model_copy(update={"served": True, "initializing": None})
    clock = record.initializing
    if clock is not None and clock.generation == generation:
        return record
    return record.model_copy(
        update={"initializing": Initializing(generation=generation, since=now)}
    )


def timed_out(record: ServiceRecord) -> str | None:
    """The Ready message of the timeout, while it holds for the record's generation."""
    clock = record.initializing
    return None if clock is None else clock.timed_out


def due_at(record: ServiceRecord, timeout: float | None) -> float | None:
    """When the clock runs out; None when no clock runs (served, or no timeout)."""
    clock = record.initializing
    if timeout is None or clock is None or record.served:
        return None
    return clock.since + timeout


def timed_out_message(service: RayService, since: float, now: float, missing: str) -> str:
    """What the Ready condition says: how long it initialized, the timeout, and what was still
    missing (the head, the Serve applications that were not RUNNING, a refused config)."""
    text = service.metadata.annotations.get(AnnotationKey.INITIALIZING_TIMEOUT, "")
    return (
        f"not ready after initializing for {format_seconds(now - since)}"
        f" ({AnnotationKey.INITIALIZING_TIMEOUT}: {text}): {missing}; its clusters are deleted"
        " and nothing is tried again until the spec changes"
    )
