"""The ClusterProvider protocol: makes Ray clusters exist and reports what they look like.

It plays the part Kubernetes plays for KubeRay: given a ClusterRequest it creates the nodes,
restarts the ones that died (counting restarts) and adds or removes workers to match the
requested counts. The planner decides *when* to ask; the provider knows *how*.
"""

from __future__ import annotations

from typing import Protocol

from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.observed import ObservedCluster


class ClusterProvider(Protocol):
    def ensure(self, request: ClusterRequest) -> None:
        """Converge the cluster ``request.name`` to the request. Idempotent; returns without
        waiting for nodes to become ready. A head of a cluster without GCS fault tolerance
        that died takes its workers with it (they could never join the next head): they start
        again once the new head runs."""
        ...

    def observe(self, name: str) -> ObservedCluster | None:
        """The cluster as it is now, or None if the provider has no such cluster."""
        ...

    def delete(self, name: str) -> None:
        """Stop every process of the cluster and forget it. Idempotent."""
        ...

    def clusters(self, owner: str | None = None) -> list[str]:
        """Names of the clusters the provider holds, optionally only those of ``owner``."""
        ...

    def logs(self, name: str, node: str | None = None, tail: int = 200) -> str:
        """The last ``tail`` lines of a node's logs (the head when ``node`` is None)."""
        ...
