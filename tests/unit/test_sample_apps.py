"""The sample Serve apps and manifests, checked without starting Ray.

Each deployment's class is reached through ``Deployment.func_or_class`` and wired to the
others by ``LocalHandle``, which plays a DeploymentHandle in-process. Ray's own response
encoder then shows what the proxy would send over HTTP. The manifests must parse, and their
serveConfigV2 must be accepted by Ray's ``ServeDeploySchema`` once the local working_dir
is packaged.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from ray import serve
from ray.serve._private.http_util import convert_object_to_asgi_messages
from ray.serve.schema import ServeDeploySchema
from starlette.requests import Request

from rayservice.api.packaging import resolve_working_dirs
from rayservice.spec.config_objects import environment_values, load_config_object
from rayservice.spec.events import ObjectKind
from rayservice.spec.foreign_objects import not_run_here
from rayservice.spec.manifest import RayService
from rayservice.spec.references import Source, resolve

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
APPS = SAMPLES / "apps"
MANIFESTS = sorted(SAMPLES.glob("*.yaml"))


def load_app_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sample_apps.{name}", APPS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fruit = load_app_module("fruit")
calc = load_app_module("calc")
hello = load_app_module("hello")
pulse = load_app_module("pulse")
busy = load_app_module("busy")


class LocalHandle:
    """Plays a DeploymentHandle: ``handle.method.remote(*args)`` awaits ``instance.method``."""

    def __init__(self, instance: object) -> None:
        self._instance = instance

    def __getattr__(self, name: str) -> LocalMethod:
        return LocalMethod(getattr(self._instance, name))


class LocalMethod:
    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method

    async def remote(self, *args: Any) -> Any:
        return self._method(*args)


def replica(deployment: serve.Deployment, *args: Any, user_config: Any = None) -> Any:
    """An instance of the deployment's class, set up the way Serve starts a replica."""
    deployment_class = deployment.func_or_class
    assert callable(deployment_class)
    instance = deployment_class(*args)
    if user_config is not None:
        instance.reconfigure(user_config)
    return instance


def post(ingress: Callable[[Request], Any], body: object) -> Any:
    """Call an ingress deployment's ``__call__`` (async or not) with a JSON request."""
    payload = json.dumps(body).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": payload, "more_body": False}

    async def handle() -> Any:
        scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
        result = ingress(Request(scope, receive))
        return await result if inspect.isawaitable(result) else result

    return asyncio.run(handle())


def over_http(result: object) -> tuple[str, bytes]:
    """The content type and body Serve's proxy sends for a value the ingress returned."""
    start, body = convert_object_to_asgi_messages(result)
    headers = dict(start["headers"])
    return headers[b"content-type"].decode(), body["body"]


# The fruit market.


@pytest.mark.parametrize(
    ("stand", "default_price"),
    [(fruit.MangoStand, 1), (fruit.OrangeStand, 0.5), (fruit.PearStand, 0.75)],
)
def test_a_stand_without_user_config_uses_its_default_price(
    stand: serve.Deployment, default_price: float
) -> None:
    assert replica(stand).check_price(2) == 2 * default_price
    assert replica(stand, user_config={}).check_price(2) == 2 * default_price


def test_reconfigure_changes_the_price_of_a_running_stand() -> None:
    mango = replica(fruit.MangoStand, user_config={"price": 3})
    assert mango.check_price(2) == 6

    mango.reconfigure({"price": 4})

    assert mango.check_price(2) == 8


def fruit_market(mango: Any) -> Any:
    return replica(
        fruit.FruitMarket,
        LocalHandle(mango),
        LocalHandle(replica(fruit.OrangeStand, user_config={"price": 2})),
        LocalHandle(replica(fruit.PearStand, user_config={"price": 1})),
    )


def test_the_market_answers_the_json_number_from_the_stand() -> None:
    mango = replica(fruit.MangoStand, user_config={"price": 3})
    market = fruit_market(mango)

    assert over_http(post(market, ["MANGO", 2])) == ("application/json", b"6")
    mango.reconfigure({"price": 4})
    assert over_http(post(market, ["MANGO", 2])) == ("application/json", b"8")
    assert post(market, ["ORANGE", 3]) == 6
    assert post(market, ["PEAR", 5]) == 5


def test_a_fruit_without_a_stand_costs_minus_one() -> None:
    market = fruit_market(replica(fruit.MangoStand))

    assert over_http(post(market, ["KIWI", 2])) == ("application/json", b"-1")


# The pizza calculator.


def calculator(increment: float | None = None, factor: float | None = None) -> Any:
    adder_config = None if increment is None else {"increment": increment}
    multiplier_config = None if factor is None else {"factor": factor}
    return replica(
        calc.Router,
        LocalHandle(replica(calc.Adder, user_config=adder_config)),
        LocalHandle(replica(calc.Multiplier, user_config=multiplier_config)),
    )


def test_the_router_answers_pizzas_as_plain_text() -> None:
    router = calculator(increment=3, factor=5)

    assert over_http(post(router, ["MUL", 3])) == (
        "text/plain; charset=utf-8",
        b"15 pizzas please!",
    )
    assert post(router, ["ADD", 1]) == "4 pizzas please!"


def test_the_calculator_defaults_add_one_and_double() -> None:
    router = calculator()

    assert post(router, ["ADD", 1]) == "2 pizzas please!"
    assert post(router, ["MUL", 3]) == "6 pizzas please!"


def test_an_unknown_operation_is_a_bad_request() -> None:
    response = post(calculator(), ["DIV", 3])

    assert response.status_code == 400
    assert b"unknown operation 'DIV'" in response.body


# Hello.


def test_the_base_service_greets_any_request() -> None:
    service = replica(hello.BaseService)

    assert over_http(post(service, None)) == ("text/plain; charset=utf-8", b"hello world")


# Pulse.


def test_the_pulse_is_as_healthy_as_its_config_says() -> None:
    service = replica(pulse.Pulse)
    service.check_health()  # healthy until told otherwise
    assert over_http(post(service, None)) == ("text/plain; charset=utf-8", b"beating")

    service.reconfigure({"healthy": False})
    with pytest.raises(RuntimeError, match="unhealthy"):
        service.check_health()

    service.reconfigure({"healthy": True})
    service.check_health()


# Busy.


def test_a_busy_request_takes_the_configured_time_then_answers_done() -> None:
    service = replica(busy.Busy, user_config={"seconds": 0.05})

    started = time.monotonic()
    answer = over_http(post(service, None))

    assert answer == ("text/plain; charset=utf-8", b"done")
    assert time.monotonic() - started >= 0.05
    assert replica(busy.Busy).seconds == busy.DEFAULT_SECONDS


# The manifests.


def load_manifest(path: Path) -> dict[str, Any]:
    """The RayService of a sample file (the first document)."""
    manifest: dict[str, Any] = next(yaml.safe_load_all(path.read_text()))
    return manifest


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_a_sample_file_holds_what_its_rayservice_takes_values_from(path: Path) -> None:
    """The other objects of a sample are Secrets and ConfigMaps the RayService takes every
    value from, or objects for Kubernetes only (a Redis), which apply skips."""
    [service, *others] = list(yaml.safe_load_all(path.read_text()))
    kept = [o for o in others if not_run_here(o) is None]
    found = {}
    for document in kept:
        stored = load_config_object(document, path.name)
        found[Source(ObjectKind(stored["kind"]), stored["metadata"]["name"])] = environment_values(
            stored
        )
    spec = RayService.model_validate(service).spec.rayClusterConfig

    resolution = resolve(spec, found, "default")

    assert resolution.missing == ()
    assert {use.source for use in resolution.uses} == found.keys()


def test_every_sample_manifest_exists() -> None:
    assert [path.name for path in MANIFESTS] == [
        "ray-service.autoscaling.yaml",
        "ray-service.high-availability.annotation.yaml",
        "ray-service.high-availability.yaml",
        "ray-service.named-serve-service.yaml",
        "ray-service.no-ray-serve-replica.yaml",
        "ray-service.sample.yaml",
    ]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_a_manifest_is_a_rayservice_on_ray_2_60(path: Path) -> None:
    manifest = load_manifest(path)

    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayService")
    cluster = manifest["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == "2.60.0"
    groups = [group["groupName"] for group in cluster.get("workerGroupSpecs", [])]
    assert groups == (
        [] if path.name == "ray-service.named-serve-service.yaml" else ["small-group"]
    )


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_the_serve_config_is_valid_once_packaged(path: Path, tmp_path: Path) -> None:
    serve_config = yaml.safe_load(load_manifest(path)["spec"]["serveConfigV2"])

    with pytest.raises(ValueError, match="remote URIs"):
        ServeDeploySchema.model_validate(serve_config)  # Ray cannot fetch "./apps"

    packaged = resolve_working_dirs(
        serve_config, path.parent, tmp_path, path.name, may_read_local_paths=True
    )

    schema = ServeDeploySchema.model_validate(packaged)
    for app in schema.applications:
        assert app.runtime_env["working_dir"].startswith(tmp_path.resolve().as_uri() + "/")


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_app_imports_and_names_its_own_deployments(path: Path) -> None:
    serve_config = yaml.safe_load(load_manifest(path)["spec"]["serveConfigV2"])

    for app in serve_config["applications"]:
        module_name, attribute = app["import_path"].split(":")
        module = load_app_module(module_name)
        assert isinstance(getattr(module, attribute), serve.Application)
        defined = {
            value.name for value in vars(module).values() if isinstance(value, serve.Deployment)
        }
        assert {deployment["name"] for deployment in app["deployments"]} <= defined


def test_the_sample_prices_match_the_documented_answers() -> None:
    serve_config = yaml.safe_load(
        load_manifest(SAMPLES / "ray-service.sample.yaml")["spec"]["serveConfigV2"]
    )
    user_configs = {
        (app["name"], deployment["name"]): deployment.get("user_config")
        for app in serve_config["applications"]
        for deployment in app["deployments"]
    }

    assert user_configs[("fruit_app", "MangoStand")] == {"price": 3}
    assert user_configs[("fruit_app", "OrangeStand")] == {"price": 2}
    assert user_configs[("fruit_app", "PearStand")] == {"price": 1}
    assert user_configs[("math_app", "Adder")] == {"increment": 3}
    assert user_configs[("math_app", "Multiplier")] == {"factor": 5}
