"""What the wait helpers wait for, and the bookkeeping of a wait, without the waiting itself.

A :class:`Target` names the call to poll, when its answer means done, how to describe an
answer to a person, and which errors only mean "not yet". A :class:`Waiting` keeps the
deadline and what was seen last, tells the progress callback about each change, and raises
:class:`WaitTimeout` with the last thing seen. The sync and the async client each add only
the loop: send, let :class:`Waiting` judge, sleep what it says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from rayservice.client import kuberay
from rayservice.client.calls import Call
from rayservice.client.errors import AlreadyExists, ApiError, Conflict, WaitTimeout
from rayservice.spec.apiserver import (
    Cluster,
    ClusterEvent,
    JobSubmissionInfo,
    ServeApplicationsReply,
)
from rayservice.spec.vocabulary import ApplicationStatus

T = TypeVar("T")

READY = "ready"  # the clusterState of a cluster whose head and workers all run
TERMINAL_JOB_STATUSES = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
DEFAULT_INTERVAL = 1.0

Progress = Callable[[str], None]
"""Called with a one-line description each time what a wait sees changes."""


def not_yet(error: ApiError) -> bool:
    """Errors that may pass while a cluster comes up: a refused precondition (Serve not up
    yet) and server-side failures. Missing objects, refused tokens and invalid requests end
    the wait, as does a controller that does not answer at all."""
    if isinstance(error, Conflict):
        return not isinstance(error, AlreadyExists)
    return error.status is not None and error.status >= 500


@dataclass(frozen=True)
class Target(Generic[T]):
    what: str  # "cluster default/demo to be ready"
    call: Call[T]
    judge: Callable[[T], tuple[bool, str]]  # done, and what was seen
    tolerates: Callable[[ApiError], bool] = not_yet


class Waiting(Generic[T]):
    """One wait in progress."""

    def __init__(
        self,
        target: Target[T],
        timeout: float,
        interval: float,
        now: float,
        on_progress: Progress | None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.interval = interval
        self.deadline = now + timeout
        self.on_progress = on_progress
        self.last_seen = "no answer yet"
        self._told: str | None = None

    def answered(self, value: T) -> bool:
        """Whether ``value`` ends the wait."""
        done, seen = self.target.judge(value)
        self._saw(seen)
        return done

    def failed(self, error: ApiError) -> None:
        """Re-raises ``error`` unless it only means "not yet"."""
        if not self.target.tolerates(error):
            raise error
        self._saw(f"{error.__class__.__name__} ({error.message})")

    def pause(self, now: float) -> float:
        """How long to sleep before the next poll; raises :class:`WaitTimeout` past the
        deadline."""
        remaining = self.deadline - now
        if remaining <= 0:
            raise WaitTimeout(self.target.what, self.timeout, self.last_seen)
        return min(self.interval, remaining)

    def _saw(self, seen: str) -> None:
        self.last_seen = seen
        if seen != self._told and self.on_progress is not None:
            self.on_progress(seen)
        self._told = seen


def cluster_ready(namespace: str, name: str) -> Target[Cluster]:
    return Target(
        f"cluster {namespace}/{name} to be ready",
        kuberay.get_cluster(namespace, name),
        _judge_cluster,
    )


def _judge_cluster(cluster: Cluster) -> tuple[bool, str]:
    state = cluster.cluster_state or ""
    seen = f"clusterState {state or '(none yet)'}"
    told = [e for e in cluster.events or [] if e.reason or e.message]
    if told:
        latest = max(told, key=_event_time)
        seen += f"; last event: {' '.join(filter(None, (latest.reason, latest.message)))}"
    return state.lower() == READY, seen


def _event_time(event: ClusterEvent) -> float:
    when = event.last_timestamp or event.first_timestamp or event.created_at
    return when.timestamp() if when is not None else 0.0


def serve_applications_running(namespace: str, cluster: str) -> Target[ServeApplicationsReply]:
    return Target(
        f"every Serve application of cluster {namespace}/{cluster} to be RUNNING",
        kuberay.get_serve_applications(namespace, cluster),
        _judge_applications,
    )


def _judge_applications(reply: ServeApplicationsReply) -> tuple[bool, str]:
    applications = reply.applications or {}
    if not applications:
        return False, "no Serve applications yet"
    parts = []
    for name, app in sorted(applications.items()):
        part = f"{name} {app.status or 'UNKNOWN'}"
        if app.status != ApplicationStatus.RUNNING and app.message:
            part += f" ({app.message})"
        parts.append(part)
    done = all(app.status == ApplicationStatus.RUNNING for app in applications.values())
    return done, ", ".join(parts)


def job_finished(namespace: str, cluster: str, submission_id: str) -> Target[JobSubmissionInfo]:
    return Target(
        f"job {submission_id} on cluster {namespace}/{cluster} to finish",
        kuberay.get_job(namespace, cluster, submission_id),
        _judge_job,
    )


def _judge_job(job: JobSubmissionInfo) -> tuple[bool, str]:
    status = job.status or "UNKNOWN"
    seen = f"status {status}" + (f" ({job.message})" if job.message else "")
    return status in TERMINAL_JOB_STATUSES, seen
