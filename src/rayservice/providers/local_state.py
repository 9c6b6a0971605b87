"""On-disk state of the local provider: one ``cluster.json`` per cluster.

The provider keeps what it needs to adopt running nodes after a controller restart (pids with
their start times, ports, restart counts, the auth token) next to the cluster's logs, written
atomically so a crash mid-write never leaves a half file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

from rayservice.spec.cluster_request import ClusterRequest


class NodePorts(BaseModel):
    """One node's port block; head-only ports are 0 on workers."""

    gcs: int = 0
    dashboard: int = 0
    client: int = 0
    agent_listen: int
    metrics: int
    node_manager: int
    object_manager: int
    runtime_env_agent: int
    agent_grpc: int
    serve_proxy: int

    def all(self) -> list[int]:
        return [p for p in self.model_dump().values() if p]


class NodeRecord(BaseModel):
    name: str
    role: str  # head | worker
    group: str
    ports: NodePorts
    temp_dir: str
    log_file: str
    pid: int = 0
    ticks: int | None = None  # process start time, to tell a reused pid apart
    started_at: float = 0.0
    restarts: int = 0
    # how its last process ended (exit code, or minus the signal; None: not known) and the
    # last line of its log then, kept across the restart
    last_exit_code: int | None = None
    last_words: str = ""


class AutoscalerRecord(BaseModel):
    """Ray's autoscaler (its monitor process) running beside the head of the cluster."""

    log_file: str
    pid: int = 0
    ticks: int | None = None
    started_at: float = 0.0
    restarts: int = 0
    api_digest: str = ""  # of the API address and token it was started with


class ClusterRecord(BaseModel):
    name: str
    owner: str
    token: str
    created_at: float
    request: ClusterRequest
    nodes: list[NodeRecord] = Field(default_factory=list)
    autoscaler: AutoscalerRecord | None = None

    @property
    def head(self) -> NodeRecord | None:
        return next((n for n in self.nodes if n.role == "head"), None)


def load_record(path: Path) -> ClusterRecord | None:
    try:
        return ClusterRecord.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None


def save_record(path: Path, record: ClusterRecord) -> None:
    """Write the record atomically, readable by its owner only: the request holds the nodes'
    environments and the Redis password, which may come from Secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(json.dumps(record.model_dump(mode="json"), indent=2))
    os.chmod(tmp, 0o600)  # a file left by an earlier write keeps its mode through O_CREAT
    os.replace(tmp, path)
