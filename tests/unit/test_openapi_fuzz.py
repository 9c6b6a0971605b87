"""The API fuzzed from its own OpenAPI document (schemathesis), in-process over the fakes.

Generated requests, valid and not, go to every operation the app publishes in ``/openapi.json``;
no answer may be a 5xx, and an answer the document describes must match it. The v1 routes take
and give ``dict[str, Any]`` bodies, so their document promises little: what this finds is chiefly
a route that fails with an unhandled error on input nobody wrote a test for. The Serve and job
operations are pointed at a running (fake) cluster so that their bodies reach Ray's side, not
only the 404 of an unknown cluster. Bounded: a few examples per operation, a per-example
deadline, no shrinking of long runs.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from rayservice.api.app import create_app
from rayservice.providers.fake import FakeProvider
from rayservice.serve_client.fake import FakeServeClient
from rayservice.serve_client.fake_jobs import FakeJobClient
from rayservice.spec.events import ObjectKind
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.fake import FakeFront
from tests.seed_003 import SEED_CLUSTER, SEED_TEMPLATE
from tests.unit.world import FakeClock, new_reconciler

CLUSTER, NAMESPACE = "test-cluster", "default"
LOCAL_CALLER = ("127.0.0.1", 50000)
MAX_EXAMPLES = 12
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=timedelta(seconds=5),
    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found, not shrunk
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases on every run: a failure here repeats
)
CHECKS = [not_a_server_error, response_schema_conformance]


def _document() -> dict[str, Any]:
    """The app's OpenAPI document (it does not depend on what the store holds)."""
    with tempfile.TemporaryDirectory() as tmp:
        return _app(Path(tmp)).openapi()


def _app(folder: Path) -> FastAPI:
    """The API over a fresh store in ``folder`` with a running cluster ``default/test-cluster``
    made by the seed's template and cluster bodies."""
    store = SqliteStore(folder / "store.db")
    clock = FakeClock()
    provider = FakeProvider(clock=clock)
    serve = FakeServeClient(clock=clock)
    app = create_app(
        store,
        provider,
        folder / "packages",
        lambda: None,
        serve=serve,
        jobs=FakeJobClient(clock=clock),
    )
    with TestClient(app, client=LOCAL_CALLER) as client:
        template = client.post(
            f"/apis/v1/namespaces/{NAMESPACE}/compute_templates", json=SEED_TEMPLATE
        )
        created = client.post(f"/apis/v1/namespaces/{NAMESPACE}/clusters", json=SEED_CLUSTER)
        assert (template.status_code, created.status_code) == (200, 200), created.text
    resource = store.get(ObjectKind.RAY_CLUSTER, NAMESPACE, CLUSTER)
    assert resource is not None
    new_reconciler(store, provider, serve, FakeFront(), clock).reconcile(resource)
    provider.make_head_ready(CLUSTER)
    return app


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return _app(tmp_path_factory.mktemp("openapi-fuzz"))


# The cases are generated from the document; each one is sent to the module's app in-process.
schema = schemathesis.openapi.from_dict(_document())


@schema.include(path_regex=r"^/apis/v1/").parametrize()
@FUZZ_SETTINGS
def test_v1_operations_answer_without_server_errors(
    case: schemathesis.Case[Any], fuzzed_app: FastAPI
) -> None:
    parameters = case.path_parameters
    if parameters is not None and "cluster" in parameters:
        parameters["namespace"], parameters["cluster"] = NAMESPACE, CLUSTER
    case.call_and_validate(app=fuzzed_app, checks=CHECKS)


@schema.exclude(path_regex=r"^/apis/v1/").parametrize()
@FUZZ_SETTINGS
def test_the_other_operations_answer_without_server_errors(
    case: schemathesis.Case[Any], fuzzed_app: FastAPI
) -> None:
    case.call_and_validate(app=fuzzed_app, checks=CHECKS)
