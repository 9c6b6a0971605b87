"""LocalProvider: Ray clusters as supervised process trees on this machine.

Each node is ``ray start --block`` in its own process session, with its own port block,
temp dir and log file, started detached so it outlives the controller. ``ensure`` acts like a
kubelet plus a ReplicaSet: it starts missing nodes, restarts dead ones (with back-off, counting
restarts) and removes surplus workers. All nodes use the loopback address 127.0.0.2 (Ray turns
127.0.0.1 into the host's outward address, 127.0.0.2 it keeps), dashboards and Serve proxies
bind 127.0.0.1, and Ray's token authentication is on with a per-cluster secret.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import string
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

from rayservice.host.ports import LOOPBACK, port_is_free
from rayservice.host.processes import (
    exit_status,
    is_alive,
    reap_children,
    start_session,
    start_ticks,
    stop_sessions,
)
from rayservice.providers import probes, ray_autoscaler
from rayservice.providers.local_state import (
    ClusterRecord,
    NodePorts,
    NodeRecord,
    load_record,
    save_record,
)
from rayservice.providers.ray_autoscaler import ApiAccess
from rayservice.providers.redis import ManagedRedis, RedisEndpoint, delete_namespace, reachable
from rayservice.spec.cluster_request import (
    ClusterRequest,
    FaultTolerance,
    NodeGroupRequest,
    bounds_of,
    leaving_workers,
)
from rayservice.spec.errors import TemporaryError
from rayservice.spec.fault_tolerance import (
    REDIS_ADDRESS_ENV,
    STORAGE_NAMESPACE_ENV,
    redis_location,
)
from rayservice.spec.observed import NodePhase, NodeRole, ObservedCluster, ObservedNode
from rayservice.spec.vocabulary import HEAD_GROUP, GcsBackend

NODE_IP = "127.0.0.2"
LOCALHOST = LOOPBACK
PORT_RANGE_START = 20000
PORT_RANGE_END = 32000  # below the kernel's ephemeral range, so Ray's random ports never hit it
PORT_BLOCK = 10
RESTART_BACKOFF_MAX = 60.0
WORKER_GCS_RECONNECT_SECONDS = "600"  # fault-tolerant clusters: survive a long head outage


_log = logging.getLogger(__name__)


def _uses_managed_redis(record: ClusterRecord) -> bool:
    ft = record.request.fault_tolerance
    return ft is not None and ft.managed_redis


def _fault_tolerant_worker(record: ClusterRecord, node: NodeRecord) -> bool:
    """A worker that outlives its head (and rejoins the restarted one): while the head cannot
    be asked, its Serve proxy answering is what says it still serves."""
    ft = record.request.fault_tolerance is not None
    return ft and node.role == NodeRole.WORKER.value


LAST_WORDS_BYTES = 4096


def _last_line(log: Path) -> str:
    """The last non-empty line of a node's log (what `ray start` printed before it ended)."""
    try:
        with log.open("rb") as text:
            text.seek(max(0, log.stat().st_size - LAST_WORDS_BYTES))
            lines = text.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def runtime_root(home: Path) -> Path:
    """Where the nodes of clusters under ``home`` keep Ray's temp dirs. Ray's unix sockets
    live there and their paths must stay short, so it is a hashed folder in /tmp."""
    digest = hashlib.sha1(str(home.resolve()).encode()).hexdigest()[:6]
    return Path(tempfile.gettempdir()) / f"rs-{digest}"


def _suffix(length: int = 5) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


@cache
def _flag_options() -> frozenset[str]:
    """``ray start`` options that take no value (``--disable-usage-stats`` and the like)."""
    from ray.scripts.scripts import start  # imported late: loading ray takes a second

    return frozenset(
        opt.lstrip("-") for p in start.params if getattr(p, "is_flag", False) for opt in p.opts
    )


def _user_param_args(params: dict[str, str]) -> list[str]:
    args = []
    for key, value in sorted(params.items()):
        if key in _flag_options():
            if value.strip().lower() in ("true", "1", "yes", ""):
                args.append(f"--{key}")
        else:
            args.append(f"--{key}={value.strip(chr(34))}")
    return args


# the port of NodePorts each fixable ray start option sets (spec.ignored.FIXED_PORT_PARAMS)
PORT_OF_OPTION = {"metrics-export-port": "metrics", "dashboard-agent-listen-port": "agent_listen"}


def _with_fixed_ports(ports: NodePorts, fixed: Mapping[str, int]) -> NodePorts:
    """The head's port block with the ports its request fixes in place of the chosen ones."""
    return ports.model_copy(update={PORT_OF_OPTION[option]: port for option, port in fixed.items()})


STOP_GRACE_SECONDS = 5.0  # a node asked to stop may finish what it does
# A node whose process died, or a worker whose head is gone without fault tolerance, has
# nothing left to finish: what is left of it goes at once, so its ports are free for the
# restart and a request its proxy holds fails over now instead of seconds later.
LOST_NODE_GRACE_SECONDS = 0.0
RAY_ADDRESS_FILE = "ray_current_cluster"  # where `ray start` records its GCS address
GCS_STORAGE_FOLDER = "gcs-storage"  # embedded RocksDB GCS state, in the cluster's folder


class LocalProvider:
    """ClusterProvider on local processes; state lives under ``home/clusters``."""

    def __init__(
        self,
        home: Path,
        ray_executable: Path | None = None,
        *,
        autoscaler_api: ApiAccess | None = None,
    ) -> None:
        """``autoscaler_api``: where the node provider of a cluster's Ray autoscaler reaches
        the controller; without it no autoscaler runs (``enableInTreeAutoscaling`` or not)."""
        self._api = autoscaler_api
        self._root = home / "clusters"
        self._root.mkdir(parents=True, exist_ok=True)
        self._ray = ray_executable or Path(sys.executable).parent / "ray"
        self._temp_root = runtime_root(home)
        self._probes = probes.NodeProbes()
        self._redis = ManagedRedis(home)

    # -- records ---------------------------------------------------------------------------

    def _record_path(self, name: str) -> Path:
        return self._root / name / "cluster.json"

    def _records(self) -> Iterator[ClusterRecord]:
        for path in sorted(self._root.glob("*/cluster.json")):
            record = load_record(path)
            if record is not None:
                yield record

    def _taken_ports(self) -> set[int]:
        return {port for r in self._records() for n in r.nodes for port in n.ports.all()}

    def _allocate_ports(self, taken: set[int]) -> NodePorts:
        for base in range(PORT_RANGE_START, PORT_RANGE_END, PORT_BLOCK):
            block = range(base, base + PORT_BLOCK)
            # without SO_REUSEADDR: Ray's many listeners are not all known to set it, so a port
            # with connections lingering in TIME_WAIT counts as taken
            if taken.isdisjoint(block) and all(
                port_is_free(p, LOCALHOST, reuse_address=False) for p in block
            ):
                taken.update(block)
                return NodePorts(
                    gcs=base,
                    dashboard=base + 1,
                    client=base + 2,
                    agent_listen=base + 3,
                    metrics=base + 4,
                    node_manager=base + 5,
                    object_manager=base + 6,
                    runtime_env_agent=base + 7,
                    agent_grpc=base + 8,
                    serve_proxy=base + 9,
                )
        raise TemporaryError(
            f"no free block of {PORT_BLOCK} ports between {PORT_RANGE_START} and {PORT_RANGE_END}"
        )

    def _new_node(self, record: ClusterRecord, role: NodeRole, group: str) -> NodeRecord:
        name = (
            f"{record.name}-head-{_suffix()}"
            if role is NodeRole.HEAD
            else f"{record.name}-{group}-worker-{_suffix()}"
        )
        ports = self._allocate_ports(
            self._taken_ports() | {p for n in record.nodes for p in n.ports.all()}
        )
        if role is NodeRole.WORKER:
            ports = ports.model_copy(update={"gcs": 0, "dashboard": 0, "client": 0})
        node = NodeRecord(
            name=name,
            role=role.value,
            group=group,
            ports=ports,
            temp_dir=str(self._temp_root / _suffix(8)),
            log_file=str(self._root / record.name / "logs" / f"{name}.log"),
        )
        record.nodes.append(node)
        return node

    # -- ClusterProvider -------------------------------------------------------------------

    def ensure(self, request: ClusterRequest) -> None:
        path = self._record_path(request.name)
        record = load_record(path)
        ft = request.fault_tolerance
        if ft is not None and ft.managed_redis:
            redis = self._redis.ensure()  # started again here when it died
            if record is None:  # a new cluster starts with no GCS state of an old one
                delete_namespace(redis, ft.storage_namespace)
        record = record or ClusterRecord(
            name=request.name,
            owner=request.owner,
            token=secrets.token_hex(24),
            created_at=time.time(),
            request=request,
        )
        record.request = request
        head = record.head
        if head is None:
            head = self._new_node(record, NodeRole.HEAD, HEAD_GROUP)
            head.ports = _with_fixed_ports(head.ports, request.head.fixed_ports)
        save_record(path, record)  # ports and names are claimed before any process starts
        if request.fault_tolerance is None and head.pid and not is_alive(head.pid, head.ticks):
            # Without fault tolerance the next head is a new cluster: the workers of the old
            # one can never join it, and meanwhile their Serve proxies pass health checks but
            # hang every request. They go now and start again once the new head is up.
            workers = [n for n in record.nodes if n.role == NodeRole.WORKER.value]
            self._stop(workers, grace_seconds=LOST_NODE_GRACE_SECONDS)
        self._keep_running(record, head, request.head)
        if self._gcs_accepts(head):
            for group in request.workers:
                self._converge_group(record, group, request.workers_to_delete)
            gcs = f"{NODE_IP}:{head.ports.gcs}"
            ray_autoscaler.keep_running(record, self._root / record.name, gcs, self._api)
        self._remove_unknown_groups(record, {g.group for g in request.workers})
        save_record(path, record)

    def observe(self, name: str) -> ObservedCluster | None:
        reap_children()
        record = load_record(self._record_path(name))
        if record is None or record.head is None:
            return None
        head = record.head
        dashboard = f"http://{LOCALHOST}:{head.ports.dashboard}"
        head_alive = is_alive(head.pid, head.ticks)
        registered = self._probes.alive_nodes(dashboard, record.token) if head_alive else None
        nodes = tuple(self._observe_node(record, n, registered) for n in record.nodes)
        return ObservedCluster(
            name=record.name,
            owner=record.owner,
            spec_hash=record.request.spec_hash,
            created_at=record.created_at,
            nodes=nodes,
            dashboard_url=dashboard,
            head_ready=registered is not None,
            auth_token=record.token,
            gcs_port=head.ports.gcs,
            client_port=head.ports.client,
            fault_tolerant=record.request.fault_tolerance is not None,
            storage_problem=self._storage_problem(record.request.fault_tolerance),
            autoscaler_running=ray_autoscaler.running(record) if self._api else None,
            autoscaler_bounds=bounds_of(record.request) if record.autoscaler else (),
        )

    def delete(self, name: str) -> None:
        record = load_record(self._record_path(name))
        if record is not None:
            ray_autoscaler.stop(record)
            self._stop(record.nodes)
            self._forget_gcs_state(name, record.request.fault_tolerance)
        shutil.rmtree(self._root / name, ignore_errors=True)

    def clusters(self, owner: str | None = None) -> list[str]:
        return [r.name for r in self._records() if owner is None or r.owner == owner]

    def logs(self, name: str, node: str | None = None, tail: int = 200) -> str:
        record = load_record(self._record_path(name))
        if record is None:
            raise TemporaryError(f"cluster {name} does not exist")
        chosen = next((n for n in record.nodes if n.name == node), None) if node else record.head
        if chosen is None:
            valid = ", ".join(n.name for n in record.nodes)
            raise TemporaryError(f"cluster {name} has no node {node!r} (nodes: {valid})")
        return probes.tail_node_logs(Path(chosen.log_file), Path(chosen.temp_dir), tail)

    # -- GCS state in Redis ----------------------------------------------------------------

    def _redis_of(self, ft: FaultTolerance) -> RedisEndpoint:
        """Where the head keeps its GCS state (the managed Redis is started when needed)."""
        if ft.managed_redis:
            return self._redis.ensure()
        host, port = redis_location(ft.redis_address)
        return RedisEndpoint(host, port, ft.redis_password or "")

    def _storage_problem(self, ft: FaultTolerance | None) -> str | None:
        if ft is None or ft.backend is not GcsBackend.REDIS:
            return None
        if ft.managed_redis:
            if self._redis.running() is None:
                return "the Redis rayservice runs for GCS fault tolerance is not running"
            return None
        return reachable(ft.redis_address)

    def _forget_gcs_state(self, name: str, ft: FaultTolerance | None) -> None:
        """Remove the cluster's keys from Redis; the managed Redis stops with its last user."""
        if ft is None or ft.backend is not GcsBackend.REDIS:
            return
        if ft.managed_redis:
            redis = self._redis.running()
            if redis is not None:
                delete_namespace(redis, ft.storage_namespace)
            others = [r for r in self._records() if r.name != name and _uses_managed_redis(r)]
            if not others:
                self._redis.stop()
            return
        try:
            delete_namespace(self._redis_of(ft), ft.storage_namespace)
        except TemporaryError as error:  # the user's Redis: its keys are theirs to remove
            _log.warning("%s (cluster %s)", error, name)

    # -- supervision -----------------------------------------------------------------------

    def _keep_running(
        self, record: ClusterRecord, node: NodeRecord, group: NodeGroupRequest
    ) -> None:
        reap_children()
        if is_alive(node.pid, node.ticks):
            return
        if node.pid:  # it ran before: this is a restart, with back-off
            backoff = min(2.0 ** min(node.restarts, 6), RESTART_BACKOFF_MAX)
            if time.time() - node.started_at < backoff:
                return
            node.restarts += 1
            node.last_exit_code = exit_status(node.pid)
            node.last_words = _last_line(Path(node.log_file))
            # the node's leader died; Ray processes it started may live on in its session,
            # holding the node's ports
            stop_sessions([node.pid], LOST_NODE_GRACE_SECONDS)
        self._start(record, node, group)

    def _converge_group(
        self, record: ClusterRecord, group: NodeGroupRequest, to_delete: tuple[str, ...]
    ) -> None:
        members = [n for n in record.nodes if n.role == "worker" and n.group == group.group]
        going = leaving_workers(
            [(n.name, n.started_at) for n in members], group.replicas, to_delete
        )
        self._remove(record, [n for n in members if n.name in going])
        members = [n for n in members if n.name not in going]
        for _ in range(group.replicas - len(members)):
            members.append(self._new_node(record, NodeRole.WORKER, group.group))
        for node in members:
            self._keep_running(record, node, group)

    def _remove_unknown_groups(self, record: ClusterRecord, groups: set[str]) -> None:
        self._remove(
            record, [n for n in record.nodes if n.role == "worker" and n.group not in groups]
        )

    def _remove(self, record: ClusterRecord, nodes: list[NodeRecord]) -> None:
        if not nodes:
            return
        self._stop(nodes)
        names = {n.name for n in nodes}
        record.nodes = [n for n in record.nodes if n.name not in names]

    def _stop(self, nodes: list[NodeRecord], grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        stop_sessions((n.pid for n in nodes if is_alive(n.pid, n.ticks)), grace_seconds)
        for node in nodes:
            shutil.rmtree(node.temp_dir, ignore_errors=True)
        reap_children()

    def _gcs_accepts(self, head: NodeRecord) -> bool:
        if not is_alive(head.pid, head.ticks):
            return False
        try:
            with socket.create_connection((NODE_IP, head.ports.gcs), timeout=0.5):
                return True
        except OSError:
            return False

    def _start(self, record: ClusterRecord, node: NodeRecord, group: NodeGroupRequest) -> None:
        log = Path(node.log_file)
        log.parent.mkdir(parents=True, exist_ok=True)
        Path(node.temp_dir).mkdir(parents=True, exist_ok=True)
        # A head that died leaves the GCS address it last started in its temp dir; while the
        # workers' processes still name that address (they wait for the GCS to come back),
        # `ray start --head` takes it for a running cluster and refuses to start.
        (Path(node.temp_dir) / RAY_ADDRESS_FILE).unlink(missing_ok=True)
        try:
            with log.open("ab") as out:
                pid = start_session(
                    self._command(record, node, group),
                    out,
                    env=self._environment(record, node, group),
                )
        except OSError as e:
            raise TemporaryError(f"could not start node {node.name}: {e}") from e
        node.pid, node.ticks, node.started_at = pid, start_ticks(pid), time.time()

    def _command(
        self, record: ClusterRecord, node: NodeRecord, group: NodeGroupRequest
    ) -> list[str]:
        ports = node.ports
        head = record.head
        assert head is not None
        args = [
            str(self._ray), "start", "--block", "--disable-usage-stats",
            f"--node-ip-address={NODE_IP}",
            f"--temp-dir={node.temp_dir}",
            f"--dashboard-agent-listen-port={ports.agent_listen}",
            f"--metrics-export-port={ports.metrics}",
            f"--node-manager-port={ports.node_manager}",
            f"--object-manager-port={ports.object_manager}",
            f"--runtime-env-agent-port={ports.runtime_env_agent}",
            f"--dashboard-agent-grpc-port={ports.agent_grpc}",
            "--min-worker-port=0", "--max-worker-port=0",
            f"--num-cpus={group.num_cpus:g}",
        ]  # fmt: skip
        if node.role == "head":
            args += [
                "--head", f"--port={ports.gcs}",
                f"--dashboard-host={LOCALHOST}", f"--dashboard-port={ports.dashboard}",
                f"--ray-client-server-port={ports.client}",
            ]  # fmt: skip
            if record.request.autoscaling is not None:  # ours runs apart (ray_autoscaler)
                args.append("--no-monitor")
            ft = record.request.fault_tolerance
            if ft is not None and ft.backend is GcsBackend.REDIS:
                password = self._redis_of(ft).password
                if password:  # Ray reads the password from this option only
                    args.append(f"--redis-password={password}")
        else:
            args.append(f"--address={NODE_IP}:{head.ports.gcs}")
        if group.num_gpus:
            args.append(f"--num-gpus={group.num_gpus:g}")
        if group.memory_bytes:
            args.append(f"--memory={group.memory_bytes}")
        if group.custom_resources:
            args.append("--resources=" + json.dumps(group.custom_resources, sort_keys=True))
        return args + _user_param_args(group.ray_start_params)

    def _environment(
        self, record: ClusterRecord, node: NodeRecord, group: NodeGroupRequest
    ) -> dict[str, str]:
        env = {**os.environ, **group.env}
        env.update(
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=record.token,
            RAY_USAGE_STATS_ENABLED="0",
        )
        ft = record.request.fault_tolerance
        if node.role == "head":
            if ft is not None and ft.backend is GcsBackend.ROCKSDB:
                env["RAY_gcs_storage"] = GcsBackend.ROCKSDB.value
                env["RAY_gcs_storage_path"] = str(self._root / record.name / GCS_STORAGE_FOLDER)
            elif ft is not None:
                redis = self._redis_of(ft)
                env[REDIS_ADDRESS_ENV] = ft.redis_address or redis.address
                env[STORAGE_NAMESPACE_ENV] = ft.storage_namespace
        else:
            env["RAY_SERVE_WORKER_PROXY_HTTP_PORT"] = str(node.ports.serve_proxy)
            if ft is not None:
                env.setdefault(
                    "RAY_gcs_rpc_server_reconnect_timeout_s", WORKER_GCS_RECONNECT_SECONDS
                )
        return env

    def _observe_node(
        self, record: ClusterRecord, node: NodeRecord, registered: dict[int, str] | None
    ) -> ObservedNode:
        alive = is_alive(node.pid, node.ticks)
        node_id = (registered or {}).get(node.ports.node_manager, "")
        answer = None
        # the proxy is probed (an HTTP request on every pass) only where it can tell something
        if alive and registered is not None:
            joined = bool(node_id)
            if joined:
                answer = self._probes.proxy_answer(LOCALHOST, node.ports.serve_proxy)
        elif alive and _fault_tolerant_worker(record, node):
            # the head cannot be asked: a fault-tolerant cluster's worker serves on its word
            answer = self._probes.proxy_answer(LOCALHOST, node.ports.serve_proxy)
            joined = answer.healthy
        else:
            joined = False
        proxy_healthy = answer is not None and answer.healthy
        if not alive:
            phase = NodePhase.FAILED if node.pid else NodePhase.PENDING
        else:
            phase = NodePhase.RUNNING if joined else NodePhase.PENDING
        group = (
            record.request.head
            if node.role == "head"
            else next(
                (g for g in record.request.workers if g.group == node.group), record.request.head
            )
        )
        return ObservedNode(
            name=node.name,
            role=NodeRole(node.role),
            group=node.group,
            phase=phase,
            proxy_port=node.ports.serve_proxy,
            proxy_ready=proxy_healthy,
            restarts=node.restarts,
            started_at=node.started_at,
            num_cpus=group.num_cpus,
            num_gpus=group.num_gpus,
            memory_bytes=group.memory_bytes or 0,
            custom_resources=tuple(sorted(group.custom_resources.items())),
            last_words=_last_line(Path(node.log_file))
            if phase is NodePhase.FAILED
            else (node.last_words),
            last_exit_code=exit_status(node.pid)
            if phase is NodePhase.FAILED
            else (node.last_exit_code),
            node_id=node_id,
            proxy_answer=answer.answer if answer is not None else "",
            log_files=(node.log_file, str(Path(node.temp_dir) / "session_latest" / "logs")),
        )
