"""What an event is about: a reference to one object of a RayService.

A RayService owns a cluster or two, their pods and the services in front of them, and every
one of them can be the subject of an event. The events stay the RayService's (``describe``
lists them all on its page) but each names the object it is about, the way a Kubernetes
Event names its ``involvedObject``. This module is the vocabulary for that reference: values
only, no IO, so the store, the API and the CLI agree on the kinds without depending on each
other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ObjectKind(StrEnum):
    """The kinds of object an event can be about, spelled as their ``kind`` field."""

    RAY_SERVICE = "RayService"
    RAY_CLUSTER = "RayCluster"
    POD = "Pod"
    SERVICE = "Service"
    COMPUTE_TEMPLATE = "ComputeTemplate"  # a node size of the API server, stored like a resource
    SECRET = "Secret"
    CONFIG_MAP = "ConfigMap"


EVENT_OWNERS = frozenset({ObjectKind.RAY_SERVICE, ObjectKind.RAY_CLUSTER})
"""The kinds whose events are kept (under their namespace and name): events about their pods,
clusters and services are theirs too."""


@dataclass(frozen=True)
class ObjectRef:
    """One object, by kind and name, in the namespace of the RayService that owns it."""

    kind: ObjectKind
    name: str
