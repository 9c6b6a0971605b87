"""Which kubeconfig the Kubernetes backend reads: the one given, else the files of $KUBECONFIG
merged as kubectl merges them, else ~/.kube/config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayservice.kubeapi.base import KubernetesRefused
from rayservice.kubeapi.kubeconfig import (
    DEFAULT_KUBECONFIG,
    KubeconfigError,
    kubeconfig_files,
    merged_kubeconfig,
)
from rayservice.kubeapi.lightkube_api import LightkubeApi
from rayservice.kubernetes.kinds import SERVICE
from tests.kube_emulator import RunningApiServer


def kubeconfig(
    cluster: str, server: str, *, current: str | None = None, **user: str
) -> dict[str, Any]:
    """A kubeconfig of one cluster, one user and one context, all named ``cluster``."""
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": [{"name": cluster, "user": {"token": "t", **user}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
    }
    if current is not None:
        document["current-context"] = current
    return document


def written(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


def test_the_first_definition_of_a_name_and_the_first_current_context_win(tmp_path: Path) -> None:
    first = written(tmp_path / "a" / "config", kubeconfig("prod", "https://prod.test"))
    second = kubeconfig("prod", "https://other.test", current="staging")
    second["clusters"].append({"name": "staging", "cluster": {"server": "https://staging.test"}})
    second["contexts"].append({"name": "staging", "context": {"cluster": "staging"}})
    third = written(tmp_path / "c" / "config", kubeconfig("dev", "https://dev.test", current="dev"))

    merged = merged_kubeconfig([first, written(tmp_path / "b" / "config", second), third])

    servers = {c["name"]: c["cluster"]["server"] for c in merged["clusters"]}
    assert servers == {
        "prod": "https://prod.test",  # not the second file's
        "staging": "https://staging.test",
        "dev": "https://dev.test",
    }
    assert merged["current-context"] == "staging"  # the first file sets none
    assert [c["name"] for c in merged["contexts"]] == ["prod", "staging", "dev"]


def test_relative_files_are_beside_the_kubeconfig_that_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = kubeconfig("prod", "https://prod.test", **{"client-certificate": "certs/me.crt"})
    user = document["users"][0]["user"]
    user["client-key"] = "/etc/keys/me.key"
    user["exec"] = {"apiVersion": "client.authentication.k8s.io/v1", "command": "bin/login"}
    document["clusters"][0]["cluster"]["certificate-authority"] = "ca.crt"
    written(tmp_path / "kube" / "config", document)
    monkeypatch.chdir(tmp_path)  # the file named relative to here, as in KUBECONFIG=kube/config

    merged = merged_kubeconfig(kubeconfig_files(None, {"KUBECONFIG": "kube/config"}))

    user = merged["users"][0]["user"]
    assert user["client-certificate"] == str(tmp_path / "kube" / "certs" / "me.crt")
    assert user["client-key"] == "/etc/keys/me.key"
    assert user["exec"]["command"] == str(tmp_path / "kube" / "bin" / "login")
    assert merged["clusters"][0]["cluster"]["certificate-authority"] == str(
        tmp_path / "kube" / "ca.crt"
    )


def test_a_plugin_command_without_a_folder_is_looked_up_on_path(tmp_path: Path) -> None:
    document = kubeconfig("prod", "https://prod.test")
    document["users"][0]["user"]["exec"] = {"command": "aws"}
    document["users"].insert(0, {"user": {"token": "an entry without a name"}})

    merged = merged_kubeconfig([written(tmp_path / "config", document)])

    assert [u["name"] for u in merged["users"]] == ["prod"]  # the nameless one passed over
    assert merged["users"][0]["user"]["exec"]["command"] == "aws"


def test_which_files_are_read(tmp_path: Path) -> None:
    given, listed = tmp_path / "given", written(tmp_path / "listed", {})
    missing = tmp_path / "missing"
    env = {"KUBECONFIG": os.pathsep.join([str(missing), str(listed)])}

    assert kubeconfig_files(given, env) == [given]  # --kubeconfig alone, as kubectl
    assert kubeconfig_files(None, env) == [listed]  # a listed file that is missing is passed
    assert kubeconfig_files(None, {}) == [DEFAULT_KUBECONFIG.expanduser()]
    with pytest.raises(KubeconfigError, match="none of the files \\$KUBECONFIG lists exists"):
        kubeconfig_files(None, {"KUBECONFIG": str(missing)})


def test_a_file_that_is_not_a_kubeconfig_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("- a list\n")

    with pytest.raises(KubeconfigError, match=f"the kubeconfig {path} is not a mapping"):
        merged_kubeconfig([path])


@pytest.fixture
def emulated() -> Iterator[RunningApiServer]:
    running = RunningApiServer()
    yield running
    running.stop()


def test_a_certificate_the_kubeconfig_names_but_lacks_is_refused_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = kubeconfig("prod", "https://prod.test", current="prod")
    document["clusters"][0]["cluster"]["certificate-authority"] = "missing-ca.crt"
    written(tmp_path / "config", document)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(KubernetesRefused, match=r"missing-ca\.crt"):
        LightkubeApi(Path("config"))


def test_the_api_reaches_the_context_of_a_later_file_of_kubeconfig(
    tmp_path: Path, emulated: RunningApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = written(tmp_path / "first", kubeconfig("elsewhere", "https://elsewhere.test"))
    here = written(tmp_path / "second", emulated.kubeconfig())
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(unreachable), str(here)]))

    api = LightkubeApi(context=None)  # the current context is set only by the second file

    assert api.get(SERVICE, "team", "nothing-here") is None
    with pytest.raises(KubernetesRefused, match=r"first.*second"):
        LightkubeApi(context="no-such-context")
