"""The API's security rules: the token, where the controller may listen, and which caller may
make it read a folder from its disk; and the command line sending the token.

Nothing here listens on a socket: the API runs in TestClient, and the refusals to listen
beyond loopback are checked on the functions that decide them, with the start of a real
controller replaced by a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rayservice.api import settings
from rayservice.api.app import create_app
from rayservice.api.credentials import (
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    TokenFileError,
    client_token,
    listen_token,
    read_token_file,
)
from rayservice.api.packaging import package_working_dir
from rayservice.cli import daemon
from rayservice.cli import main as cli_main
from rayservice.client import RayServiceClient, Unauthenticated
from rayservice.controller import process
from rayservice.host.addresses import ExposedWithoutToken
from rayservice.providers.fake import FakeProvider
from rayservice.spec.addresses import is_loopback
from rayservice.spec.vocabulary import KIND
from rayservice.store.sqlite import SqliteStore
from tests.unit.test_api import DEMO, LOCAL_CALLER, REMOTE_APPS, manifest

TOKEN = "s3cret-token"
LIST = "/apis/ray.io/v1/rayservices"
REMOTE_CALLER = ("10.1.2.3", 5000)
WORKING_DIR = "spec.serveConfigV2.applications[0].runtime_env.working_dir"
REMOTE_CALLER_MESSAGE = (
    "a local path is read from the controller's disk only for a caller on the same machine"
)


def token_file(folder: Path, text: str = f"{TOKEN}\n", mode: int = 0o600) -> Path:
    path = folder / "token"
    path.write_text(text)
    path.chmod(mode)
    return path


@dataclass
class Controller:
    """The API app in this process, over a store in a temporary folder."""

    app: FastAPI
    store: SqliteStore
    packages: Path
    base_dir: Path

    def client(self, caller: tuple[str, int] = LOCAL_CALLER) -> TestClient:
        return TestClient(self.app, client=caller)


def controller(tmp_path: Path, token: str | None) -> Controller:
    store = SqliteStore(tmp_path / "store.db")
    packages = tmp_path / "packages"
    app = create_app(store, FakeProvider(clock=lambda: 0.0), packages, lambda: None, token=token)
    base_dir = tmp_path / "manifests"
    (base_dir / "apps").mkdir(parents=True)
    (base_dir / "apps" / "hello.py").write_text("app = None\n")
    return Controller(app, store, packages, base_dir)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[TestClient]:
    with controller(tmp_path, TOKEN).client() as client:
        yield client


# -- the token ------------------------------------------------------------------------------


def test_a_request_without_the_token_is_refused_with_kuberays_error_shape(
    guarded: TestClient,
) -> None:
    response = guarded.get(LIST)

    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == 16  # gRPC Unauthenticated
    assert "Authorization: Bearer" in body["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization", ["Bearer wrong", "wrong", f"Bearer {TOKEN}x", TOKEN[:-1], "Bearer", ""]
)
def test_a_wrong_token_is_refused(guarded: TestClient, authorization: str) -> None:
    response = guarded.get(LIST, headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.json()["code"] == 16
    assert TOKEN not in response.text


@pytest.mark.parametrize(
    "authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}", TOKEN], ids=["bearer", "case", "bare"]
)
def test_the_token_is_accepted_as_bearer_or_bare(guarded: TestClient, authorization: str) -> None:
    response = guarded.get(LIST, headers={"Authorization": authorization})

    assert response.status_code == 200
    assert response.json()["items"] == []


def test_the_health_check_needs_no_token(guarded: TestClient) -> None:
    assert guarded.get("/healthz").status_code == 200


def test_every_other_route_needs_the_token_even_an_unknown_one(guarded: TestClient) -> None:
    body = {"manifest": manifest(), "source": "demo.yaml"}

    assert guarded.put(DEMO, json=body).status_code == 401
    assert guarded.delete(DEMO).status_code == 401
    assert guarded.get("/no/such/route").status_code == 401
    assert guarded.post("/healthz").status_code == 401


def test_without_a_token_the_api_asks_for_none(tmp_path: Path) -> None:
    with controller(tmp_path, None).client() as client:
        assert client.get(LIST).status_code == 200


def test_a_token_header_with_characters_beyond_ascii_is_refused_not_an_error(
    guarded: TestClient,
) -> None:
    response = guarded.get(LIST, headers={"Authorization": "Bearer café".encode("latin-1")})

    assert response.status_code == 401


# -- where the controller may listen ----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("::ffff:10.1.2.3", False),
        ("my-host.example", False),
        ("testclient", False),
        (None, False),
    ],
)
def test_loopback_addresses(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "my-host.example"])
def test_listening_beyond_loopback_without_a_token_file_is_refused(host: str) -> None:
    with pytest.raises(ExposedWithoutToken, match=f"refusing to listen on {host}.*--token-file"):
        listen_token(host, None)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_needs_no_token_file(host: str) -> None:
    assert listen_token(host, None) is None


def test_a_token_file_gives_its_first_line_stripped(tmp_path: Path) -> None:
    path = token_file(tmp_path, f"  {TOKEN}  \nignored second line\n")

    assert listen_token("0.0.0.0", path) == TOKEN
    assert listen_token("127.0.0.1", path) == TOKEN  # given a file, loopback demands it too


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        (f"{TOKEN}\n", 0o644, r"can be accessed by group or others \(mode 0644\).*chmod 600"),
        (f"{TOKEN}\n", 0o640, r"group or others \(mode 0640\)"),
        ("", 0o600, "is empty"),
        ("\n\n", 0o600, "is empty"),
        ("two words\n", 0o600, "printable ASCII without spaces"),
    ],
)
def test_an_unusable_token_file_is_refused_with_the_reason(
    tmp_path: Path, text: str, mode: int, message: str
) -> None:
    with pytest.raises(TokenFileError, match=message):
        read_token_file(token_file(tmp_path, text, mode))


def test_a_missing_token_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read the token file"):
        listen_token("0.0.0.0", tmp_path / "absent")


def _must_not_run(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("a controller was started")


@pytest.mark.parametrize("verb", ["controller", "start"])
def test_the_cli_refuses_to_start_beyond_loopback_without_a_token_file_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    monkeypatch.setattr(process, "serve_forever", _must_not_run)
    monkeypatch.setattr(daemon, "start", _must_not_run)

    code = cli_main.main([verb, "--host", "0.0.0.0"])

    assert code == 2
    assert "refusing to listen on 0.0.0.0 without a token" in capsys.readouterr().err


def test_the_cli_refuses_an_open_token_file_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(process, "serve_forever", _must_not_run)
    path = token_file(tmp_path, mode=0o644)

    code = cli_main.main(["controller", "--host", "0.0.0.0", "--token-file", str(path)])

    assert code == 2
    assert "chmod 600" in capsys.readouterr().err


def test_the_controller_process_refuses_too_before_it_opens_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(process, "SqliteStore", _must_not_run)
    monkeypatch.setattr("uvicorn.run", _must_not_run)
    home, pid_file = tmp_path / "home", tmp_path / "controller.pid"

    with pytest.raises(ExposedWithoutToken):
        process.serve_forever(home, create_app, host="0.0.0.0", port=1, pid_file=pid_file)

    assert not home.exists() and not pid_file.exists()


def test_start_hands_the_listen_options_to_the_background_controller(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[tuple[str, list[str]]] = []

    def fake_start(home: Path, client: RayServiceClient, controller_args: list[str]) -> str:
        started.append((client.base_url, controller_args))
        return "started"

    monkeypatch.setattr(daemon, "start", fake_start)
    monkeypatch.setenv("RAYSERVICE_API_PORT", "9999")
    monkeypatch.chdir(tmp_path)
    token_file(tmp_path)

    assert cli_main.main(["start", "--host", "0.0.0.0", "--token-file", "token"]) == 0
    assert cli_main.main(["start", "--service-address", "127.0.0.1"]) == 0
    assert cli_main.main(["start", "--head-service-address", "127.0.0.3"]) == 0

    token_path = str(tmp_path.resolve() / "token")
    local = ["--backend", "local"]  # always said: the environment may say another
    assert started == [
        (
            "http://127.0.0.1:9999",
            ["--host", "0.0.0.0", "--service-address", "0.0.0.0", "--token-file", token_path,
             *local],
        ),
        ("http://127.0.0.1:9999",
         ["--host", "127.0.0.1", "--service-address", "127.0.0.1", *local]),
        (
            "http://127.0.0.1:9999",
            [
                "--host", "127.0.0.1", "--service-address", "0.0.0.0",
                "--head-service-address", "127.0.0.3", *local,
            ],
        ),
    ]  # fmt: skip


def test_a_service_address_that_is_not_an_ip_address_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["controller", "--service-address", "example.com"])

    assert exit_info.value.code == 2
    assert "'example.com' is not an IP address" in capsys.readouterr().err


def test_a_service_address_this_machine_does_not_have_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["controller", "--head-service-address", "192.0.2.7"])  # TEST-NET-1

    assert exit_info.value.code == 2
    assert "'192.0.2.7' is not an address of this machine" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8888"),
        ("0.0.0.0", "http://127.0.0.1:8888"),
        ("::", "http://[::1]:8888"),
        ("10.1.2.3", "http://10.1.2.3:8888"),
    ],
)
def test_the_url_a_local_client_reaches_a_listener_at(
    monkeypatch: pytest.MonkeyPatch, host: str, url: str
) -> None:
    monkeypatch.delenv("RAYSERVICE_API_PORT", raising=False)

    assert settings.local_api_url(host) == url


# -- which caller may name a folder on the controller's disk ---------------------------------


def put(client: TestClient, ctl: Controller, document: dict[str, Any], **params: str) -> Any:
    body = {"manifest": document, "source": "demo.yaml", "baseDir": str(ctl.base_dir)}
    return client.put(DEMO, json=body, params=params)


@pytest.mark.parametrize("dry_run", [False, True], ids=["apply", "dry-run"])
@pytest.mark.parametrize(
    "location",
    [
        "./apps",
        "/etc",
        "file:///etc",
        "file:///etc/archive.zip",
        "file://other-host/srv/apps.zip",
    ],
)
def test_a_remote_caller_may_not_name_a_local_path(
    tmp_path: Path, location: str, dry_run: bool
) -> None:
    ctl = controller(tmp_path, None)

    with ctl.client(REMOTE_CALLER) as client:
        response = put(client, ctl, manifest(location), **({"dryRun": "All"} if dry_run else {}))

    assert response.status_code == 422
    [problem] = response.json()["problems"]
    assert problem["field"] == WORKING_DIR
    assert problem["message"] == REMOTE_CALLER_MESSAGE
    assert problem["valid"].startswith("a remote URI")
    assert ctl.store.get(KIND, "default", "demo") is None
    assert not ctl.packages.exists()  # nothing was read, nothing packaged


def test_a_remote_caller_may_not_name_local_py_modules(tmp_path: Path) -> None:
    ctl = controller(tmp_path, None)
    document = manifest()
    document["spec"]["serveConfigV2"] = document["spec"]["serveConfigV2"].replace(
        "runtime_env:\n", "runtime_env:\n    py_modules:\n    - ./apps\n"
    )

    with ctl.client(REMOTE_CALLER) as client:
        response = put(client, ctl, document)

    assert response.status_code == 422
    [problem] = response.json()["problems"]
    assert problem["field"] == "spec.serveConfigV2.applications[0].runtime_env.py_modules[0]"


@pytest.mark.parametrize("location", [REMOTE_APPS, "s3://bucket/apps.zip", "gs://bucket/apps.zip"])
def test_a_remote_caller_may_name_remote_uris(tmp_path: Path, location: str) -> None:
    ctl = controller(tmp_path, None)

    with ctl.client(REMOTE_CALLER) as client:
        assert put(client, ctl, manifest(location)).status_code == 200


def test_a_remote_caller_may_name_a_package_of_the_controllers_cache(tmp_path: Path) -> None:
    ctl = controller(tmp_path, None)
    packaged = package_working_dir(ctl.base_dir / "apps", ctl.packages)

    with ctl.client(REMOTE_CALLER) as client:
        assert put(client, ctl, manifest(packaged)).status_code == 200
        escaped = packaged.replace("/packages/", "/packages/../manifests/")
        assert put(client, ctl, manifest(escaped)).status_code == 422


@pytest.mark.parametrize("caller", [LOCAL_CALLER, ("::1", 5000), ("::ffff:127.0.0.1", 5000)])
def test_a_caller_on_loopback_may_name_a_local_folder(
    tmp_path: Path, caller: tuple[str, int]
) -> None:
    ctl = controller(tmp_path, None)

    with ctl.client(caller) as client:
        response = put(client, ctl, manifest("./apps"))

    assert response.status_code == 200
    assert ctl.packages.is_dir()


# -- the command line sends the token -----------------------------------------------------------


Handler = Callable[[httpx.Request], httpx.Response]


def client_class(handler: Handler) -> type[RayServiceClient]:
    """RayServiceClient as the CLI builds it, its requests answered by ``handler``."""

    class Mocked(RayServiceClient):
        def __init__(self, base_url: str, *, token: str | None = None) -> None:
            super().__init__(base_url, token=token, transport=httpx.MockTransport(handler))

    return Mocked


def test_the_cli_sends_the_token_of_the_file_as_bearer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Authorization")))
        return httpx.Response(200, json={"items": []})

    monkeypatch.setattr(cli_main, "RayServiceClient", client_class(handler))
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv(TOKEN_FILE_ENV, str(token_file(tmp_path)))
    monkeypatch.setenv(settings.API_URL_ENV, "https://controller.example:8443/")

    assert cli_main.main(["get", "rayservice"]) == 0

    assert seen == [("https://controller.example:8443/apis/ray.io/v1/namespaces/default/rayservices",
                     f"Bearer {TOKEN}")]  # fmt: skip


def test_the_token_variable_comes_before_the_file(tmp_path: Path) -> None:
    environ = {TOKEN_ENV: "from-variable", TOKEN_FILE_ENV: str(token_file(tmp_path))}

    assert client_token(environ) == "from-variable"
    assert client_token({TOKEN_FILE_ENV: environ[TOKEN_FILE_ENV]}) == TOKEN
    assert client_token({}) is None


def test_a_refusal_for_want_of_a_token_tells_to_set_the_token_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"code": 16, "message": "a valid token is required"})

    monkeypatch.setattr(cli_main, "RayServiceClient", client_class(handler))
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)

    assert cli_main.main(["get", "rayservice"]) == 1

    assert f"file named by {TOKEN_FILE_ENV}" in capsys.readouterr().err


def test_the_cli_token_opens_the_api(guarded: TestClient) -> None:
    def through_the_app(request: httpx.Request) -> httpx.Response:
        answer: httpx.Response = guarded.request(
            request.method, request.url.path, headers=request.headers, content=request.content
        )
        return answer

    transport = httpx.MockTransport(through_the_app)
    with_token = RayServiceClient("http://testserver", token=TOKEN, transport=transport)
    without = RayServiceClient("http://testserver", transport=transport)

    assert with_token.list_objects("rayservices", None) == []
    with pytest.raises(Unauthenticated, match=TOKEN_FILE_ENV):
        without.list_objects("rayservices", None)
