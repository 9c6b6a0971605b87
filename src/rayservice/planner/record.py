"""ServiceRecord: the controller's memory of one RayService, checkpointed before every action.

Everything the planner needs that cannot be observed again lives here: the rollout phase with
the active and pending cluster slots and their timers, the initializing timeout's clock, which
Serve config each cluster accepted, the actions that failed and when they may be tried again,
the ports of the stable endpoints. A controller killed at any line resumes from the store
instead of from memory.

Records written by an earlier release load too (:func:`load_record`): their cluster hashes are
computed again by this release, so upgrading rayservice never looks like a cluster change, with
one deliberate exception: a cluster whose spec takes values from Secrets or ConfigMaps was
started, by a release that did not resolve them, without those values; it is replaced (as its
upgradeStrategy says) by one that has them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rayservice import __version__
from rayservice.spec.hashing import cluster_spec_hash
from rayservice.spec.manifest import RayClusterSpec
from rayservice.spec.vocabulary import FULL_CAPACITY, LOCALHOST, FailureKind, RolloutPhase

FIRST_RELEASE = "0.1.0"  # records without a version stamp were written by it


class ClusterSlot(BaseModel):
    """A cluster the service runs on (active) or is moving to (pending), with the cluster
    spec it was created from and the Serve config it is to run."""

    name: str
    spec_hash: str
    hashed_by: str = FIRST_RELEASE  # the release whose hashing computed spec_hash
    cluster_spec: dict[str, Any]  # rayClusterConfig as JSON, replica fields included
    serve_config: dict[str, Any] | None = None  # None: the service's current serveConfigV2
    created_at: float = 0.0  # when the planner first asked for it (the pending timeout)
    target_capacity: int | None = None  # Serve target_capacity given to it (None: full)
    traffic_percent: int = FULL_CAPACITY  # its share of <name>-serve-svc

    @property
    def capacity(self) -> int:
        return FULL_CAPACITY if self.target_capacity is None else self.target_capacity


class Retiring(BaseModel):
    """A replaced cluster kept alive until ``delete_at`` (rayClusterDeletionDelaySeconds), so
    requests still in flight on it finish. Stored, so a restart neither resets nor forgets it."""

    name: str
    delete_at: float
    reason: str


class GivenUp(BaseModel):
    """An upgrade that timed out: not retried until the cluster spec or Serve config changes."""

    spec_hash: str
    hashed_by: str = FIRST_RELEASE
    cluster_spec: dict[str, Any] = Field(default_factory=dict)  # empty in 0.1.0 records
    config_hash: str
    reason: str


class Initializing(BaseModel):
    """The ``ray.io/initializing-timeout`` clock of a service that has never served.

    ``since`` is when the planner first planned ``generation`` (for the first apply, when the
    service's first cluster was asked for); a new generation (a changed spec: cluster, Serve
    config or any other field) starts the clock over. ``timed_out`` is the Ready message once
    the service was not ready in time: its clusters are deleted and nothing is tried again for
    that generation.
    """

    generation: int
    since: float
    timed_out: str | None = None


class ActionFailure(BaseModel):
    """The last failure of one action (e.g. the Serve config PUT to one cluster).

    ``fingerprint`` says what was attempted: the planner holds the same action back while its
    fingerprint is unchanged, until ``retry_at`` for a temporary error and for good otherwise.
    Anything that changes the action (a new config, a new token, another front) tries again.
    """

    fingerprint: str
    kind: FailureKind
    message: str
    attempts: int = 1
    since: float = 0.0  # the first failure of this run of failures
    retry_at: float | None = None  # temporary errors only


class PodReadiness(BaseModel):
    """A pod's readiness as last seen: since when it holds, why not when it is not (and since
    when that reason holds), and whether an event said so."""

    ready: bool
    since: float
    reason: str = ""
    reason_since: float = 0.0
    reported: bool = False
    was_ready: bool = False  # it was ready once: it is not starting any more


class ServiceRecord(BaseModel):
    phase: RolloutPhase = RolloutPhase.STEADY
    active: ClusterSlot | None = None
    pending: ClusterSlot | None = None
    retiring: list[Retiring] = Field(default_factory=list)
    rolled_back: list[str] = Field(default_factory=list)  # dropped pending clusters not yet gone
    given_up: GivenUp | None = None
    served: bool = False  # it had a serve endpoint once: no initializing timeout any more
    initializing: Initializing | None = None  # the initializing clock while it never served
    last_step_at: float = 0.0  # last traffic or capacity step of an incremental upgrade
    deployed: dict[str, str] = Field(default_factory=dict)  # cluster -> accepted config hash
    # cluster -> Serve capacity of the accepted config (None: full), to tell why a PUT goes out
    deployed_capacity: dict[str, int | None] = Field(default_factory=dict)
    failures: dict[str, ActionFailure] = Field(default_factory=dict)  # action key -> failure
    endpoints: list[str] = Field(default_factory=list)  # node names serving traffic
    # when a service that served lost its last serve endpoint (None while it has one)
    outage_since: float | None = None
    # clusters whose Serve started again from nothing (a head restarted without GCS fault
    # tolerance) and has no RUNNING app yet: the front sends them nothing meanwhile
    serve_restarting: list[str] = Field(default_factory=list)
    # what the cluster spec refers to and is not there, as last reported (a Warning is
    # recorded when this changes)
    missing_references: list[str] = Field(default_factory=list)
    pod_readiness: dict[str, PodReadiness] = Field(default_factory=dict)  # pod name -> readiness
    serve_port: int = 0
    # the serve port the manifest asked for (or preferred; 0: neither) when serve_port was
    # chosen: a preference that changes moves the port, one that was taken then and is free now
    # does not; None in a record of an earlier release, which moves nothing
    serve_port_asked: int | None = None
    dashboard_port: int = 0
    dashboard_port_asked: int | None = None  # as serve_port_asked, for the head Service
    # where the fronts listen: loopback unless the Service's type asks to be reachable from
    # other hosts and the controller's settings allow it (spec.service_exposure)
    serve_address: str = LOCALHOST
    dashboard_address: str = LOCALHOST

    @property
    def target(self) -> ClusterSlot | None:
        """The slot that is to run the desired Serve config: the pending one during an
        upgrade, else (also while a rollback steps traffic back) the active one."""
        if self.pending is not None and not self.rolling_back:
            return self.pending
        return self.active

    @property
    def rolling_back(self) -> bool:
        """True while traffic steps back from a pending cluster to the active one."""
        return self.pending is not None and self.phase is RolloutPhase.ROLLING_BACK

    @property
    def stepping(self) -> bool:
        """True while both clusters share traffic in steps (an incremental upgrade or its
        rollback): the front weighs them and Serve capacities follow the steps."""
        return self.pending is not None and self.phase in (
            RolloutPhase.STEPPING,
            RolloutPhase.ROLLING_BACK,
        )


def failure_key(action: str, target: str) -> str:
    """How the failures of one action on one target are filed, e.g. DeployServeConfig/<cluster>."""
    return f"{action}/{target}"


def load_record(stored: dict[str, Any]) -> ServiceRecord:
    """The record as this release reads it, from what any release stored.

    Release 0.1.0 marked a rollback on the pending slot (``rolling_back``), told an
    incremental upgrade by the pending slot's capacity, and kept refused configs apart
    (``rejected``). Cluster hashes computed by another release are computed again here.
    """
    raw = dict(stored)
    pending = raw.get("pending")
    if "phase" not in raw and raw.get("active") is not None:
        raw["phase"] = _phase_of_first_release(raw)
    if isinstance(pending, dict):
        raw["pending"] = {k: v for k, v in pending.items() if k != "rolling_back"}
    failures = dict(raw.get("failures") or {})
    for cluster, rejection in (raw.pop("rejected", None) or {}).items():
        failures[failure_key("DeployServeConfig", cluster)] = {
            "fingerprint": rejection["config_hash"],
            "kind": FailureKind.REJECTED,
            "message": rejection["message"],
        }
    raw["failures"] = failures
    return _rehashed(ServiceRecord.model_validate(raw))


def _phase_of_first_release(raw: dict[str, Any]) -> RolloutPhase:
    pending = raw.get("pending")
    if isinstance(pending, dict):
        if pending.get("rolling_back"):
            return RolloutPhase.ROLLING_BACK
        stepped = pending.get("target_capacity") is not None
        return RolloutPhase.STEPPING if stepped else RolloutPhase.STARTING
    if raw.get("rolled_back"):
        return RolloutPhase.ROLLING_BACK
    if raw.get("given_up"):
        return RolloutPhase.GIVEN_UP
    return RolloutPhase.STEADY


def _rehashed(record: ServiceRecord) -> ServiceRecord:
    """Cluster hashes as this release computes them. A later release may model more fields
    (with defaults) and so hash the same spec differently; comparing its hash with one stored
    by an earlier release would start a new cluster for nothing."""
    slots = {}
    for field in ("active", "pending"):
        slot = getattr(record, field)
        if slot is not None and slot.hashed_by != __version__:
            slots[field] = slot.model_copy(
                update={"spec_hash": rehash(slot.cluster_spec), "hashed_by": __version__}
            )
    given_up = record.given_up
    if given_up is not None and given_up.hashed_by != __version__:
        # 0.1.0 kept no spec with it; its hashing is this release's, so its hash stands
        spec_hash = rehash(given_up.cluster_spec) if given_up.cluster_spec else given_up.spec_hash
        slots["given_up"] = given_up.model_copy(
            update={"spec_hash": spec_hash, "hashed_by": __version__}
        )
    return record.model_copy(update=slots) if slots else record


def rehash(cluster_spec: dict[str, Any]) -> str:
    """The hash this release gives a stored cluster spec (loaded as leniently as it was
    written: the models keep fields they do not know)."""
    return cluster_spec_hash(RayClusterSpec.model_validate(cluster_spec))
