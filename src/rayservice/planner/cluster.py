"""Turns a RayCluster spec into the ClusterRequest a provider acts on, and names clusters.

Pure: names are derived from the service's uid and generation, so re-planning after a crash
asks for the same cluster instead of a second one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any

from rayservice.spec import fault_tolerance
from rayservice.spec.autoscaling import ScaleRequest, autoscaling_of, scaled_replicas
from rayservice.spec.cluster_request import (
    ClusterRequest,
    FaultTolerance,
    NodeGroupRequest,
    bounds_of,
)
from rayservice.spec.events import ObjectKind
from rayservice.spec.fault_tolerance import container_env
from rayservice.spec.ignored import BACKEND_MANAGED_RAY_START_PARAMS, FIXED_PORT_PARAMS
from rayservice.spec.manifest import RayClusterSpec, RayService, RedisCredential
from rayservice.spec.observed import NodePhase, NodeRole, ObservedCluster
from rayservice.spec.resources import node_resources
from rayservice.spec.service_exposure import proxy_port
from rayservice.spec.text import headline
from rayservice.spec.vocabulary import HEAD_GROUP, MAX_RAYCLUSTER_NAME, GcsBackend

# carried by the request's own fields (resources, fault tolerance), not passed through
_REQUEST_PARAMS = frozenset(
    {"num-cpus", "num-gpus", "memory", "resources", fault_tolerance.REDIS_PASSWORD_PARAM}
)
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # like Kubernetes' generated name suffixes


def cluster_name(
    service: RayService,
    uid: str,
    generation: int,
    taken: str = "",
    in_use: Collection[str] = (),
) -> str:
    """``<name>-raycluster-<5 chars>``, the same for the same service generation and the
    same values ``taken`` from Secrets and ConfigMaps (a digest of them; '' when the spec
    takes none), so re-planning after a crash asks for the same cluster. A changed value
    keeps the generation, and a value can come back while the cluster that had it is still
    retiring: a name ``in_use`` (a cluster the service has or had) is never given again.

    A name must fit KubeRay's limit for a RayCluster (53 characters, so that the names it
    derives from it fit Kubernetes' 63), on every backend: a service whose name is too long
    for the ``-raycluster`` infix gets ``<name>-<5 chars>``, as KubeRay names its own."""
    attempt = 0
    while True:
        seed = f"{uid}/{generation}" + "".join(f"/{part}" for part in (taken, attempt) if part)
        digest = hashlib.sha256(seed.encode()).digest()
        suffix = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:5])
        name = f"{service.metadata.name}-raycluster-{suffix}"
        if len(name) > MAX_RAYCLUSTER_NAME:
            name = f"{service.metadata.name}-{suffix}"
        if name not in in_use:
            return name
        attempt += 1


def _group_request(
    group: str,
    params: Mapping[str, str],
    template: Mapping[str, Any],
    replicas: int,
    bounds: tuple[int, int] = (0, 0),
) -> NodeGroupRequest:
    resources = node_resources(params, template)
    return NodeGroupRequest(
        group=group,
        replicas=replicas,
        min_replicas=bounds[0],
        max_replicas=bounds[1],
        num_cpus=resources.num_cpus,
        num_gpus=resources.num_gpus,
        memory_bytes=resources.memory_bytes,
        custom_resources=resources.custom,
        ray_start_params={
            k: v
            for k, v in params.items()
            if k not in BACKEND_MANAGED_RAY_START_PARAMS and k not in _REQUEST_PARAMS
        },
        env=container_env(template),
    )


def _fault_tolerance(
    spec: RayClusterSpec, name: str, annotations: Mapping[str, str]
) -> FaultTolerance | None:
    if not fault_tolerance.is_enabled(spec, annotations):
        return None
    options = spec.gcsFaultToleranceOptions
    namespace = fault_tolerance.storage_namespace(spec, annotations, name)
    if options is not None and options.backend is GcsBackend.ROCKSDB:
        return FaultTolerance(backend=GcsBackend.ROCKSDB, storage_namespace=namespace)
    address = fault_tolerance.redis_address(spec)
    if fault_tolerance.redis_is_managed(address):
        return FaultTolerance(managed_redis=True, storage_namespace=namespace)
    given = options.redisPassword if options is not None else None
    password = given.value if isinstance(given, RedisCredential) else given
    head_params = spec.headGroupSpec.rayStartParams
    return FaultTolerance(
        redis_address=address,
        redis_password=password or head_params.get(fault_tolerance.REDIS_PASSWORD_PARAM),
        storage_namespace=namespace,
    )


def cluster_request(
    name: str,
    owner: str,
    spec: RayClusterSpec,
    spec_hash: str,
    *,
    annotations: Mapping[str, str],
    standalone_labels: Mapping[str, str] | None = None,
    serve_proxy_port: int | None = None,
    head_serves: bool = True,
    scale: ScaleRequest | None = None,
) -> ClusterRequest:
    """What the provider is to make of ``spec`` (``annotations``: the owning object's). A
    standalone RayCluster gives its ``standalone_labels`` (it keeps them, and its annotations,
    on Kubernetes) and its head keeps the ports its rayStartParams fix; a RayService's cluster
    gives where its nodes' Serve proxies listen, and whether its head serves too
    (``excludeHeadPodFromServeSvc``). With Ray's autoscaler on, ``scale`` (what it
    last asked for this cluster) sets the worker counts and the workers to remove
    (:mod:`rayservice.spec.autoscaling`)."""
    standalone = standalone_labels is not None
    autoscaling = autoscaling_of(spec)
    asked = scale if autoscaling is not None else None
    head = spec.headGroupSpec
    head_request = _group_request(HEAD_GROUP, head.rayStartParams, head.template, 1)
    if standalone:
        fixed = {
            option: int(value)
            for option, value in head.rayStartParams.items()
            if option in FIXED_PORT_PARAMS
        }
        head_request = head_request.model_copy(update={"fixed_ports": fixed})
    return ClusterRequest(
        name=name,
        owner=owner,
        spec_hash=spec_hash,
        head=head_request,
        workers=tuple(
            _group_request(
                g.groupName,
                g.rayStartParams,
                g.template,
                scaled_replicas(g, asked),
                (g.minReplicas, g.maxReplicas),
            )
            for g in spec.workerGroupSpecs
            if not g.suspend
        ),
        workers_to_delete=tuple(
            w for g in spec.workerGroupSpecs for w in g.scaleStrategy.workersToDelete
        )
        + (asked.workers_to_delete if asked is not None else ()),
        fault_tolerance=_fault_tolerance(spec, name, annotations),
        autoscaling=autoscaling,
        autoscaled_groups=tuple(sorted(asked.replicas)) if asked is not None else (),
        cluster_spec=spec.model_dump(mode="json", exclude_unset=True, exclude_none=True),
        owner_kind=ObjectKind.RAY_CLUSTER if standalone else ObjectKind.RAY_SERVICE,
        owner_labels=dict(standalone_labels or {}),
        owner_annotations=dict(annotations) if standalone else {},
        serve_proxy_port=serve_proxy_port,
        head_serves=head_serves,
    )


def service_cluster_request(
    service: RayService,
    name: str,
    spec: RayClusterSpec,
    spec_hash: str,
    serve_config: Mapping[str, Any],
    scale: ScaleRequest | None = None,
) -> ClusterRequest:
    """The request for the cluster ``name`` of a RayService, running ``spec`` and
    ``serve_config`` (its slot's: a retiring cluster keeps the ones it was made with)."""
    return cluster_request(
        name,
        service.key,
        spec,
        spec_hash,
        annotations=service.metadata.annotations,
        serve_proxy_port=proxy_port(serve_config),
        head_serves=not service.spec.excludeHeadPodFromServeSvc,
        scale=scale,
    )


def keeping_an_endpoint(
    request: ClusterRequest, cluster: ObservedCluster | None, exclude_head: bool
) -> ClusterRequest:
    """``request`` without removing the last serve endpoint of ``cluster``: when every node
    that serves is among the workers to remove, one of them stays (its group keeps a worker
    more) until another serves. Ray's autoscaler removes idle workers, and a worker whose
    proxy is all it runs is idle to Ray. The head counts unless ``exclude_head``
    (``excludeHeadPodFromServeSvc``: the serve Service never sends it traffic)."""
    if cluster is None or not request.workers_to_delete:
        return request
    serving = [n for n in cluster.serve_endpoints if n.role is NodeRole.WORKER]
    leaving = [n for n in serving if n.name in request.workers_to_delete]
    head_serves = not exclude_head and any(n.role is NodeRole.HEAD for n in cluster.serve_endpoints)
    if not leaving or len(leaving) < len(serving) or head_serves:
        return request
    kept = leaving[0]
    return request.model_copy(
        update={
            "workers_to_delete": tuple(w for w in request.workers_to_delete if w != kept.name),
            "workers": tuple(
                g.model_copy(update={"replicas": g.replicas + 1}) if g.group == kept.group else g
                for g in request.workers
            ),
        }
    )


def cluster_drift(request: ClusterRequest, active: ObservedCluster | None) -> str | None:
    """Why the provider must act on the cluster, or None when it matches the request."""
    if active is None:
        workers = sum(g.replicas for g in request.workers)
        return f"creating cluster {request.name}: a head and {workers} worker(s)"
    failed = [n for n in active.nodes if n.phase is NodePhase.FAILED]
    if failed:
        node = failed[0]
        return f"node {node.name} exited; restarting it (restarts so far: {node.restarts})"
    if active.head is None:
        return f"cluster {request.name} has no head; starting one"
    ft = request.fault_tolerance
    if active.storage_problem is not None and ft is not None and ft.managed_redis:
        return f"{active.storage_problem}; starting it again"
    if request.autoscaling is not None and active.head_ready:
        if active.autoscaler_running is False:
            return f"starting Ray's autoscaler of cluster {request.name} (not running)"
        if active.autoscaler_running and active.autoscaler_bounds != bounds_of(request):
            return (
                f"the worker bounds of cluster {request.name} changed; Ray's autoscaler takes them"
            )
    named = [n.name for n in active.workers if n.name in request.workers_to_delete]
    if named:
        asker = "Ray's autoscaler" if request.autoscaling is not None else "workersToDelete"
        return f"removing {', '.join(named)} as {asker} asks"
    counts: dict[str, int] = {}
    for node in active.workers:
        counts[node.group] = counts.get(node.group, 0) + 1
    wanted = {g.group: g.replicas for g in request.workers}
    for group in sorted(set(wanted) | set(counts)):
        have, want = counts.get(group, 0), wanted.get(group, 0)
        if have != want and group != HEAD_GROUP:
            if group in request.autoscaled_groups:
                return f"Ray's autoscaler asks for {want} worker(s) of group {group} (has {have})"
            return f"worker group {group} has {have} of {want} worker(s); scaling to {want}"
    if active.spec_hash and active.spec_hash != request.spec_hash:
        return (
            f"cluster {request.name} was made from an earlier form of its spec (hash"
            f" {active.spec_hash}, now {request.spec_hash}); applying the current one in place,"
            " its nodes stay"
        )
    return None


def lost_nodes(cluster: ObservedCluster | None) -> list[tuple[str, str]]:
    """``(pod name, what it means)`` of every node whose process is gone, for a Warning."""
    if cluster is None:
        return []
    lost = []
    for node in cluster.nodes:
        if node.phase is not NodePhase.FAILED:
            continue
        meaning = f"{node.role.value} node exited (restarts so far: {node.restarts})"
        if node.role is NodeRole.HEAD:
            meaning += (
                "; with GCS fault tolerance the workers keep serving while it restarts"
                if cluster.fault_tolerant
                else "; without GCS fault tolerance the cluster restarts with it: its workers"
                " start again and the Serve config is submitted again"
            )
        if node.last_words:
            meaning += f"; its log ends: {headline(node.last_words)}"
        lost.append((node.name, meaning))
    return lost
