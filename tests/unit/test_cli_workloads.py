"""The command line's verbs for what runs on a cluster (create, serve, job, dashboard),
through the real client against the API in this process, over the fakes of the provider,
Ray Serve and Ray's job API."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from rayservice.cli import main as cli_main
from rayservice.cli.workloads import with_absolute_code_folders
from rayservice.client import RayServiceClient
from rayservice.serve_client.fake import running_state
from rayservice.spec.events import ObjectKind
from tests.seed_003 import SEED_CLUSTER, SEED_TEMPLATE
from tests.unit.test_api_v1 import Api, api  # noqa: F401 (the fixture)

CLUSTER = "test-cluster"


@pytest.fixture
def cli(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:  # noqa: F811
    """The command line's client, answered by the in-process API."""

    class InProcess(RayServiceClient):
        def __init__(self, base_url: str, *, token: str | None = None) -> None:
            super().__init__(base_url, token=token)
            self._http = api.client

    monkeypatch.setattr(cli_main, "RayServiceClient", InProcess)
    return api


def write(folder: Path, name: str, document: object) -> str:
    path = folder / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_create_makes_a_template_and_a_cluster_from_body_files(
    cli: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = write(tmp_path, "template.yaml", SEED_TEMPLATE)
    cluster = write(tmp_path, "cluster.json", SEED_CLUSTER)

    assert cli_main.main(["create", "computetemplate", "-f", template]) == 0
    assert cli_main.main(["create", "cluster", "-f", cluster]) == 0

    out = capsys.readouterr().out
    assert 'computetemplate "default-template" created' in out
    assert f'cluster "{CLUSTER}" created' in out
    assert cli.store.get(ObjectKind.RAY_CLUSTER, "default", CLUSTER) is not None
    # a second time: the API's 409 becomes an error exit
    assert cli_main.main(["create", "computetemplate", "-f", template]) == 1
    assert "already exists" in capsys.readouterr().err


def test_serve_deploy_status_and_delete(
    cli: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    observed = cli.running_cluster()
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "hello.py").write_text("app = None\n")
    config = {
        "applications": [
            {
                "name": "hello",
                "import_path": "hello:app",
                "route_prefix": "/hello",
                "runtime_env": {"working_dir": "./apps"},
            }
        ]
    }
    path = write(tmp_path, "serve.yaml", config)

    assert cli_main.main(["serve", "deploy", CLUSTER, "-f", path]) == 0

    deployed = cli.serve.last_deployed(observed.dashboard_url)
    assert deployed is not None
    # the relative folder was read next to the config file and packaged by the controller
    working_dir = deployed["applications"][0]["runtime_env"]["working_dir"]
    assert working_dir.startswith("file://") and working_dir.endswith(".zip")
    cli.serve.set_state(observed.dashboard_url, running_state(deployed))
    capsys.readouterr()

    assert cli_main.main(["serve", "status", CLUSTER]) == 0
    status = capsys.readouterr().out.splitlines()
    assert status[0].split() == ["APPLICATION", "STATUS", "ROUTE", "MESSAGE"]
    assert status[1].split()[:3] == ["hello", "RUNNING", "/hello"]

    assert cli_main.main(["serve", "delete", CLUSTER]) == 0
    assert [c.operation for c in cli.serve.calls][-1] == "shutdown"


def test_job_submit_status_logs_stop_list_and_delete(
    cli: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    observed = cli.running_cluster()
    url = observed.dashboard_url

    command = ["python", "-c", "print('hi there')"]
    submit = ["job", "submit", "--submission-id", "job-1", CLUSTER, "--", *command]
    misplaced = ["job", "submit", CLUSTER, "--wait", "--", "python", "-V"]
    with pytest.raises(SystemExit, match="options go before CLUSTER"):
        cli_main.main(misplaced)
    assert cli_main.main(submit) == 0
    assert "job job-1 submitted" in capsys.readouterr().out
    entrypoint = cli.jobs.info(url, observed.auth_token, "job-1")["entrypoint"]
    assert shlex.split(entrypoint) == command  # the shell Ray runs it in gets the same words

    cli.jobs.set_status(url, "job-1", "RUNNING")
    cli.jobs.set_logs(url, "job-1", "Python 3.11\n")
    assert cli_main.main(["job", "status", CLUSTER, "job-1"]) == 0
    assert "RUNNING" in capsys.readouterr().out
    assert cli_main.main(["job", "logs", CLUSTER, "job-1"]) == 0
    assert capsys.readouterr().out == "Python 3.11\n"
    assert cli_main.main(["job", "stop", CLUSTER, "job-1"]) == 0
    assert cli.jobs.info(url, observed.auth_token, "job-1")["status"] == "STOPPED"
    assert cli_main.main(["job", "list", CLUSTER]) == 0
    assert "job-1" in capsys.readouterr().out
    assert cli_main.main(["job", "delete", CLUSTER, "job-1"]) == 0
    assert cli_main.main(["job", "status", CLUSTER, "job-1"]) == 1


def test_dashboard_prints_the_url_and_the_token_the_login_asks_for(
    cli: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    observed = cli.running_cluster()
    cli.start_cluster()  # the pass after the head answered: ports and fronts are recorded

    assert cli_main.main(["dashboard", CLUSTER, "-o", "json"]) == 0

    access = json.loads(capsys.readouterr().out)
    resource = cli.store.get(ObjectKind.RAY_CLUSTER, "default", CLUSTER)
    assert resource is not None
    assert access == {
        "url": f"http://127.0.0.1:{resource.record['dashboard_port']}",
        "cluster": CLUSTER,
        "token": observed.auth_token,
    }


def test_relative_code_folders_are_made_absolute_and_uris_left_alone(tmp_path: Path) -> None:
    config = {
        "applications": [
            {"name": "a", "runtime_env": {"working_dir": "apps"}},
            {"name": "b", "runtime_env": {"working_dir": "https://example.invalid/b.zip"}},
            {"name": "c", "runtime_env": {"working_dir": "/srv/c"}},
            {"name": "d", "runtime_env": {"py_modules": ["mods/pricing", "s3://m/x.zip"]}},
            {"name": "e"},
        ]
    }

    text = with_absolute_code_folders(yaml.safe_dump(config), tmp_path)

    apps = yaml.safe_load(text)["applications"]
    dirs = [app.get("runtime_env", {}).get("working_dir") for app in apps]
    assert dirs == [str(tmp_path / "apps"), "https://example.invalid/b.zip", "/srv/c", None, None]
    assert apps[3]["runtime_env"]["py_modules"] == [
        str(tmp_path / "mods" / "pricing"),
        "s3://m/x.zip",
    ]
    assert with_absolute_code_folders("not: [valid", tmp_path) == "not: [valid"
