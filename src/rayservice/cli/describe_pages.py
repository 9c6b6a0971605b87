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
from rayservice.spec.events import ObjectKind
from rayservice.spec.quantities import format_memory
from rayservice.spec.vocabulary import EventReason, ServicePort

OWNER_LABEL = "ray.io/serve"  # the RayService or RayCluster a pod or service belongs to
ENDPOINT_REASONS = frozenset({EventReason.ENDPOINT_ADDED, EventReason.ENDPOINT_REMOVED})


def owner_of(item: dict[str, Any]) -> str:
    """The name of the RayService or RayCluster whose events are this object's too."""
    return str(item["metadata"].get("labels", {}).get(OWNER_LABEL, ""))


def events_for(item: dict[str, Any], events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of the owner that tell this object's story: those about it, and for a
    serve service also its endpoints coming and going (those are about the pods)."""
    kind, name = item["kind"], item["metadata"]["name"]
    endpoints = kind == ObjectKind.SERVICE and any(
        port["name"] == ServicePort.SERVE for port in item["spec"]["ports"]
    )
    return [
        e
        for e in events
        if (e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name)
        or (endpoints and e["reason"] in ENDPOINT_REASONS)
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
        if "exitCode" in terminated:
            lines.append(f"    {_field('Exit Code', terminated['exitCode'], 14)}")
        lines.append(f"    {_field('Message', terminated['message'] or '<no output>', 14)}")
    check = status.get("readinessCheck", {})
    if check.get("check"):
        lines.append(_field("Readiness", check["check"]))
    if check.get("answer"):
        lines.append(f"  {_field('Last Answer', check['answer'], 16)}")
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


def describe_service(item: dict[str, Any], events: Sequence[dict[str, Any]]) -> str:
    meta, spec, status = item["metadata"], item["spec"], item["status"]
    ports = ", ".join(f"{p['name']} {p['port']}/{p['protocol']}" for p in spec["ports"])
    lines = [
        _field("Name", meta["name"]),
        _field("Namespace", meta["namespace"]),
        _field("Owner", owner_of(item)),
        _field("Type", spec["type"]),
        _field("IP", spec["clusterIP"]),
        _field("External IPs", ",".join(spec.get("externalIPs", [])) or "<none>"),
        _field("Port", ports),
        _field("Selector", spec.get("selector") or "<none>"),
    ]
    backends = [
        b if isinstance(b, dict) else {"name": b, "address": "", "weight": "", "state": ""}
        for b in status["backends"]
    ]  # a view of an earlier release names them only
    if backends:
        rows = [[b["name"], b["address"], str(b["weight"]), b["state"]] for b in backends]
        table = render(["NAME", "ADDRESS", "WEIGHT", "STATE"], rows)
        lines += ["Backends:", *("  " + line for line in table.splitlines())]
    else:
        lines.append("Backends:         <none>")
    lines += _events(events)
    return "\n".join(lines)


def _workers(status: dict[str, Any]) -> str:
    available, desired = (
        status.get("availableWorkerReplicas", 0),
        status.get("desiredWorkerReplicas", 0),
    )
    bounds = f"min {status.get('minWorkerReplicas', 0)}, max {status.get('maxWorkerReplicas', 0)}"
    return f"{available} available of {desired} desired ({bounds})"


def describe_raycluster(item: dict[str, Any], events: Sequence[dict[str, Any]]) -> str:
    meta, status = item["metadata"], item["status"]
    head = status.get("head", {})
    endpoints = ", ".join(f"{name} {port}" for name, port in status.get("endpoints", {}).items())
    lines = [
        _field("Name", meta["name"]),
        _field("Namespace", meta["namespace"]),
        _field(
            "Owner",
            f"{owner_of(item)} ({status['role']})"
            if "role" in status
            else f"{meta['name']} (standalone; no node runs)",  # the stored object only
        ),
        _field("Created", f"{meta['creationTimestamp']} ({age(meta['creationTimestamp'])} ago)"),
        _field("State", status.get("state") or "<not ready>"),
        _field("Head", head.get("podName") or "<none>"),
        _field("Endpoints", f"{endpoints} (on 127.0.0.1)" if endpoints else "<none>"),
        _field("Workers", _workers(status)),
        _field(
            "Resources",
            f"cpu {status.get('desiredCPU', '0')}, memory {status.get('desiredMemory', '0')},"
            f" gpu {status.get('desiredGPU', '0')} (desired, all nodes together)",
        ),
    ]
    groups = status.get("groups", [])
    if groups:
        rows = [
            [g["name"], f"{g['ready']}/{g['nodes']}", _resources(g["resources"])] for g in groups
        ]
        table = render(["GROUP", "READY", "EACH NODE"], rows)
        lines += ["Node Groups:", *("  " + line for line in table.splitlines())]
    apps = status.get("serveApplications", {})
    lines.append("Serve Applications:" + ("" if apps else "  <none>"))
    lines += [f"  {name}  {state}" for name, state in apps.items()]
    conditions = status.get("conditions", [])
    if conditions:
        rows = [[c["type"], c["status"], c["reason"], c.get("message", "")] for c in conditions]
        table = render(["TYPE", "STATUS", "REASON", "MESSAGE"], rows)
        lines += ["Conditions:", *("  " + line for line in table.splitlines())]
    if "autoscaler" in status:
        lines += _autoscaler_lines(status["autoscaler"])
    lines += _events(events)
    return "\n".join(lines)


def _autoscaler_lines(autoscaler: dict[str, Any]) -> list[str]:
    """Ray's autoscaler: whether it runs, what it last asked for, and ``ray status``."""
    scale = autoscaler.get("scale") or {}
    asked = ", ".join(
        f"{group} {count}" for group, count in sorted(scale.get("replicas", {}).items())
    )
    leaving = ", ".join(scale.get("workersToDelete", []))
    request = f"workers: {asked or 'none asked yet'}" + (f"; removing {leaving}" if leaving else "")
    lines = [
        "Autoscaler:",
        f"  State:          {'running' if autoscaler.get('running') else 'not running'}",
        f"  Last Request:   {request}",
    ]
    ray_status = str(autoscaler.get("rayStatus") or "").strip()
    if ray_status:
        lines += ["  Ray Status:", *("    " + line for line in ray_status.splitlines())]
    return lines
