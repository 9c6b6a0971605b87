"""The configuration Ray's autoscaler (v1, Ray's monitor) reads for one cluster. Pure.

One node type per group, named as the group, with the resources its ``ray start`` gives the node
and the group's bounds (the head's are 0: it is not a worker). The provider section names our
node provider (``rayservice.autoscaler.node_provider``), which asks the controller to scale, with
the settings Ray requires of a provider that batches its changes, and ``use_node_id_as_ip``:
every local node has the same IP, so Ray must tell nodes apart by their node id.
"""

from __future__ import annotations

import math
from typing import Any

from rayservice.spec.cluster_request import Autoscaling, ClusterRequest, NodeGroupRequest

NODE_PROVIDER = "rayservice.autoscaler.node_provider.RayServiceNodeProvider"
# the settings Ray checks a batching node provider for, and liveness checks left to us
_BATCHING_SETTINGS = {
    "disable_node_updaters": True,
    "disable_launch_config_check": True,
    "foreground_node_launch": True,
    "worker_liveness_check": False,
}
# fields Ray's config schema requires of every cluster, meaningless for external nodes
_LEGACY_FIELDS: dict[str, Any] = {
    "file_mounts": {},
    "cluster_synced_files": [],
    "file_mounts_sync_continuously": False,
    "initialization_commands": [],
    "setup_commands": [],
    "head_setup_commands": [],
    "worker_setup_commands": [],
    "head_start_ray_commands": [],
    "worker_start_ray_commands": [],
    "auth": {},
}


def autoscaling_config(
    request: ClusterRequest, autoscaling: Autoscaling, api_url: str, namespace: str
) -> dict[str, Any]:
    """Ray's autoscaling config for ``request``; the node provider reaches the controller at
    ``api_url`` and finds the cluster in ``namespace`` (its owner's)."""
    node_types = {
        request.head.group: _node_type(request.head, 0, 0),
        **{g.group: _node_type(g, g.min_replicas, g.max_replicas) for g in request.workers},
    }
    return {
        "cluster_name": request.name,
        "provider": {
            "type": "external",
            "module": NODE_PROVIDER,
            "use_node_id_as_ip": True,
            **_BATCHING_SETTINGS,
            "api_url": api_url,
            "namespace": namespace,
        },
        "head_node_type": request.head.group,
        "available_node_types": node_types,
        "max_workers": sum(g.max_replicas for g in request.workers),
        "idle_timeout_minutes": autoscaling.idle_timeout_seconds / 60,
        "upscaling_speed": autoscaling.upscaling_speed,
        **_LEGACY_FIELDS,
    }


def _node_type(group: NodeGroupRequest, lowest: int, highest: int) -> dict[str, Any]:
    """A node type: what each node of the group offers (whole units, as Ray's schema wants;
    ``ray start`` takes whole CPUs too) and how many the autoscaler may have."""
    resources: dict[str, int] = {"CPU": math.floor(group.num_cpus)}
    if group.num_gpus:
        resources["GPU"] = math.floor(group.num_gpus)
    if group.memory_bytes:
        resources["memory"] = group.memory_bytes
    resources.update({name: math.floor(amount) for name, amount in group.custom_resources.items()})
    return {
        "node_config": {},
        "resources": resources,
        "min_workers": lowest,
        "max_workers": highest,
    }
