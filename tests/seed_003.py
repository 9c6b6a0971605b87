"""The bodies of seed 003's curl commands (KubeRay's "Managing RayServe with the API
server" guide), shared by the model, API and end-to-end tests."""

from __future__ import annotations

from typing import Any

SEED_CLUSTER: dict[str, Any] = {
    "name": "test-cluster",
    "namespace": "default",
    "user": "boris",
    "annotations": {"ray.io/enable-serve-service": "true"},
    "clusterSpec": {
        "headGroupSpec": {
            "computeTemplate": "default-template",
            "image": "rayproject/ray:2.8.0-py310",
            "serviceType": "ClusterIP",
            "rayStartParams": {
                "dashboard-host": "0.0.0.0",
                "metrics-export-port": "8080",
                "dashboard-agent-listen-port": "52365",
            },
        },
        "workerGroupSpec": [
            {
                "groupName": "small-wg",
                "computeTemplate": "default-template",
                "image": "rayproject/ray:2.8.0-py310",
                "replicas": 1,
                "minReplicas": 0,
                "maxReplicas": 5,
                "rayStartParams": {"node-ip-address": "$MY_POD_IP"},
            }
        ],
    },
}
SEED_TEMPLATE: dict[str, Any] = {
    "name": "default-template",
    "namespace": "default",
    "cpu": 2,
    "memory": 4,
}
SERVE_CONFIG = """\
applications:
  - name: fruit_app
    import_path: fruit.deployment_graph
    route_prefix: /fruit
"""
