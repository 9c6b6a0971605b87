"""``describe pod|service|raycluster``: one object on a page, laid out as ``kubectl describe``.

Each page is made from the object as ``get`` shows it (the controller's latest view of it)
and the events of the RayService or RayCluster that owns it which are about this object, so
"why is this worker 0/1?" is answered from the CLI: its readiness check, the check's last
answer, the reason in words, the Serve replicas on the node and the events of its changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rayservice.cli.tables import age, event_age, render
from rayservice.spec.quantities import format_memory

OWNER_LABEL = "ray.io/serve"  # the RayService or RayCluster a pod or service belongs to


def owner_of(item: dict[str, Any]) -> str:
    """The name of the RayService or RayCluster whose events are this object's too."""
    return str(item["metadata"].get("labels", {}).get(OWNER_LABEL, ""))


def about(events: Sequence[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    """The events about the object ``kind``/``name``."""
    return [
        e
        for e in events
        if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name
    ]


def _field(label: str, value: object, width: int = 18) -> str:
    return f"{label + ':':<{width}}{value}"


def _events(events: Sequence[dict[str, Any]]) -> list[str]:
    if not events:
        return ["Events:  <none>"]
    rows = [[e["type"], e["reason"], event_age(e), e["message"]] for e in events]
    table = render(["Type", "Reason", "Age", "Message"], rows)
    return ["Events:", *("  " + line for line in table.splitlines())]


def _resources(resources: dict[str, Any]) -> str:
    parts = [
        f"cpu {resources.get('cpu', 0):g}",
        f"memory {format_memory(resources.get('memory', 0))}",
    ]
    parts.append(f"gpu {resources.get('gpu', 0):g}")
    parts += [
        f"{name} {amount:g}"
        for name, amount in resources.items()
        if name not in ("cpu", "memory", "gpu")
    ]
    return ", ".join(parts)


def describe_pod(item: dict[str, Any], events: Sequence[dict[str, Any]]) -> str:
    meta, spec, status = item["metadata"], item.get("spec", {}), item["status"]
    labels = meta.get("labels", {})
    container = status["containerStatuses"][0]
    [ready] = [c for c in status["conditions"] if c["type"] == "Ready"]
    proxy = status.get("serveProxy", {})
    ports = ", ".join(f"{name} {port}" for name, port in spec.get("ports", {}).items())
    lines = [
        _field("Name", meta["name"]),
        _field("Namespace", meta["namespace"]),
        _field("Cluster", f"{labels.get('ray.io/cluster', '')} (of {owner_of(item)})"),
        _field(
            "Node Type",
            f"{labels.get('ray.io/node-type', '')}, group {labels.get('ray.io/group', '')}",
        ),
        _field("Ray Node ID", status.get("rayNodeId") or "<not registered with the head>"),
        _field("Start Time", f"{meta['creationTimestamp']} ({age(meta['creationTimestamp'])} ago)"),
        _field("Status", status["phase"]),
        _field("Resources", _resources(spec.get("resources", {}))),
        _field("Ports", f"{ports} (on 127.0.0.1)" if ports else "<none>"),
        "Container ray:",
        f"  {_field('Ready', container['ready'], 16)}",
        f"  {_field('Restart Count', container['restartCount'], 16)}",
    ]
    terminated = container.get("lastState", {}).get("terminated")
    if terminated:
        lines.append(f"  {_field('Last State', 'Terminated', 16)}")
        lines.append(f"    {_field('Reason', terminated['reason'], 14)}")
        lines.append(f"    {_field('Message', terminated['message'], 14)}")
    if proxy.get("check"):
        lines.append(_field("Readiness", proxy["check"]))
        lines.append(f"  {_field('Last Answer', proxy.get('answer') or '<not asked>', 16)}")
    since = ready.get("lastTransitionTime", "")
    lines += [
        "Conditions:",
        f"  {_field('Type', 'Ready', 10)}",
        f"  {_field('Status', ready['status'], 10)}",
        f"  {_field('Since', f'{since} ({age(since)} ago)' if since else '', 10)}",
    ]
    if ready.get("message"):
        lines.append(f"  {_field('Reason', ready['message'], 10)}")
    replicas = status.get("serveReplicas", [])
    lines.append("Serve Replicas:" + ("" if replicas else "  <none>"))
    lines += [f"  {r['application']}/{r['deployment']}  {r['state']}" for r in replicas]
    logs = status.get("logs", [])
    lines.append("Logs:" + ("" if logs else "  <none>"))
    lines += [f"  {path}" for path in logs]
    lines += _events(events)
    return "\n".join(lines)
