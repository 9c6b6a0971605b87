"""ServiceRecord: the controller's memory of one RayService, checkpointed before every action.

Everything the planner needs that cannot be observed again lives here (which cluster is active,
which Serve config was accepted where, the ports of the stable endpoints), so a controller
killed at any line resumes from the store instead of from memory.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ClusterSlot(BaseModel):
    """A cluster the service runs on (active) or is moving to (pending), with the cluster
    spec it was created from and the Serve config it is to run."""

    name: str
    spec_hash: str
    cluster_spec: dict[str, Any]  # rayClusterConfig as JSON, replica fields included
    serve_config: dict[str, Any] | None = None  # None: the service's current serveConfigV2
    created_at: float = 0.0  # when the planner first asked for it (the pending timeout)
    target_capacity: int | None = None  # Serve target_capacity given to it (incremental)
    traffic_percent: int = 100  # its share of <name>-serve-svc
    rolling_back: bool = False  # pending only: the spec went back; traffic steps back first


class Retiring(BaseModel):
    """A replaced cluster kept alive until ``delete_at`` (rayClusterDeletionDelaySeconds), so
    requests still in flight on it finish. Stored, so a restart neither resets nor forgets it."""

    name: str
    delete_at: float
    reason: str


class GivenUp(BaseModel):
    """An upgrade that timed out: not retried until the cluster spec or Serve config changes."""

    spec_hash: str
    config_hash: str
    reason: str


class Rejection(BaseModel):
    """Ray refused this Serve config on this cluster; do not PUT it again until it changes."""

    config_hash: str
    message: str


class ServiceRecord(BaseModel):
    active: ClusterSlot | None = None
    pending: ClusterSlot | None = None
    retiring: list[Retiring] = Field(default_factory=list)
    rolled_back: list[str] = Field(default_factory=list)  # dropped pending clusters not yet gone
    given_up: GivenUp | None = None
    last_step_at: float = 0.0  # last traffic or capacity step of an incremental upgrade
    deployed: dict[str, str] = Field(default_factory=dict)  # cluster -> accepted config hash
    # cluster -> Serve capacity of the accepted config (None: full), to tell why a PUT goes out
    deployed_capacity: dict[str, int | None] = Field(default_factory=dict)
    rejected: dict[str, Rejection] = Field(default_factory=dict)
    endpoints: list[str] = Field(default_factory=list)  # node names serving traffic
    serve_port: int = 0
    dashboard_port: int = 0
