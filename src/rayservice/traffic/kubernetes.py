"""The TrafficFront on Kubernetes: the Services (and routes) in front of a RayService's clusters.

``ensure`` applies ``<name>-head-svc`` and ``<name>-serve-svc`` selecting the front's active
cluster (the first of its shares, which the planner gives even while that cluster's head is
gone): moving a service to another cluster changes their ``ray.io/cluster`` once, when the
controller asks for the new front, and a front with no cluster yet leaves a selector already
applied as it is. A service whose upgrades are incremental (and name a Gateway class) is also
reached through a Gateway whose HTTPRoute sends each cluster its share, through a serve Service
of its own; objects the front no longer needs (a retired cluster's Service, a route after the
Gateway class went) are deleted, and a cluster without the Gateway API's CRDs simply has none.
The Services stand for HAProxy's listeners: Kubernetes gives each an address of its own, so the
ports are the ones the manifest asks for (:mod:`rayservice.kubernetes.services`). The head pod's
``ray.io/serve`` label, which puts it in the serve Services, is the cluster provider's to keep.

A standalone RayCluster's Services are KubeRay's own: its front applies nothing. What each front
was last asked to be is kept on its head Service (``rayservice.io/front-spec``), so a restarted
controller finds it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pydantic

from rayservice.kubeapi.base import KindNotServed, KubernetesApi
from rayservice.kubernetes.gateway import gateway, gateway_class, http_route
from rayservice.kubernetes.kinds import GATEWAY, HTTP_ROUTE, POD, SERVICE, Kind
from rayservice.kubernetes.labels import MANAGER, Annotation, Label, NodeType, Serving
from rayservice.kubernetes.pods import annotations_on, is_ready, labels_on
from rayservice.kubernetes.services import cluster_serve_service, head_service, serve_service
from rayservice.spec.errors import TemporaryError
from rayservice.spec.manifest import KubernetesObject, Manifest, RayService
from rayservice.spec.observed import FrontSpec, FrontState
from rayservice.spec.vocabulary import FULL_CAPACITY

_SPEC = pydantic.TypeAdapter(FrontSpec)
_KINDS: tuple[Kind, ...] = (SERVICE, GATEWAY, HTTP_ROUTE)
_NO_PROCESS = 0  # a front here is objects in the cluster, not a process of this machine

Owners = Callable[[str], Manifest | None]
"""The RayService or RayCluster whose front a key (``<namespace>.<name>``) names (None: none)."""


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
        state = FrontState(spec, pid=_NO_PROCESS)
        if not isinstance(owner, RayService):
            self._standalone[key] = state  # KubeRay makes a RayCluster's Services
            return state
        wanted = self._objects(owner, spec)
        for obj in wanted:
            self.api.apply(obj)
        kept = {(obj["kind"], obj["metadata"]["name"]) for obj in wanted}
        for kind in _KINDS:
            for found in self._ours(kind, owner.metadata.namespace, owner.metadata.name):
                if (kind.kind, found["metadata"]["name"]) not in kept:
                    self.api.delete(kind, owner.metadata.namespace, found["metadata"]["name"])
        return state

    def observe(self, key: str) -> FrontState | None:
        owner = self.owners(key)
        if owner is None:
            return self._standalone.get(key)
        if not isinstance(owner, RayService):
            state = self._standalone.get(key)
            heads = self.api.select(  # KubeRay's own head Service (it shortens long names)
                SERVICE,
                owner.metadata.namespace,
                {Label.CLUSTER: owner.metadata.name, Label.NODE_TYPE: NodeType.HEAD},
            )
            address = (heads[0].get("spec") or {}).get("clusterIP") if heads else None
            if state is None or not address:
                return state
            return replace(state, service_addresses=((owner.head_service_name, str(address)),))
        namespace = owner.metadata.namespace
        head = self.api.get(SERVICE, namespace, owner.head_service_name)
        try:
            spec = _SPEC.validate_json(annotations_on(head or {})[Annotation.FRONT_SPEC])
        except (KeyError, pydantic.ValidationError):
            return None  # none yet, or edited past reading: the next ensure writes it again
        serve = None
        if spec.has_serve:
            serve = self.api.get(SERVICE, namespace, owner.serve_service_name)
        addresses = tuple(
            (found["metadata"]["name"], str(found["spec"]["clusterIP"]))
            for found in (head, serve)
            if found is not None and (found.get("spec") or {}).get("clusterIP")
        )
        missing = owner.serve_service_name if spec.has_serve and serve is None else None
        return FrontState(
            spec,
            pid=_NO_PROCESS,
            healthy_backends=self._serving(namespace, spec),
            # deleted by hand: the controller applies it again, as it restarts a lost HAProxy
            degraded=f"Service {missing} is missing; it is applied again" if missing else None,
            service_addresses=addresses,
        )

    def delete(self, key: str) -> None:
        self._standalone.pop(key, None)
        namespace, _, name = key.partition(".")
        for kind in _KINDS:
            for found in self._ours(kind, namespace, name):
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
        active = spec.active_cluster or self._selected(owner)
        head = head_service(owner, active)
        head["metadata"].setdefault("annotations", {})[Annotation.FRONT_SPEC] = _SPEC.dump_json(
            spec
        ).decode()
        objects = [head]
        if spec.has_serve:
            objects.append(serve_service(owner, active))
        if gateway_class(owner) is not None:
            shares = list(spec.shares) or ([(active, FULL_CAPACITY)] if active else [])
            objects += [cluster_serve_service(owner, cluster) for cluster, _ in shares]
            objects += [gateway(owner), http_route(owner, shares)]
        for obj in objects:
            obj["metadata"]["labels"][Label.CONTROLLER] = self.controller
        return objects

    def _selected(self, owner: RayService) -> str:
        """The cluster the head Service selects now ('' for none): kept while a front names
        none (a controller that lost its record must not empty a Service that serves)."""
        found = self.api.get(SERVICE, owner.metadata.namespace, owner.head_service_name)
        selector = ((found or {}).get("spec") or {}).get("selector") or {}
        return str(selector.get(Label.CLUSTER, ""))

    def _ours(self, kind: Kind, namespace: str, owner_name: str) -> list[dict[str, Any]]:
        """This controller's objects of ``kind`` for the RayService ``owner_name`` (none where
        the cluster has no such kind: the Gateway API's CRDs are optional)."""
        labels: dict[str, str] = {
            Label.MANAGED_BY: MANAGER,
            Label.CONTROLLER: self.controller,
            Label.OWNER_NAME: owner_name,
        }
        try:
            return self.api.select(kind, namespace, labels)
        except KindNotServed:
            return []

    def _serving(self, namespace: str, spec: FrontSpec) -> tuple[str, ...]:
        """The serve backends whose pods are in the serve Services now: ready workers, and
        heads labelled to serve."""
        names = {b.name for b in spec.serve_backends if not b.drained}
        serving = []
        for cluster in sorted({b.cluster for b in spec.serve_backends}):
            for pod in self.api.select(POD, namespace, {Label.CLUSTER: cluster}):
                labels = labels_on(pod)
                if pod["metadata"]["name"] not in names:
                    continue
                if labels.get(Label.NODE_TYPE) == NodeType.HEAD:
                    if labels.get(Label.SERVE) == Serving.YES:
                        serving.append(pod["metadata"]["name"])
                elif is_ready(pod):
                    serving.append(pod["metadata"]["name"])
        return tuple(sorted(serving))
