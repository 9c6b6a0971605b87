"""What ``ray status`` prints for a cluster, read from its dashboard (``/api/cluster_status``).

Ray's autoscaler writes its status into the GCS on every round (its nodes, pending demands, idle
and failed nodes, resource usage) and the dashboard answers it as the text ``ray status``
prints. ``describe raycluster`` shows it for a cluster that runs Ray's autoscaler.
"""

from __future__ import annotations

from typing import Protocol

from rayservice.serve_client.dashboard_http import DashboardClient, check_success, json_answer

_STATUS = "the cluster status"


class RayStatusReader(Protocol):
    def ray_status(self, dashboard_url: str, token: str) -> str:
        """The text ``ray status`` prints ("" while the autoscaler has written none)."""
        ...


class DashboardRayStatus(DashboardClient):
    def ray_status(self, dashboard_url: str, token: str) -> str:
        response = self._call_dashboard(
            "GET", dashboard_url, token, "/api/cluster_status", params={"format": "1"}
        )
        check_success(response, dashboard_url)
        answer = json_answer(response, _STATUS)
        data = answer.get("data") if isinstance(answer, dict) else None
        text = data.get("clusterStatus") if isinstance(data, dict) else None
        return text if isinstance(text, str) else ""
