"""ServiceRecord: the controller's memory of one RayService, checkpointed before every action.

Everything the planner needs that cannot be observed again lives here (which cluster is active,
which Serve config was accepted where, the ports of the stable endpoints), so a controller
killed at any line resumes from the store instead of from memory.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ClusterSlot(BaseModel):
    """A cluster the service runs on, with the cluster spec it was created from."""

    name: str
    spec_hash: str
    cluster_spec: dict[str, Any]  # rayClusterConfig as JSON, replica fields included


class Rejection(BaseModel):
    """Ray refused this Serve config on this cluster; do not PUT it again until it changes."""

    config_hash: str
    message: str


class ServiceRecord(BaseModel):
    active: ClusterSlot | None = None
    deployed: dict[str, str] = Field(default_factory=dict)  # cluster -> accepted config hash
    rejected: dict[str, Rejection] = Field(default_factory=dict)
    endpoints: list[str] = Field(default_factory=list)  # node names serving traffic
    serve_port: int = 0
    dashboard_port: int = 0
