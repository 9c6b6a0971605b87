"""Every Kubernetes object an admitted manifest becomes, and what only Kubernetes refuses.

A RayService becomes its cluster's RayCluster, ``<name>-head-svc`` and ``<name>-serve-svc``,
and, when its upgrades are incremental, each cluster's own serve Service, a Gateway and an
HTTPRoute sharing the traffic between them. A standalone RayCluster becomes itself (KubeRay's
operator makes its Services). The cluster is the caller's ClusterRequest, as the planner makes
it: its name, worker counts and the rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rayservice.kubernetes.gateway import gateway, gateway_class, gateway_problem, http_route
from rayservice.kubernetes.raycluster import ray_cluster
from rayservice.kubernetes.services import cluster_serve_service, head_service, serve_service
from rayservice.spec import fault_tolerance
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.errors import SpecProblem
from rayservice.spec.manifest import KubernetesObject, Manifest, RayService
from rayservice.spec.vocabulary import FULL_CAPACITY, GcsBackend


def service_objects(
    service: RayService,
    request: ClusterRequest,
    serving: str | None = None,
    shares: Sequence[tuple[str, int]] = (),
) -> list[KubernetesObject]:
    """What a RayService has on Kubernetes: the RayCluster of ``request``, and Services that
    select the cluster ``serving`` (by default the request's); when its upgrades are
    incremental, traffic weighed by ``shares`` (cluster, percent; by default all to
    ``serving``) through each cluster's own serve Service."""
    active = serving or request.name
    weights = list(shares) or [(active, FULL_CAPACITY)]
    objects = [
        ray_cluster(request),
        head_service(service, active),
        serve_service(service, active),
    ]
    if gateway_class(service) is not None:
        objects += [cluster_serve_service(service, cluster) for cluster, _ in weights]
        objects += [gateway(service), http_route(service, weights)]
    return objects


def cluster_objects(request: ClusterRequest) -> list[KubernetesObject]:
    """What a standalone RayCluster has on Kubernetes: itself."""
    return [ray_cluster(request)]


def kubernetes_problems(manifest: Manifest, source: str) -> list[SpecProblem]:
    """What a manifest the local backend runs cannot do on Kubernetes."""
    return list(_kubernetes_problems(manifest, source))


def _kubernetes_problems(manifest: Manifest, source: str) -> Iterator[SpecProblem]:
    if isinstance(manifest, RayService):
        problem = gateway_problem(manifest, source)
        if problem is not None:
            yield problem
        spec, path = manifest.spec.rayClusterConfig, "spec.rayClusterConfig"
    else:
        spec, path = manifest.spec, "spec"
    if not fault_tolerance.is_enabled(spec, manifest.metadata.annotations):
        return
    options = spec.gcsFaultToleranceOptions
    if options is not None and options.backend is not GcsBackend.REDIS:
        return
    if not fault_tolerance.may_name_redis(spec):
        field = (
            f"{path}.gcsFaultToleranceOptions.redisAddress"
            if options is not None
            else f"{path}.headGroupSpec.template.spec.containers[0].env"
        )
        yield SpecProblem(
            source,
            field,
            "names no Redis: on Kubernetes the GCS state needs a Redis the cluster reaches"
            " (rayservice runs one of its own only on the local backend)",
            "a Redis address such as redis:6379 (a Kubernetes Service) or host:port",
        )
