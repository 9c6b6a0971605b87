"""Faults of the store's file and disk: a damaged file, a lock held by another process, a full
disk, a home that cannot be made and a read-only file each end in a clear error (at start, on
a write, through the API), and never in a lost or changed stored spec."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from rayservice.api.app import create_app
from rayservice.cli import daemon
from rayservice.cli.main import main
from rayservice.client import RayServiceClient
from rayservice.controller import process
from rayservice.controller.loop import ControlLoop
from rayservice.controller.reconciler import Reconciler
from rayservice.providers.fake import FakeProvider
from rayservice.serve_client.fake import FakeServeClient
from rayservice.spec.errors import TemporaryError
from rayservice.spec.vocabulary import KIND
from rayservice.store.base import StoredResource
from rayservice.store.sqlite import SqliteStore, StoreUnusable, backup_path, store_error
from rayservice.traffic.fake import FakeFront
from tests.seed_003 import SEED_TEMPLATE

T0 = 1_714_557_600.0
DEMO = "/apis/ray.io/v1/namespaces/default/rayservices/demo"
TEMPLATES = "/apis/v1/namespaces/default/compute_templates"
LOCAL_CALLER = ("127.0.0.1", 50000)
SHORT_WAIT = 0.05  # the busy timeout of a store under test: a held lock fails a write at once
SERVE_CONFIG = "applications:\n- name: app1\n  import_path: hello:app\n  route_prefix: /\n"


def manifest(replicas: int = 1, name: str = "demo") -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": KIND,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "serveConfigV2": SERVE_CONFIG,
            "rayClusterConfig": {
                "headGroupSpec": {"rayStartParams": {"num-cpus": "1"}, "template": {}},
                "workerGroupSpecs": [{"groupName": "small", "replicas": replicas}],
            },
        },
    }


class LimitedStore(SqliteStore):
    """A store whose connections, in every thread, run ``pragmas`` before each use: how a
    test makes the disk full (``max_page_count``) or the file read-only (``query_only``)."""

    def __init__(self, path: Path, **kwargs: Any) -> None:
        self.pragmas: list[str] = []
        super().__init__(path, **kwargs)

    def _connection(self) -> sqlite3.Connection:
        db = super()._connection()
        for pragma in self.pragmas:
            db.execute(pragma)
        return db

    def fill_the_disk(self) -> None:
        # max_page_count cannot go below the pages in use: the file may not grow any more
        self.pragmas.append("PRAGMA max_page_count=1")

    def make_read_only(self) -> None:
        self.pragmas.append("PRAGMA query_only=ON")

    def heal(self) -> None:
        """Undo both, on every connection (pragmas outlive the statement that set them)."""
        self.pragmas = ["PRAGMA query_only=OFF", "PRAGMA max_page_count=1073741823"]


@pytest.fixture
def store(tmp_path: Path) -> LimitedStore:
    return LimitedStore(tmp_path / "home" / "state.db", busy_timeout=SHORT_WAIT)


def snapshot(store: SqliteStore) -> tuple[StoredResource | None, list[Any]]:
    """Everything stored about the demo service: its resource and its revisions."""
    return store.get(KIND, "default", "demo"), store.revisions(KIND, "default", "demo")


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another process's connection holding the write lock (as ``sqlite3`` would)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def damaged_store(tmp_path: Path, damage: Callable[[Path], None]) -> Path:
    """A store file with a service in it and a backup, then damaged by ``damage``."""
    path = tmp_path / "home" / "state.db"
    store = SqliteStore(path)
    for i in range(40):  # pages enough that a truncation cuts into the data
        store.apply(KIND, manifest(name=f"svc-{i}"), "demo.yaml", T0)
    store.apply(KIND, manifest(), "demo.yaml", T0)
    assert store.back_up() == backup_path(path)
    store.close()  # the last connection folds the WAL into the file
    assert not Path(f"{path}-wal").exists()
    damage(path)
    return path


def overwrite_with_garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 500)


def truncate_to_half(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def empty(path: Path) -> None:
    path.write_bytes(b"")


# -- 1. a damaged file --------------------------------------------------------------------


@pytest.mark.parametrize("damage", [overwrite_with_garbage, truncate_to_half, empty])
def test_a_damaged_store_is_refused_untouched_and_the_error_names_its_backup(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    path = damaged_store(tmp_path, damage)
    before = path.read_bytes()

    with pytest.raises(StoreUnusable) as refused:
        SqliteStore(path)

    message = str(refused.value)
    assert f"the store {path} is damaged" in message
    assert "it was left as it is" in message
    assert f"copy {backup_path(path)} to {path}" in message
    assert path.read_bytes() == before, "the damaged file was not written"


def test_the_backup_restores_the_stored_spec(tmp_path: Path) -> None:
    path = damaged_store(tmp_path, overwrite_with_garbage)
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if leftover.exists():
            leftover.rename(leftover.with_name(leftover.name + ".damaged"))
    shutil.copyfile(backup_path(path), path)

    stored = SqliteStore(path).get(KIND, "default", "demo")

    assert stored is not None and stored.manifest == manifest()


def test_without_a_backup_the_error_says_what_an_empty_store_means(tmp_path: Path) -> None:
    path = damaged_store(tmp_path, overwrite_with_garbage)
    backup_path(path).unlink()

    with pytest.raises(StoreUnusable) as refused:
        SqliteStore(path)

    assert f"there is no backup at {backup_path(path)}" in str(refused.value)
    assert "the manifests must be applied again" in str(refused.value)


def test_an_empty_store_never_replaces_a_backup(tmp_path: Path) -> None:
    path = damaged_store(tmp_path, overwrite_with_garbage)
    backup = backup_path(path).read_bytes()
    path.rename(path.with_name("state.db.damaged"))  # moved aside, not restored

    assert SqliteStore(path).back_up() is None
    assert backup_path(path).read_bytes() == backup


def test_the_controller_refuses_a_damaged_store_with_exit_1_and_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = damaged_store(tmp_path, overwrite_with_garbage)
    monkeypatch.setenv("RAYSERVICE_HOME", str(path.parent))
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)

    assert main(["controller"]) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"error: the store {path} is damaged (file is not a database)")
    assert "Traceback" not in err
    assert not (path.parent / "controller.pid").exists()


def test_rayservice_start_repeats_why_the_controller_did_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = damaged_store(tmp_path, overwrite_with_garbage)
    monkeypatch.setenv("RAYSERVICE_HOME", str(path.parent))
    nobody = RayServiceClient("http://127.0.0.1:9")  # discard port: nothing answers

    with pytest.raises(SystemExit) as exited:
        daemon.start(path.parent, nobody, [])

    told = str(exited.value.code)
    assert told.startswith("the controller exited with code 1:\n")
    assert f"error: the store {path} is damaged" in told
    assert told.endswith(f"(log: {path.parent / 'controller.log'})")


def test_a_clean_start_creates_the_home_and_backs_up_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "missing" / "home"
    served: list[str] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)
    monkeypatch.setattr(process, "_preload_validators", lambda: None)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw["host"]))
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        process.serve_forever(
            home, create_app, host="127.0.0.1", port=9, pid_file=home / "controller.pid"
        )
    finally:
        signal.signal(signal.SIGTERM, sigterm)

    assert served == ["127.0.0.1"]
    assert (home / "state.db").is_file()
    assert backup_path(home / "state.db").is_file(), "a new store is backed up too"


# -- 2. a lock held by another process ----------------------------------------------------


def test_a_write_while_another_process_holds_the_lock_is_a_temporary_error(
    store: LimitedStore,
) -> None:
    store.apply(KIND, manifest(replicas=1), "demo.yaml", T0)
    before = snapshot(store)

    with write_lock_held(store.path), pytest.raises(TemporaryError) as failed:
        store.apply(KIND, manifest(replicas=2), "demo.yaml", T0 + 1)

    assert str(failed.value) == (
        f"the store {store.path} is locked by another process (waited {SHORT_WAIT:g}s):"
        " nothing was written and the stored state is unchanged; try again once that"
        " process lets go of it"
    )
    assert snapshot(store) == before
    assert store.apply(KIND, manifest(replicas=2), "demo.yaml", T0 + 2).generation == 2


def test_the_control_loop_retries_once_the_lock_is_let_go(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", busy_timeout=SHORT_WAIT)
    provider = FakeProvider(clock=lambda: T0)
    reconciler = Reconciler(
        store, provider, FakeServeClient(), FakeFront(), lambda port, address: True, lambda: T0
    )
    loop = ControlLoop(reconciler)
    store.apply(KIND, manifest(), "demo.yaml", T0)
    worker = threading.Thread(target=loop.run, daemon=True)
    try:
        with write_lock_held(store.path):
            worker.start()
            time.sleep(0.3)  # passes fail while the lock is held
            assert provider.clusters("default/demo") == []
        loop.wake()
        deadline = time.monotonic() + 10
        while not provider.clusters("default/demo") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        loop.stop()
        worker.join(timeout=10)
    assert provider.clusters("default/demo"), "the service was reconciled after the lock"


# -- 3. a full disk -----------------------------------------------------------------------


def test_a_write_on_a_full_disk_is_rolled_back_and_says_so(store: LimitedStore) -> None:
    store.apply(KIND, manifest(replicas=1), "demo.yaml", T0)
    before = snapshot(store)
    store.fill_the_disk()
    bigger = manifest(replicas=2)
    bigger["metadata"]["annotations"] = {"note": "x" * 200_000}  # more pages than are free

    with pytest.raises(TemporaryError) as failed:
        store.apply(KIND, bigger, "demo.yaml", T0 + 1)

    assert str(failed.value).startswith(f"disk full at {store.path}: nothing was written")
    assert "free space on that disk" in str(failed.value)
    assert snapshot(store) == before


def sqlite_error(kind: type[sqlite3.Error], message: str, code: int) -> sqlite3.Error:
    """An error as sqlite3 raises it, with its result code."""
    error = kind(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("error", "kind", "says"),
    [
        (
            sqlite_error(sqlite3.OperationalError, "database or disk is full", sqlite3.SQLITE_FULL),
            TemporaryError,
            "disk full at /h/state.db: nothing was written",
        ),
        (
            sqlite_error(sqlite3.OperationalError, "database is locked", sqlite3.SQLITE_BUSY),
            TemporaryError,
            "the store /h/state.db is locked by another process (waited 30s)",
        ),
        (
            sqlite_error(sqlite3.OperationalError, "disk I/O error", sqlite3.SQLITE_IOERR_WRITE),
            TemporaryError,
            "disk I/O error at the store /h/state.db",
        ),
        (
            sqlite_error(sqlite3.DatabaseError, "file is not a database", sqlite3.SQLITE_NOTADB),
            StoreUnusable,
            "the store /h/state.db is damaged (file is not a database)",
        ),
        (
            sqlite_error(sqlite3.DatabaseError, "malformed", sqlite3.SQLITE_CORRUPT),
            StoreUnusable,
            "the store /h/state.db is damaged (malformed)",
        ),
    ],
    ids=["full", "busy", "io", "not-a-database", "corrupt"],
)
def test_faults_of_the_file_and_disk_map_to_the_error_tree(
    error: sqlite3.Error, kind: type[Exception], says: str
) -> None:
    fault = store_error(Path("/h/state.db"), error, 30)

    assert isinstance(fault, kind)
    assert str(fault).startswith(says)


def test_a_mistake_in_a_query_is_no_fault_of_the_store() -> None:
    error = sqlite_error(sqlite3.IntegrityError, "UNIQUE failed", sqlite3.SQLITE_CONSTRAINT)

    assert store_error(Path("/h/state.db"), error, 30) is None


# -- 4. the home folder -------------------------------------------------------------------


def test_a_missing_home_is_created(tmp_path: Path) -> None:
    path = tmp_path / "not" / "there" / "state.db"

    SqliteStore(path).apply(KIND, manifest(), "demo.yaml", T0)

    assert path.is_file()


@pytest.mark.parametrize("in_the_way", ["home", "parent"])
def test_a_home_that_cannot_be_made_is_a_clear_error(tmp_path: Path, in_the_way: str) -> None:
    home = tmp_path / "parent" / "home"
    blocker = home if in_the_way == "home" else home.parent
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file, not a folder")

    with pytest.raises(StoreUnusable) as refused:
        SqliteStore(home / "state.db")

    assert str(refused.value).startswith(
        f"cannot create the folder {home} that holds the store {home / 'state.db'} ("
    )
    assert "point RAYSERVICE_HOME at one" in str(refused.value)
    assert blocker.read_text() == "a file, not a folder"


def test_controller_and_start_exit_non_zero_when_the_home_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.write_text("a file, not a folder")
    monkeypatch.setenv("RAYSERVICE_HOME", str(home))
    monkeypatch.setenv("RAYSERVICE_API_PORT", "9")
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)

    assert main(["controller"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot create the folder {home} that holds the store")
    assert "Traceback" not in err

    with pytest.raises(SystemExit) as exited:
        main(["start"])
    assert str(exited.value.code).startswith(
        f"error: cannot create the controller's home {home} or its log ("
    )


# -- 5. a read-only file ------------------------------------------------------------------


def test_a_write_to_a_read_only_store_is_refused_and_says_why(store: LimitedStore) -> None:
    store.apply(KIND, manifest(replicas=1), "demo.yaml", T0)
    before = snapshot(store)
    store.make_read_only()

    with pytest.raises(TemporaryError) as failed:
        store.apply(KIND, manifest(replicas=2), "demo.yaml", T0 + 1)

    assert str(failed.value).startswith(f"the store {store.path} is read-only (")
    assert "make the file, its folder and its -wal and -shm files writable" in str(failed.value)
    assert snapshot(store) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_store_file_without_write_permission_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).apply(KIND, manifest(), "demo.yaml", T0)
    path.chmod(0o444)
    try:
        with pytest.raises(TemporaryError, match="read-only"):
            SqliteStore(path).apply(KIND, manifest(replicas=2), "demo.yaml", T0 + 1)
    finally:
        path.chmod(0o644)


# -- through the API, and no loss after any of them ---------------------------------------


@pytest.fixture
def api(store: LimitedStore, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(store, FakeProvider(clock=lambda: T0), tmp_path / "packages", lambda: None)
    with TestClient(app, client=LOCAL_CALLER) as client:
        yield client


def put(client: TestClient, document: dict[str, Any], base_dir: Path) -> Any:
    return client.put(
        DEMO, json={"manifest": document, "source": "demo.yaml", "baseDir": str(base_dir)}
    )


FAULTS: dict[str, tuple[Callable[[LimitedStore], Any], str]] = {
    "locked": (lambda store: write_lock_held(store.path), "is locked by another process"),
    "full": (lambda store: store.fill_the_disk(), "disk full at"),
    "read-only": (lambda store: store.make_read_only(), "is read-only"),
}


@contextmanager
def fault(kind: str, store: LimitedStore) -> Iterator[str]:
    """The fault ``kind`` while the block runs; yields what its message says."""
    start, says = FAULTS[kind]
    held = start(store)
    if held is None:
        yield says
        store.heal()
        return
    with held:
        yield says


@pytest.mark.parametrize("kind", FAULTS)
def test_an_apply_through_the_api_answers_503_and_keeps_the_stored_spec(
    api: TestClient, store: LimitedStore, tmp_path: Path, kind: str
) -> None:
    assert put(api, manifest(replicas=1), tmp_path).status_code == 200
    before = snapshot(store)
    bigger = manifest(replicas=2)
    bigger["metadata"]["annotations"] = {"note": "x" * 200_000}

    with fault(kind, store) as says:
        answer = put(api, bigger, tmp_path)

    assert answer.status_code == 503
    assert says in answer.json()["detail"]
    assert str(store.path) in answer.json()["detail"]
    assert snapshot(store) == before, "the earlier spec reads back unchanged"
    assert put(api, manifest(replicas=2), tmp_path).json()["metadata"]["generation"] == 2


def test_a_v1_write_while_the_store_is_locked_answers_unavailable(
    api: TestClient, store: LimitedStore
) -> None:
    with write_lock_held(store.path):
        answer = api.post(TEMPLATES, json=SEED_TEMPLATE)

    assert answer.status_code == 503
    assert answer.json()["code"] == 14  # UNAVAILABLE
    assert "is locked by another process" in answer.json()["message"]
    assert api.post(TEMPLATES, json=SEED_TEMPLATE).status_code == 200
