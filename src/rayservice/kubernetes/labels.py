"""The labels and annotations on the Kubernetes objects rayservice makes, and KubeRay's that it
reads or sets on pods.

Our RayClusters must never look like ones a KubeRay RayService owns (KubeRay's RayService
controller deletes those it finds dangling, by its ``ray.io/originated-from-*`` labels): they
carry ``app.kubernetes.io/managed-by: rayservice`` and the owner's name in labels of our own.
"""

from __future__ import annotations

from enum import StrEnum

MANAGER = "rayservice"  # the value of app.kubernetes.io/managed-by on everything we make


class Label(StrEnum):
    # KubeRay's, on the pods its RayCluster controller creates
    CLUSTER = "ray.io/cluster"  # the RayCluster's name
    NODE_TYPE = "ray.io/node-type"  # head or worker
    GROUP = "ray.io/group"  # the node group's name ("headgroup" for the head)
    # "true" on a pod whose Serve proxy may take traffic: the serve Services select it
    SERVE = "ray.io/serve"
    # ours
    MANAGED_BY = "app.kubernetes.io/managed-by"
    OWNER_KIND = "rayservice.io/owner-kind"  # RayService or RayCluster
    OWNER_NAME = "rayservice.io/owner-name"  # its name (the namespace is the object's own)
    # the controller that made it: controllers of several users share a Kubernetes cluster,
    # and each removes only the clusters it made and no longer wants
    CONTROLLER = "rayservice.io/controller"


class Annotation(StrEnum):
    SPEC_HASH = "rayservice.io/spec-hash"  # the cluster spec's hash the RayCluster was made from
    # where the nodes' Serve proxies listen (a RayService's cluster only)
    SERVE_PROXY_PORT = "rayservice.io/serve-proxy-port"
    HEAD_SERVES = "rayservice.io/head-serves"  # "false": excludeHeadPodFromServeSvc
    # on a head Service: what the controller last asked its front to be (JSON), read back
    # after a restart
    FRONT_SPEC = "rayservice.io/front-spec"


class NodeType(StrEnum):
    """The values of ``ray.io/node-type``."""

    HEAD = "head"
    WORKER = "worker"


class Serving(StrEnum):
    """The values of ``ray.io/serve``."""

    YES = "true"
    NO = "false"
