"""The node provider Ray's autoscaler loads for a rayservice cluster (``provider.type: external``).

Ray's autoscaler decides (which node types, how many, which idle workers go); this provider only
carries its decisions to the controller, as KubeRay's provider patches a RayCluster: once per
autoscaler round it reads the cluster's nodes from the controller's API, and when the round
changed anything it sends the workers wanted per group and the workers to remove. The controller
starts and stops the nodes. Nodes are keyed by pod name; their "IP" is the Ray node id (every
local node shares one IP, so the config sets ``use_node_id_as_ip``).

Runs in the monitor process, not the controller's: its settings come from the autoscaling config
(``api_url``, ``namespace``) and the environment (the API's token, as the command line reads
it: ``RAYSERVICE_TOKEN``).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from ray.autoscaler._private.util import NodeID
from ray.autoscaler.batching_node_provider import BatchingNodeProvider, NodeData
from ray.autoscaler.batching_node_provider import ScaleRequest as RayScaleRequest
from ray.autoscaler.tags import (
    NODE_KIND_HEAD,
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    STATUS_UPDATE_FAILED,
)

from rayservice.api.credentials import client_token
from rayservice.client import RayServiceClient
from rayservice.spec.autoscaling import AutoscaledNode, ScaleRequest
from rayservice.spec.observed import NodePhase

LEAVING_WAIT_SECONDS = 60.0
PENDING_STATUS = "pending"  # any other text: Ray shows it as the reason the node is not up

_log = logging.getLogger(__name__)


def node_data(node: AutoscaledNode) -> NodeData:
    """A node as Ray's autoscaler reads it: up-to-date exactly when it runs and registered."""
    if node.phase == NodePhase.FAILED.value:
        status = STATUS_UPDATE_FAILED
    elif node.phase == NodePhase.RUNNING.value and node.rayNodeId:
        status = STATUS_UP_TO_DATE
    else:
        status = PENDING_STATUS
    return NodeData(
        kind=NODE_KIND_HEAD if node.head else NODE_KIND_WORKER,
        type=node.group,
        ip=node.rayNodeId or None,
        status=status,
    )


class RayServiceNodeProvider(BatchingNodeProvider):
    def __init__(self, provider_config: dict[str, Any], cluster_name: str) -> None:
        super().__init__(provider_config, cluster_name)
        self._namespace = str(provider_config["namespace"])
        self._client = RayServiceClient(
            str(provider_config["api_url"]), token=client_token(os.environ)
        )
        self._leaving: set[str] = set()  # asked to go (as the controller keeps it) and still there
        self._waiting_since: float | None = None

    def get_node_data(self) -> dict[NodeID, NodeData]:
        state = self._client.autoscaling_state(self._namespace, self.cluster_name)
        nodes = {node.name: node_data(node) for node in state.nodes}
        self._leaving = set(state.scale.workers_to_delete) & nodes.keys()
        return nodes

    def submit_scale_request(self, scale_request: RayScaleRequest) -> None:
        asked = ScaleRequest(
            replicas=dict(scale_request.desired_num_workers),
            workers_to_delete=tuple(sorted(scale_request.workers_to_delete)),
        )
        _log.info("asking the controller for %s", asked.model_dump(by_alias=True))
        self._client.request_scale(self._namespace, self.cluster_name, asked)

    def safe_to_scale(self) -> bool:
        """Not while workers asked to go still run (the autoscaler would count them twice;
        KubeRay's provider waits the same way), but not for ever: after a minute the controller
        kept them for a reason of its own (the last serve endpoint), and scaling goes on."""
        if not self._leaving:
            self._waiting_since = None
            return True
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        if now - self._waiting_since < LEAVING_WAIT_SECONDS:
            return False
        _log.warning("%s still run; scaling goes on", ", ".join(sorted(self._leaving)))
        return True
