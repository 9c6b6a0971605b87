"""An in-memory ClusterProvider for unit tests of the controller and the API.

It keeps clusters in dicts instead of process trees and behaves like LocalProvider as seen
through the protocol: ``ensure`` creates the head and the workers of every group, restarts
failed nodes under the same name (counting restarts), adds or removes workers to match the
requested counts and drops groups that are no longer requested; ``delete`` is idempotent.
Node names follow the real provider's shape (``<cluster>-head-xxxxx`` and
``<cluster>-<group>-worker-xxxxx``), drawn from a seeded generator so runs repeat exactly.

Nothing becomes ready by itself: a test decides when the head answers
(``make_head_ready``), when nodes run (``start_nodes``), which Serve proxies are healthy
(``mark_proxies_ready``) and when a node dies (``kill_node``). Every protocol call is recorded
in ``calls``, and ``fail_next_ensure`` makes the next ``ensure`` raise.
"""

from __future__ import annotations

import hashlib
import random
import string
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rayservice.spec.cluster_request import ClusterRequest, leaving_workers
from rayservice.spec.errors import TemporaryError
from rayservice.spec.observed import NodePhase, NodeRole, ObservedCluster, ObservedNode

HEAD_GROUP = "headgroup"
LOCALHOST = "127.0.0.1"
FIRST_PORT = 20000
PORT_BLOCK = 10  # like the local provider: gcs, dashboard, client ... serve proxy last
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
# what a running node's Serve proxy answers the readiness check, healthy or not (no proxy)
PROXY_ANSWERS = {True: "200 success", False: "connection refused: no Serve proxy listens"}


@dataclass(frozen=True)
class ProviderCall:
    """One protocol call the fake received: the method, the cluster, the request of ensure."""

    method: str
    name: str | None = None
    request: ClusterRequest | None = None


@dataclass
class _Node:
    name: str
    role: NodeRole
    group: str
    base_port: int
    started_at: float
    phase: NodePhase = NodePhase.PENDING
    proxy_ready: bool = False
    restarts: int = 0


@dataclass
class _Cluster:
    request: ClusterRequest
    created_at: float
    base_port: int
    nodes: list[_Node] = field(default_factory=list)
    head_ready: bool = False
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def head(self) -> _Node | None:
        return next((n for n in self.nodes if n.role is NodeRole.HEAD), None)


class FakeProvider:
    """ClusterProvider kept in memory; see the module docstring for the test hooks."""

    def __init__(self, clock: Callable[[], float] = time.time, seed: int = 0) -> None:
        self.calls: list[ProviderCall] = []
        self._clock = clock
        self._random = random.Random(seed)
        self._clusters: dict[str, _Cluster] = {}
        self._next_port = FIRST_PORT
        self._next_error: BaseException | None = None

    # -- ClusterProvider -------------------------------------------------------------------

    def ensure(self, request: ClusterRequest) -> None:
        self.calls.append(ProviderCall("ensure", request.name, request))
        if self._next_error is not None:
            error, self._next_error = self._next_error, None
            raise error
        cluster = self._clusters.get(request.name)
        if cluster is None:
            cluster = _Cluster(request, self._clock(), self._allocate_block())
            self._clusters[request.name] = cluster
        cluster.request = request
        if cluster.head is None:
            self._add_node(cluster, NodeRole.HEAD, HEAD_GROUP)
        head = cluster.head
        head_lost = head is not None and head.phase is NodePhase.FAILED
        for node in cluster.nodes:
            # like the real provider: without fault tolerance a lost head takes its workers
            takes_worker = head_lost and request.fault_tolerance is None
            if node.phase is NodePhase.FAILED or (takes_worker and node.role is NodeRole.WORKER):
                self._restart(cluster, node)
        wanted = {group.group: group.replicas for group in request.workers}
        cluster.nodes = [n for n in cluster.nodes if n.role is NodeRole.HEAD or n.group in wanted]
        for group, replicas in wanted.items():
            members = [n for n in cluster.nodes if n.role is NodeRole.WORKER and n.group == group]
            going = leaving_workers(
                [(n.name, n.started_at) for n in members], replicas, request.workers_to_delete
            )  # as the real provider chooses
            cluster.nodes = [n for n in cluster.nodes if n.name not in going]
            members = [n for n in members if n.name not in going]
            for _ in range(replicas - len(members)):
                self._add_node(cluster, NodeRole.WORKER, group)

    def observe(self, name: str) -> ObservedCluster | None:
        self.calls.append(ProviderCall("observe", name))
        cluster = self._clusters.get(name)
        if cluster is None or cluster.head is None:
            return None
        head = cluster.head
        return ObservedCluster(
            name=name,
            owner=cluster.request.owner,
            spec_hash=cluster.request.spec_hash,
            created_at=cluster.created_at,
            nodes=tuple(self._observed_node(cluster, n) for n in cluster.nodes),
            dashboard_url=dashboard_url(head.base_port),
            head_ready=cluster.head_ready,
            auth_token=f"token-{name}",
            gcs_port=head.base_port,
            client_port=head.base_port + 2,
            fault_tolerant=cluster.request.fault_tolerance is not None,
        )

    def delete(self, name: str) -> None:
        self.calls.append(ProviderCall("delete", name))
        self._clusters.pop(name, None)

    def clusters(self, owner: str | None = None) -> list[str]:
        self.calls.append(ProviderCall("clusters"))
        return sorted(
            name
            for name, cluster in self._clusters.items()
            if owner is None or cluster.request.owner == owner
        )

    def logs(self, name: str, node: str | None = None, tail: int = 200) -> str:
        self.calls.append(ProviderCall("logs", name))
        cluster = self._clusters.get(name)
        if cluster is None:
            raise TemporaryError(f"cluster {name} does not exist")
        chosen = next((n for n in cluster.nodes if n.name == node), None) if node else cluster.head
        if chosen is None:
            valid = ", ".join(n.name for n in cluster.nodes)
            raise TemporaryError(f"cluster {name} has no node {node!r} (nodes: {valid})")
        text = cluster.logs.get(chosen.name, f"{chosen.name} started\n")
        lines = text.splitlines(keepends=True)
        return "".join(lines[-tail:] if tail > 0 else [])

    # -- test hooks ------------------------------------------------------------------------

    def fail_next_ensure(self, error: BaseException) -> None:
        """Make the next ``ensure`` raise ``error`` before it changes anything."""
        self._next_error = error

    def make_head_ready(self, name: str) -> None:
        """The head runs and its dashboard answers."""
        cluster = self._cluster(name)
        head = cluster.head
        assert head is not None
        head.phase = NodePhase.RUNNING
        cluster.head_ready = True

    def start_nodes(self, name: str, nodes: Iterable[str] | None = None) -> None:
        """Nodes (all when ``nodes`` is None) run and have joined the cluster."""
        for node in self._nodes(name, nodes):
            node.phase = NodePhase.RUNNING

    def mark_proxies_ready(
        self, name: str, nodes: Iterable[str] | None = None, ready: bool = True
    ) -> None:
        """Set the Serve proxy health of nodes (all when None); a healthy proxy means the node
        runs, as the real provider only probes proxies of running nodes."""
        for node in self._nodes(name, nodes):
            node.proxy_ready = ready
            if ready:
                node.phase = NodePhase.RUNNING

    def make_ready(self, name: str) -> None:
        """Head answering, every node running with a healthy Serve proxy."""
        self.make_head_ready(name)
        self.mark_proxies_ready(name)

    def kill_node(self, name: str, node: str) -> None:
        """The node's process exits: phase FAILED, proxy gone; a dead head stops answering."""
        [target] = self._nodes(name, [node])
        target.phase = NodePhase.FAILED
        target.proxy_ready = False
        if target.role is NodeRole.HEAD:
            self._clusters[name].head_ready = False

    def set_logs(self, name: str, node: str, text: str) -> None:
        self._cluster(name).logs[node] = text

    def node_names(self, name: str, role: NodeRole | None = None) -> list[str]:
        return [n.name for n in self._cluster(name).nodes if role is None or n.role is role]

    def request_of(self, name: str) -> ClusterRequest:
        """The last request ``ensure`` applied to the cluster."""
        return self._cluster(name).request

    def calls_to(self, method: str) -> list[ProviderCall]:
        return [c for c in self.calls if c.method == method]

    # -- internals -------------------------------------------------------------------------

    def _cluster(self, name: str) -> _Cluster:
        cluster = self._clusters.get(name)
        if cluster is None:
            raise KeyError(f"the fake provider has no cluster {name}")
        return cluster

    def _nodes(self, name: str, names: Iterable[str] | None) -> list[_Node]:
        cluster = self._cluster(name)
        if names is None:
            return list(cluster.nodes)
        by_name = {n.name: n for n in cluster.nodes}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise KeyError(f"cluster {name} has no node(s) {missing}")
        return [by_name[n] for n in names]

    def _allocate_block(self) -> int:
        base = self._next_port
        self._next_port += PORT_BLOCK
        return base

    def _suffix(self) -> str:
        return "".join(self._random.choice(_SUFFIX_ALPHABET) for _ in range(5))

    def _add_node(self, cluster: _Cluster, role: NodeRole, group: str) -> None:
        name = cluster.request.name
        node_name = (
            f"{name}-head-{self._suffix()}"
            if role is NodeRole.HEAD
            else f"{name}-{group}-worker-{self._suffix()}"
        )
        base = cluster.base_port if role is NodeRole.HEAD else self._allocate_block()
        cluster.nodes.append(_Node(node_name, role, group, base, self._clock()))

    def _restart(self, cluster: _Cluster, node: _Node) -> None:
        node.phase = NodePhase.PENDING
        node.proxy_ready = False
        node.restarts += 1
        node.started_at = self._clock()
        if node.role is NodeRole.HEAD:
            cluster.head_ready = False

    def _observed_node(self, cluster: _Cluster, node: _Node) -> ObservedNode:
        request = cluster.request
        group = (
            request.head
            if node.role is NodeRole.HEAD
            else next((g for g in request.workers if g.group == node.group), request.head)
        )
        running = node.phase is NodePhase.RUNNING
        return ObservedNode(
            name=node.name,
            role=node.role,
            group=node.group,
            phase=node.phase,
            proxy_port=node.base_port + PORT_BLOCK - 1,
            proxy_ready=node.proxy_ready and node.phase is NodePhase.RUNNING,
            restarts=node.restarts,
            started_at=node.started_at,
            num_cpus=group.num_cpus,
            num_gpus=group.num_gpus,
            memory_bytes=group.memory_bytes or 0,
            custom_resources=tuple(sorted(group.custom_resources.items())),
            node_id=node_id(node.name) if running else "",
            proxy_answer=(
                (
                    "200 success"
                    if node.proxy_ready
                    else "connection refused: no Serve proxy listens"
                )
                if running
                else ""
            ),
        )


def node_id(pod: str) -> str:
    """The Ray node id the fake gives the node of pod ``pod`` once it runs (56 hex digits)."""
    return hashlib.sha256(pod.encode()).hexdigest()[:56]


def dashboard_url(base_port: int) -> str:
    """The dashboard of a head whose port block starts at ``base_port``."""
    return f"http://{LOCALHOST}:{base_port + 1}"
