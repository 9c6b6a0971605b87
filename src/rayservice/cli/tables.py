"""kubectl-style tables for ``get`` and the ``describe`` page of a RayService."""

from __future__ import annotations

import calendar
import time
from collections.abc import Sequence
from typing import Any

import yaml

from rayservice.spec import fault_tolerance
from rayservice.spec.ignored import ignored_fields
from rayservice.spec.manifest import RayService
from rayservice.spec.serve_config import health_check_lines
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import ConditionType


def age(timestamp: str | None, now: float | None = None) -> str:
    """An age the way kubectl prints one: 42s, 3m20s, 5m, 2h5m, 30h, 3d4h, 20d, 2y10d."""
    if not timestamp:
        return "<unknown>"
    then = calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))
    return human_duration(int(max(0.0, (now if now is not None else time.time()) - then)))


def human_duration(seconds: int) -> str:
    """Coarser the older: exact seconds for two minutes, then two units, then one."""
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return _two_units(minutes, "m", seconds % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two_units(days, "d", hours % 24, "h")
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return _two_units(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two_units(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    lines = ["   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
             for row in [headers, *rows]]  # fmt: skip
    return "\n".join(lines)


def _ready(obj: dict[str, Any]) -> bool:
    status = RayServiceStatus.model_validate(obj.get("status") or {})
    return status.is_true(ConditionType.READY)


def rayservice_rows(items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["NAME", "SERVICE STATUS", "NUM SERVE ENDPOINTS", "AGE"]
    if wide:
        headers += ["READY", "ACTIVE CLUSTER", "PENDING CLUSTER"]
    rows = []
    for item in items:
        status = item.get("status", {})
        row = [
            item["metadata"]["name"],
            status.get("serviceStatus", ""),
            str(status.get("numServeEndpoints", 0)),
            age(item["metadata"].get("creationTimestamp")),
        ]
        if wide:
            row += [
                str(_ready(item)),
                status.get("activeServiceStatus", {}).get("rayClusterName", "") or "<none>",
                status.get("pendingServiceStatus", {}).get("rayClusterName", "") or "<none>",
            ]
        rows.append(row)
    return headers, rows


def raycluster_rows(items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["NAME", "DESIRED WORKERS", "AVAILABLE WORKERS", "CPUS", "MEMORY", "GPUS", "STATUS",
               "AGE"]  # fmt: skip
    if wide:
        headers += ["HEAD POD", "DASHBOARD"]
    rows = []
    for item in items:
        status = item["status"]
        row = [
            item["metadata"]["name"],
            str(status["desiredWorkerReplicas"]),
            str(status["availableWorkerReplicas"]),
            status["desiredCPU"],
            status["desiredMemory"],
            status["desiredGPU"],
            status["state"],
            age(item["metadata"].get("creationTimestamp")),
        ]
        if wide:
            row += [status["head"]["podName"], status["endpoints"].get("dashboard", "")]
        rows.append(row)
    return headers, rows


def pod_rows(items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    if wide:
        headers += ["SERVE PROXY", "CLUSTER"]
    rows = []
    for item in items:
        status = item["status"]
        container = status["containerStatuses"][0]
        row = [
            item["metadata"]["name"],
            "1/1" if container["ready"] else "0/1",
            status["phase"],
            str(container["restartCount"]),
            age(item["metadata"].get("creationTimestamp")),
        ]
        if wide:
            proxy = status["serveProxy"]
            health = "healthy" if proxy["healthy"] else "absent"
            row += [f"127.0.0.1:{proxy['port']} ({health})",
                    item["metadata"]["labels"]["ray.io/cluster"]]  # fmt: skip
        rows.append(row)
    return headers, rows


def service_rows(items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    if wide:
        headers.append("BACKENDS")
    rows = []
    for item in items:
        ports = ",".join(f"{p['port']}/{p['protocol']}" for p in item["spec"]["ports"])
        row = [
            item["metadata"]["name"],
            item["spec"]["type"],
            item["spec"]["clusterIP"],
            ",".join(item["spec"].get("externalIPs", [])) or "<none>",
            ports,
            age(item["metadata"].get("creationTimestamp")),
        ]
        if wide:
            row.append(",".join(backend_names(item)) or "<none>")
        rows.append(row)
    return headers, rows


def backend_names(service: dict[str, Any]) -> list[str]:
    """The names of a service's backends (a view written by an earlier release lists names
    only, until the controller writes it again)."""
    backends = service["status"]["backends"]
    return [b["name"] if isinstance(b, dict) else str(b) for b in backends]


def _service_status_lines(title: str, status: dict[str, Any]) -> list[str]:
    lines = [f"  {title}:"]
    cluster = status.get("rayClusterName") or "<none>"
    lines.append(f"    Ray Cluster Name:  {cluster}")
    for key, label in (("targetCapacity", "Target Capacity"),
                       ("trafficRoutedPercent", "Traffic Routed Percent")):  # fmt: skip
        if status.get(key) is not None:
            lines.append(f"    {label}:  {status[key]}")
    apps = status.get("applicationStatuses") or {}
    lines.append("    Application Statuses:" + ("" if apps else "  <none>"))
    for name, app in apps.items():
        lines += [
            f"      {name}:",
            f"        Health Last Update Time:  {app.get('healthLastUpdateTime') or ''}",
        ]
        if app.get("message"):
            lines.append(f"        Message:                  {app['message']}")
        lines.append("        Serve Deployment Statuses:")
        for dep_name, dep in (app.get("serveDeploymentStatuses") or {}).items():
            lines += [
                f"          {dep_name}:",
                f"            Health Last Update Time:  {dep.get('healthLastUpdateTime') or ''}",
                f"            Last Update Time:         {dep.get('lastUpdateTime') or ''}",
                f"            Status:                   {dep['status']}",
            ]
            if dep.get("message"):
                lines.append(f"            Message:                  {dep['message']}")
        lines.append(f"        Status:                   {app['status']}")
    return lines


def _fault_tolerance(item: dict[str, Any]) -> str:
    service = RayService.model_validate({**item, "status": None})
    return fault_tolerance.summary(service.spec.rayClusterConfig, service.metadata.annotations)


def describe_rayservice(
    item: dict[str, Any], events: list[dict[str, Any]], pods: list[dict[str, Any]]
) -> str:
    meta, status = item["metadata"], item.get("status", {})
    lines = [
        f"Name:          {meta['name']}",
        f"Namespace:     {meta['namespace']}",
        f"Applied From:  {meta.get('annotations', {}).get('rayservice.io/applied-from', '')}",
        f"Generation:    {meta['generation']} (observed {status.get('observedGeneration', 0)})",
        f"Created:       {meta['creationTimestamp']}",
        f"GCS Fault Tolerance:  {_fault_tolerance(item)}",
        "Status:",
        "  Conditions:",
    ]
    for c in status.get("conditions", []):
        lines += [
            f"    Type:                  {c['type']}",
            f"    Status:                {c['status']}",
            f"    Reason:                {c['reason']}",
            f"    Message:               {c.get('message', '')}",
            f"    Last Transition Time:  {c['lastTransitionTime']}",
        ]
    lines += _service_status_lines("Active Service Status", status.get("activeServiceStatus", {}))
    pending = status.get("pendingServiceStatus", {})
    if pending.get("rayClusterName"):
        lines += _service_status_lines("Pending Service Status", pending)
    lines.append(f"  Num Serve Endpoints:  {status.get('numServeEndpoints', 0)}")
    active = status.get("activeServiceStatus", {}).get("rayClusterName")
    endpoints = [
        f"{p['metadata']['name']} (127.0.0.1:{p['status']['serveProxy']['port']})"
        for p in pods
        if p["metadata"]["labels"].get("ray.io/cluster") == active
        and p["status"]["serveProxy"]["healthy"]
    ]
    lines.append("  Serve Endpoints:" + ("" if endpoints else "  <none>"))
    lines += [f"    {e}" for e in endpoints]
    checks = health_check_lines(yaml.safe_load(item["spec"].get("serveConfigV2") or "") or {})
    heading = "Serve Health Checks (serveConfigV2; Serve's defaults where it sets none):"
    lines.append(heading + ("" if checks else "  <none>"))
    lines += [f"  {line}" for line in checks]
    ignored = ignored_fields(RayService.model_validate({**item, "status": None}))
    lines.append(
        "Ignored Fields (no meaning on the local backend):" + ("" if ignored else "  <none>")
    )
    lines += [f"  {f}" for f in ignored]
    lines.append("Events:" + ("" if events else "  <none>"))
    if events:
        rows = [[e["type"], e["reason"], event_age(e), _involved(e), e["message"]] for e in events]
        table = render(["Type", "Reason", "Age", "Object", "Message"], rows)
        lines += ["  " + line for line in table.splitlines()]
    return "\n".join(lines)


def event_age(event: dict[str, Any], now: float | None = None) -> str:
    """kubectl's Age of an event: ``5m`` when it happened once, ``10s (x5 over 3m)`` (since
    the last time, how often, since the first time) when it repeated."""
    if event["count"] > 1:
        last, first = age(event["lastTimestamp"], now), age(event["firstTimestamp"], now)
        return f"{last} (x{event['count']} over {first})"
    return age(event["firstTimestamp"], now)


def _involved(event: dict[str, Any]) -> str:
    involved = event["involvedObject"]
    return f"{involved['kind']}/{involved['name']}"
