"""The API a cluster's Ray autoscaler talks to: its nodes, and the scale it asks for.

``GET .../rayclusters/{cluster}/autoscaling`` answers the cluster's nodes as the provider sees
them now (pod name, group, head or not, Ray node id once registered, phase) and the last scale
request; ``PUT`` stores a new request (``{"replicas": {group: n}, "workersToDelete": [pod]}``,
KubeRay's field names; groups it leaves out keep their earlier count) and wakes the control
loop, which starts or removes the nodes. The cluster is any cluster the controller runs, a
RayService's or a standalone RayCluster's, found by its name in its owner's namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Query
from pydantic import ValidationError

from rayservice.providers.base import ClusterProvider
from rayservice.serve_client.ray_status import RayStatusReader
from rayservice.spec.autoscaling import AutoscaledNode, AutoscalingState, ScaleRequest
from rayservice.spec.errors import RayServiceError
from rayservice.spec.observed import NodeRole, ObservedCluster
from rayservice.store.base import Store

PATH = "/apis/ray.io/v1/namespaces/{namespace}/rayclusters/{cluster}/autoscaling"


def add_autoscaling_routes(
    app: FastAPI,
    store: Store,
    provider: ClusterProvider,
    wake: Callable[[], None],
    ray_status: RayStatusReader,
) -> None:
    def observed(namespace: str, cluster: str) -> ObservedCluster:
        found = provider.observe(cluster) if cluster in provider.clusters() else None
        if found is None or found.owner.split("/", 1)[0] != namespace:
            raise HTTPException(404, f'cluster "{cluster}" not found in namespace "{namespace}"')
        return found

    @app.get(PATH)
    def autoscaling_state(
        namespace: str, cluster: str, with_status: Annotated[bool, Query(alias="rayStatus")] = False
    ) -> dict[str, Any]:
        """``?rayStatus=true`` adds what ``ray status`` prints (read from the dashboard)."""
        found = observed(namespace, cluster)
        asked = store.scale_requests(found.owner).get(cluster, {})
        nodes = [
            AutoscaledNode(
                name=node.name,
                group=node.group,
                head=node.role is NodeRole.HEAD,
                rayNodeId=node.node_id,
                phase=node.phase.value,
            )
            for node in found.nodes
        ]
        text = ""
        if with_status:
            try:
                text = ray_status.ray_status(found.dashboard_url, found.auth_token)
            except RayServiceError as e:
                text = f"unavailable: {e}"
        scale = ScaleRequest.model_validate(asked)
        state = AutoscalingState(nodes=nodes, scale=scale, rayStatus=text)
        return state.model_dump(mode="json", by_alias=True)

    @app.put(PATH)
    def request_scale(
        namespace: str, cluster: str, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        found = observed(namespace, cluster)
        try:
            scale = ScaleRequest.model_validate(body)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the body"
            raise HTTPException(
                422,
                f'{where}: {first["msg"]} (valid: {{"replicas": {{group: 0..1000}},'
                ' "workersToDelete": [pod names]})',
            ) from e
        # Ray's autoscaler names only the groups it has nodes of (or starts some of): the
        # others keep what it asked before, as KubeRay's provider patches only what it names
        earlier = ScaleRequest.model_validate(store.scale_requests(found.owner).get(cluster, {}))
        merged = scale.model_copy(update={"replicas": {**earlier.replicas, **scale.replicas}})
        stored = merged.model_dump(mode="json", by_alias=True)
        store.put_scale_request(cluster, found.owner, stored)
        wake()
        return stored
