"""Every manifest of ``tests/data/bad-manifests`` is refused, and refusing it changes nothing.

Each file holds one mistake and says in its header what the refusal must contain
(``# expect: <text>``) and, when the controller's API never sees it as a document (an empty
file, a repeated object, a list), ``# api: none``. Each is applied with the command line against
the API in this process, while a good service is stored: the command must fail with the
message, the API must answer 422 to the document itself, and the stored service must keep its
spec, generation and resourceVersion, with nothing else stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from rayservice.api.app import create_app
from rayservice.cli import main as cli_main
from rayservice.cli.main import main
from rayservice.providers.fake import FakeProvider
from rayservice.spec.vocabulary import KIND
from rayservice.store.sqlite import SqliteStore
from tests.unit.test_cli import InProcessClient

DATA = Path(__file__).parents[1] / "data"
BAD = sorted((DATA / "bad-manifests").glob("*.yaml"))
GOOD = DATA / "good-service.yaml"
LOCAL_CALLER = ("127.0.0.1", 50000)
ROUTE = "/apis/ray.io/v1/namespaces/{namespace}/{plural}/{name}"


def header(path: Path, key: str) -> str | None:
    """The value of ``# key: value`` in the comment lines that open the file."""
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        found, _, value = line[1:].strip().partition(": ")
        if found == key:
            return value
    return None


class World:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.store = SqliteStore(tmp_path / "store.db")
        self.app = create_app(self.store, FakeProvider(), tmp_path / "packages", lambda: None)
        monkeypatch.setattr(InProcessClient, "app", self.app, raising=False)
        monkeypatch.setattr(cli_main, "RayServiceClient", InProcessClient)
        self.http = TestClient(self.app, client=LOCAL_CALLER)

    def snapshot(self) -> list[tuple[str, str, int, int, dict[str, Any]]]:
        return [
            (r.kind, r.key, r.generation, r.resource_version, r.manifest)
            for kind in (KIND, "RayCluster")
            for r in self.store.list_resources(kind)
        ]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    world = World(tmp_path, monkeypatch)
    assert main(["apply", "-f", str(GOOD)]) == 0
    yield world


def test_there_are_enough_bad_manifests_and_each_says_what_it_expects() -> None:
    assert len(BAD) >= 40
    assert all(header(path, "expect") for path in BAD)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_a_bad_manifest_is_refused_and_changes_nothing(
    path: Path, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = header(path, "expect")
    assert expected
    before = world.snapshot()
    capsys.readouterr()

    code = main(["apply", "-f", str(path)])

    errors = capsys.readouterr().err
    assert code != 0
    assert expected in errors
    if header(path, "api") != "none":
        document = yaml.safe_load(path.read_text())
        meta = document["metadata"]
        plural = "rayclusters" if document.get("kind") == "RayCluster" else "rayservices"
        url = ROUTE.format(
            namespace=meta.get("namespace", "default"), plural=plural, name=meta["name"]
        )
        answer = world.http.put(url, json={"manifest": document, "source": path.name})
        assert answer.status_code == 422
        assert expected in answer.json()["message"]
    assert world.snapshot() == before
    assert world.snapshot()[0][1] == "default/good-svc"


@pytest.mark.parametrize(
    "verb", [["apply", "-f"], ["diff", "-f"], ["delete", "-f"], ["apply", "--dry-run", "-f"]]
)
def test_an_empty_file_is_refused_by_every_verb_that_reads_one(
    verb: list[str], world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    before = world.snapshot()

    code = main([*verb, str(empty)])

    assert code != 0
    assert f"no objects passed to {verb[0]}" in capsys.readouterr().err
    assert world.snapshot() == before


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ({"manifest": [{"kind": "RayService"}]}, "got a list"),
        ({"manifest": "apiVersion: ray.io/v1"}, "got a str"),
        ({"source": "svc.yaml"}, "got missing"),
        ({"manifest": None}, "got missing"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_manifest_that_is_not_an_object_answers_400(
    body: dict[str, Any], found: str, dry_run: bool, world: World
) -> None:
    before = world.snapshot()
    url = ROUTE.format(namespace="default", plural="rayservices", name="good-svc")

    answer = world.http.put(url, json=body, params={"dryRun": "All"} if dry_run else None)

    assert answer.status_code == 400
    assert "manifest must be an object" in answer.json()["detail"]
    assert found in answer.json()["detail"]
    assert world.snapshot() == before
