"""The TrafficFront on Kubernetes: the Services (and routes) in front of a RayService's clusters.

``ensure`` applies ``<name>-head-svc`` and ``<name>-serve-svc`` selecting the cluster of the
front's dashboard backend, the active one: moving a service to another cluster changes their
``ray.io/cluster``, once, when the controller asks for the new front. A service whose upgrades are
incremental (and name a Gateway class) is also reached through a Gateway whose HTTPRoute weighs
the clusters as the front's serve backends do, each cluster through a serve Service of its own;
objects the front no longer needs (a retired cluster's Service, a route after the Gateway class
went) are deleted. The Services stand for HAProxy's listeners: Kubernetes gives each its own
address, so the ports are the ones the manifest asks for (:mod:`rayservice.kubernetes.services`),
not the ones the front's spec found free on this machine. The head pod's ``ray.io/serve`` label,
which puts it in the serve Services, is the cluster provider's to keep.

A standalone RayCluster's Services are KubeRay's own: its front applies nothing. What each front
was last asked to be is kept on its head Service (``rayservice.io/front-spec``), so a restarted
controller finds it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic

from rayservice.kubeapi.base import KubernetesApi
from rayservice.kubernetes.gateway import gateway, gateway_class, http_route
from rayservice.kubernetes.kinds import GATEWAY, HTTP_ROUTE, POD, SERVICE, Kind
from rayservice.kubernetes.labels import MANAGER, Annotation, Label, NodeType, Serving
from rayservice.kubernetes.pods import is_ready, labels_on
from rayservice.kubernetes.raycluster import labels_of
from rayservice.kubernetes.services import cluster_serve_service, head_service, serve_service
from rayservice.spec.errors import TemporaryError
from rayservice.spec.manifest import KubernetesObject, Manifest, RayService
from rayservice.spec.observed import FrontSpec, FrontState
from rayservice.spec.vocabulary import FULL_CAPACITY

_SPEC = pydantic.TypeAdapter(FrontSpec)
_KINDS: tuple[Kind, ...] = (SERVICE, GATEWAY, HTTP_ROUTE)

Owners = Callable[[str], Manifest | None]
"""The RayService or RayCluster whose front a key names (None: there is none)."""


def shares(spec: FrontSpec) -> list[tuple[str, int]]:
    """Each cluster's percent of the serve traffic, in the order the front lists them: its
    serve backends' weights summed (a drained backend takes nothing); all to the active
    cluster when none takes any."""
    weights: dict[str, int] = {}
    for backend in spec.serve_backends:
        weights[backend.cluster] = weights.get(backend.cluster, 0) + (
            0 if backend.drained else backend.weight
        )
    total = sum(weights.values())
    active = spec.dashboard_backend.cluster if spec.dashboard_backend is not None else ""
    if total == 0:
        return [(active, FULL_CAPACITY)] if active else []
    percents = [(cluster, FULL_CAPACITY * weight // total) for cluster, weight in weights.items()]
    short = FULL_CAPACITY - sum(percent for _, percent in percents)
    return [(c, p + (short if i == 0 else 0)) for i, (c, p) in enumerate(percents)]


def _owner_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition(".")
    return namespace, name


class KubernetesFront:
    def __init__(self, api: KubernetesApi, owners: Owners, controller: str) -> None:
        self.api = api
        self.owners = owners
        self.controller = controller  # the value of rayservice.io/controller on its objects
        self._standalone: dict[str, FrontState] = {}

    def ensure(self, key: str, spec: FrontSpec) -> FrontState:
        owner = self.owners(key)
        if owner is None:
            raise TemporaryError(f"front {key}: no RayService or RayCluster of that name")
        state = FrontState(spec, pid=0)
        if not isinstance(owner, RayService):
            self._standalone[key] = state  # KubeRay makes a RayCluster's Services
            return state
        wanted = self._objects(owner, spec)
        for obj in wanted:
            self.api.apply(obj)
        kept = {(obj["kind"], obj["metadata"]["name"]) for obj in wanted}
        for kind in _KINDS:
            for found in self._ours(kind, owner):
                if (kind.kind, found["metadata"]["name"]) not in kept:
                    self.api.delete(kind, owner.metadata.namespace, found["metadata"]["name"])
        return state

    def observe(self, key: str) -> FrontState | None:
        owner = self.owners(key)
        if owner is None or not isinstance(owner, RayService):
            return self._standalone.get(key)
        namespace = owner.metadata.namespace
        head = self.api.get(SERVICE, namespace, owner.head_service_name)
        recorded = ((head or {}).get("metadata", {}).get("annotations") or {}).get(
            Annotation.FRONT_SPEC
        )
        if recorded is None:
            return None
        spec = _SPEC.validate_json(recorded)
        return FrontState(spec, pid=0, healthy_backends=self._serving(namespace, spec))

    def delete(self, key: str) -> None:
        self._standalone.pop(key, None)
        namespace, name = _owner_key(key)
        for kind in _KINDS:
            for found in self.api.select(kind, namespace, self._labels(name)):
                self.api.delete(kind, namespace, found["metadata"]["name"])

    def keys(self) -> list[str]:
        mine: dict[str, str] = {Label.MANAGED_BY: MANAGER, Label.CONTROLLER: self.controller}
        owned = {
            f"{found['metadata']['namespace']}.{labels_on(found)[Label.OWNER_NAME]}"
            for found in self.api.select(SERVICE, None, mine)
        }
        return sorted(owned | set(self._standalone))

    # -- building -------------------------------------------------------------------------------

    def _objects(self, owner: RayService, spec: FrontSpec) -> list[KubernetesObject]:
        active = spec.dashboard_backend.cluster if spec.dashboard_backend is not None else ""
        head = head_service(owner, active)
        head["metadata"].setdefault("annotations", {})[Annotation.FRONT_SPEC] = _SPEC.dump_json(
            spec
        ).decode()
        objects = [head]
        if spec.has_serve:
            objects.append(serve_service(owner, active))
        if gateway_class(owner) is not None:
            split = shares(spec)
            objects += [cluster_serve_service(owner, cluster) for cluster, _ in split]
            objects += [gateway(owner), http_route(owner, split)]
        for obj in objects:
            obj["metadata"]["labels"][Label.CONTROLLER] = self.controller
        return objects

    def _labels(self, owner_name: str) -> dict[str, str]:
        return {
            Label.MANAGED_BY: MANAGER,
            Label.CONTROLLER: self.controller,
            Label.OWNER_NAME: owner_name,
        }

    def _ours(self, kind: Kind, owner: RayService) -> list[dict[str, Any]]:
        labels = {**labels_of(owner), Label.CONTROLLER: self.controller}
        return self.api.select(kind, owner.metadata.namespace, labels)

    def _serving(self, namespace: str, spec: FrontSpec) -> tuple[str, ...]:
        """The serve backends whose pods are in the serve Services now: ready workers, and
        heads labelled to serve."""
        names = {b.name for b in spec.serve_backends if not b.drained}
        serving = []
        for cluster in sorted({b.cluster for b in spec.serve_backends}):
            for pod in self.api.select(POD, namespace, {Label.CLUSTER: cluster}):
                labels = labels_on(pod)
                name = pod["metadata"]["name"]
                if name not in names:
                    continue
                if labels.get(Label.NODE_TYPE) == NodeType.HEAD:
                    if labels.get(Label.SERVE) == Serving.YES:
                        serving.append(name)
                elif is_ready(pod):
                    serving.append(name)
        return tuple(sorted(serving))
