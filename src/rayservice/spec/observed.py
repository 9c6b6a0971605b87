"""What the adapters report about the outside world, as plain immutable values.

The planner decides from these values alone, so they live in the bottom layer where every
adapter (cluster provider, Serve client, traffic front) can produce them and the planner can
read them without importing any IO code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rayservice.spec.vocabulary import LOCALHOST


class NodeRole(StrEnum):
    HEAD = "head"
    WORKER = "worker"


class NodePhase(StrEnum):
    """Lifecycle of one node's process tree, named like a Kubernetes pod phase."""

    PENDING = "Pending"  # started, not yet answering
    RUNNING = "Running"  # process alive
    FAILED = "Failed"  # process gone; the provider restarts it on the next ensure


@dataclass(frozen=True)
class ObservedNode:
    """One Ray node (a "pod"): its process, its Serve proxy and how often it restarted."""

    name: str
    role: NodeRole
    group: str  # "headgroup" for the head, else the worker group name
    phase: NodePhase
    proxy_port: int  # where this node's Serve proxy listens (127.0.0.1)
    proxy_ready: bool  # GET /-/healthz answered 200 "success"
    restarts: int
    started_at: float  # unix seconds of the current process start
    num_cpus: float = 0.0
    num_gpus: float = 0.0
    memory_bytes: int = 0
    custom_resources: tuple[tuple[str, float], ...] = ()
    # how its process ended, for a node whose process is gone, else its last one before a
    # restart: the last line of its log, and its exit code (minus the signal that killed it;
    # None when not known)
    last_words: str = ""
    last_exit_code: int | None = None
    node_id: str = ""  # Ray's id of the node, once the head lists it as alive
    # the readiness check's last answer: what the Serve proxy said to GET /-/healthz ("" when
    # it was not asked: the node is not running, or the head cannot be asked)
    proxy_answer: str = ""
    log_files: tuple[str, ...] = ()  # where the node's output and Ray's logs are


@dataclass(frozen=True)
class ObservedCluster:
    """A Ray cluster as the provider sees it right now."""

    name: str
    owner: str  # "<namespace>/<name>" of the RayService it belongs to
    spec_hash: str  # the hash the cluster was created from (see spec.hashing)
    created_at: float
    nodes: tuple[ObservedNode, ...]
    dashboard_url: str  # http://127.0.0.1:<port>
    head_ready: bool  # the dashboard answered with our token
    auth_token: str
    gcs_port: int = 0
    client_port: int = 0
    fault_tolerant: bool = False  # its GCS state outlives the head (workers keep serving)
    storage_problem: str | None = None  # why the Redis keeping its GCS state is out of reach
    # Ray's autoscaler beside the head: running or not; None when the cluster has none (or
    # while it waits out a restart's back-off)
    autoscaler_running: bool | None = None
    # the (group, min, max) bounds the autoscaler's config holds
    autoscaler_bounds: tuple[tuple[str, int, int], ...] = ()
    # what its autoscaler last asked, as the cluster itself holds it (a ScaleRequest's JSON;
    # None where the asks reach the controller's API instead, as here)
    autoscaler_request: Mapping[str, Any] | None = None
    # where its nodes' Serve proxies must listen to be reached: loopback here, every
    # interface in a pod (Services and the API server's proxy come from outside it)
    proxy_host: str = LOCALHOST

    @property
    def head(self) -> ObservedNode | None:
        return next((n for n in self.nodes if n.role is NodeRole.HEAD), None)

    @property
    def workers(self) -> tuple[ObservedNode, ...]:
        return tuple(n for n in self.nodes if n.role is NodeRole.WORKER)

    @property
    def serve_endpoints(self) -> tuple[ObservedNode, ...]:
        """Nodes whose Serve proxy is healthy: the only ones that get traffic."""
        return tuple(n for n in self.nodes if n.proxy_ready and n.phase is NodePhase.RUNNING)


@dataclass(frozen=True)
class Replica:
    """One replica of a deployment, and the node it was placed on."""

    state: str  # STARTING, UPDATING, RECOVERING, RUNNING, STOPPING, PENDING_MIGRATION
    node_id: str = ""  # Ray's id of its node ("" until Ray placed it)
    replica_id: str = ""


@dataclass(frozen=True)
class DeploymentState:
    name: str
    status: str  # UPDATING, HEALTHY, UNHEALTHY, UPSCALING, DOWNSCALING, DEPLOY_FAILED
    message: str = ""
    replicas: tuple[Replica, ...] = ()


@dataclass(frozen=True)
class AppState:
    name: str
    status: str  # NOT_STARTED, DEPLOYING, DEPLOY_FAILED, RUNNING, UNHEALTHY, DELETING
    message: str = ""
    route_prefix: str | None = None
    deployments: tuple[DeploymentState, ...] = ()


@dataclass(frozen=True)
class ServeState:
    """The answer of GET /api/serve/applications/ on one cluster."""

    apps: tuple[AppState, ...] = ()
    target_capacity: float | None = None
    # Ray's id of each node with a Serve proxy, and the proxy's status there (STARTING,
    # HEALTHY, UNHEALTHY, DRAINING, DRAINED); a node missing here runs no proxy
    proxies: tuple[tuple[str, str], ...] = ()
    proxy_location: str = ""  # Serve's: EveryNode (the default), HeadOnly or Disabled

    def app(self, name: str) -> AppState | None:
        return next((a for a in self.apps if a.name == name), None)


DEFAULT_BACKEND_WEIGHT = 100  # HAProxy's scale is 0-256; traffic splits set their own


@dataclass(frozen=True)
class Backend:
    """One server behind a traffic front."""

    name: str
    host: str
    port: int
    weight: int = DEFAULT_BACKEND_WEIGHT
    # a node that cannot serve now (its process or its head is gone): kept in the front but
    # sent nothing, so its leaving and coming back change the front without a reload
    drained: bool = False
    cluster: str = ""  # the cluster the node is of (a Kubernetes front selects clusters)


@dataclass(frozen=True)
class FrontSpec:
    """What a RayService's stable endpoints should point at.

    ``serve_port`` is the serve Service's (HTTP, health-checked with GET /-/healthz; 0 for a
    RayCluster without one); ``dashboard_port`` is the head Service's (the head's dashboard).
    Each listens on its address: loopback unless its Service is to be reachable from other hosts.
    """

    serve_port: int
    dashboard_port: int
    serve_backends: tuple[Backend, ...] = ()
    dashboard_backend: Backend | None = None
    serve_address: str = LOCALHOST
    dashboard_address: str = LOCALHOST
    # each cluster's percent of the serve traffic, the active one first (a Kubernetes front
    # selects and weighs clusters; HAProxy has its servers' weights)
    shares: tuple[tuple[str, int], ...] = ()

    @property
    def active_cluster(self) -> str:
        """The cluster the Services select ('' before there is one)."""
        return self.shares[0][0] if self.shares else ""

    @property
    def has_serve(self) -> bool:
        return self.serve_port != 0

    @property
    def listeners(self) -> tuple[tuple[str, int], ...]:
        """The (address, port) pairs the front listens on."""
        serve = ((self.serve_address, self.serve_port),) if self.has_serve else ()
        return (*serve, (self.dashboard_address, self.dashboard_port))

    @property
    def listen_ports(self) -> tuple[int, ...]:
        """The ports the front listens on."""
        return tuple(port for _, port in self.listeners)


@dataclass(frozen=True)
class FrontState:
    """A running front: the spec it currently serves and the pid that serves it."""

    spec: FrontSpec
    pid: int
    healthy_backends: tuple[str, ...] = field(default=())
    degraded: str | None = None  # why it serves with less than its full set of processes
    # each Service's own address where Services have one (Kubernetes: its clusterIP); none
    # here, where a Service is a listener of this machine
    service_addresses: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Observed:
    """Everything observed for one RayService in one pass: the input the planner decides on."""

    clusters: Mapping[str, ObservedCluster]  # every cluster the provider holds for the service
    serve: Mapping[str, ServeState]  # clusters whose Serve status could be read
    front: FrontState | None
