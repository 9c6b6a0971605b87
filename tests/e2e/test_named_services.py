"""Services named and placed as a KubeRay manifest says, through the CLI.

The sample ``ray-service.named-serve-service.yaml`` names its serve Service ``fruit-stand``,
makes it a LoadBalancer and moves Serve to port 9000 the KubeRay way (the head container's port
named ``serve``); a copy of it under another name, whose head container names the very same
ports (6379, 8265, 10001, 9000), runs beside it. Each answers by its own name and port, and the
LoadBalancer listens on the controller's service address. The test controller's service
address is 127.0.0.2, a loopback address other than 127.0.0.1 (tests listen on loopback only):
the socket shows it is bound there and nowhere else, as it would be on 0.0.0.0 by default.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Cli
from tests.e2e.steps import edit, get_json
from tests.helpers import eventually, listening_addresses

pytestmark = pytest.mark.e2e
SAMPLE = "samples/ray-service.named-serve-service.yaml"
COPY = "samples/ray-service.named-serve-service.copy.yaml"
SERVICE_ADDRESS = "127.0.0.2"


def _fruit(address: str, port: int) -> str:
    response = httpx.post(f"http://{address}:{port}/fruit", json=["MANGO", 2], timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def test_two_services_naming_the_same_ports_each_answer_by_their_name_and_port(
    cli: Cli,
) -> None:
    copy = cli.workdir / COPY
    copy.write_text((cli.workdir / SAMPLE).read_text())
    edit(copy, "name: fruit-stand-service", "name: fruit-stand-copy")
    edit(copy, "name: fruit-stand\n", "name: fruit-stand-2\n")
    cli.run("start", "--service-address", SERVICE_ADDRESS)

    first = cli.run("apply", "-f", SAMPLE)
    second = cli.run("apply", "-f", COPY)
    cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "300")
    cli.run("apply", "-f", COPY, "--wait", "--timeout", "300")

    # 127.0.0.2 is loopback: the apply says the LoadBalancer stays there
    assert (
        "spec.serveService.spec.type is LoadBalancer, but fruit-stand stays on loopback: the"
        f" controller's --service-address is {SERVICE_ADDRESS}"
    ) in first.stderr
    assert "port 9000, named serve in the head container, is in use" not in first.stderr
    services = {s["metadata"]["name"]: s for s in get_json(cli, "get", "services")["items"]}
    stand, stand_2 = services["fruit-stand"], services["fruit-stand-2"]
    assert stand["spec"]["ports"][0]["port"] == 9000
    assert stand["spec"]["type"] == "LoadBalancer"
    assert stand["spec"]["externalIPs"] == [SERVICE_ADDRESS]
    assert stand["metadata"]["labels"]["team"] == "fruit"
    port_2 = stand_2["spec"]["ports"][0]["port"]
    assert port_2 != 9000
    heads = (services["fruit-stand-service-head-svc"], services["fruit-stand-copy-head-svc"])
    assert len({head["spec"]["ports"][0]["port"] for head in heads}) == 2
    assert "port 9000, named serve in the head container, is in use" in second.stderr

    assert _fruit(SERVICE_ADDRESS, 9000) == "6"
    assert _fruit(SERVICE_ADDRESS, port_2) == "6"
    eventually(lambda: listening_addresses(9000) == {SERVICE_ADDRESS},
               message="fruit-stand listens on the service address only")  # fmt: skip
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://127.0.0.1:9000/fruit", timeout=5)
    table = cli.run("get", "services").stdout
    assert any(
        line.split()[:4] == ["fruit-stand", "LoadBalancer", SERVICE_ADDRESS, SERVICE_ADDRESS]
        for line in table.splitlines()
    )

    cli.run("delete", "-f", COPY)
    cli.run("delete", "-f", SAMPLE)
    eventually(lambda: not get_json(cli, "get", "services")["items"], timeout=120,
               message="both services are gone")  # fmt: skip
