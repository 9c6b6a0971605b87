"""SQLite implementation of the Store, in WAL mode so the API and the controller loop can
read and write concurrently from their own threads.

Every public method opens its own short transaction on a per-thread connection; nothing is
cached in memory, so a killed controller loses nothing that was acknowledged.

Faults of the file or the disk are interpreted once, in ``store_error``: a lock held by another
process, a full disk, a read-only file or an I/O error is a ``TemporaryError`` (the write was
rolled back, the stored state is unchanged and the write may be tried again); a damaged file is
``StoreUnusable``, raised when the store is opened so the controller refuses to start, and the
file is never written, replaced or deleted. ``back_up`` keeps a copy of a store that opened
cleanly next to it, which that message names.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from rayservice.spec.errors import RayServiceError, TemporaryError
from rayservice.spec.events import EVENT_OWNERS, ObjectKind, ObjectRef
from rayservice.store.base import (
    Event,
    Revision,
    StoredResource,
    View,
    canonical_json,
    spec_changed,
)

MAX_EVENTS_PER_OWNER = 500  # per RayService: a flood of distinct events cannot fill the disk
MAX_REVISIONS_PER_OBJECT = 50  # the newest generations kept for `rollout undo`; older ones go
BUSY_TIMEOUT = 30.0  # seconds a write waits for another process's lock before it gives up

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL, generation INTEGER NOT NULL, resource_version INTEGER NOT NULL,
    created_at REAL NOT NULL, manifest TEXT NOT NULL, status TEXT NOT NULL DEFAULT '{}',
    record TEXT NOT NULL DEFAULT '{}', deleting INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, namespace, name)
);
-- the events table as release 0.1.0 made it; _upgrade_events adds the later columns
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, name TEXT NOT NULL,
    type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, count INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS events_by_owner ON events (namespace, name, id);
CREATE TABLE IF NOT EXISTS revisions (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, generation INTEGER NOT NULL,
    manifest TEXT NOT NULL, source TEXT NOT NULL, applied_at REAL NOT NULL,
    PRIMARY KEY (kind, namespace, name, generation)
);
CREATE TABLE IF NOT EXISTS views (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, owner TEXT NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS ports (
    port INTEGER PRIMARY KEY, owner TEXT NOT NULL, purpose TEXT NOT NULL,
    UNIQUE (owner, purpose)
);
CREATE TABLE IF NOT EXISTS scale_requests (
    cluster TEXT PRIMARY KEY, owner TEXT NOT NULL, request TEXT NOT NULL
);
"""

_SELECT_ONE = (
    "SELECT kind, namespace, name, uid, generation, resource_version, created_at, manifest,"
    " status, record, deleting, source FROM resources WHERE kind=? AND namespace=? AND name=?"
)
_RESOURCE_COLUMNS = (
    "kind, namespace, name, uid, generation, resource_version, created_at, manifest, status, "
    "record, deleting, source"
)


def _row_to_resource(row: sqlite3.Row) -> StoredResource:
    return StoredResource(
        kind=row["kind"],
        namespace=row["namespace"],
        name=row["name"],
        uid=row["uid"],
        generation=row["generation"],
        resource_version=row["resource_version"],
        created_at=row["created_at"],
        manifest=json.loads(row["manifest"]),
        status=json.loads(row["status"]),
        record=json.loads(row["record"]),
        deleting=bool(row["deleting"]),
        source=row["source"],
    )


def _row_to_event(row: sqlite3.Row) -> Event:
    return Event(
        namespace=row["namespace"],
        name=row["name"],
        involved_kind=row["involved_kind"],
        involved_name=row["involved_name"],
        type=row["type"],
        reason=row["reason"],
        message=row["message"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        count=row["count"],
    )


class StoreUnusable(RayServiceError):
    """The store cannot be used as it is (its file is damaged, its folder cannot be made):
    retrying cannot help until someone restores the file or fixes the folder."""


def _owner_only(path: Path) -> None:
    """The store holds Secrets' values: its files are for their owner only. Only what others
    could do is taken away (a read-only file stays read-only)."""
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(path.stat().st_mode & 0o700)


def backup_path(path: Path) -> Path:
    """Where ``SqliteStore.back_up`` keeps the copy of the store at ``path``."""
    return path.with_name(path.name + ".bak")


def _damaged(path: Path, detail: str) -> StoreUnusable:
    backup = backup_path(path)
    aside = f"move {path} aside (with {path.name}-wal and {path.name}-shm if they are there)"
    if backup.is_file() and backup.stat().st_size > 0:
        remedy = (
            f"restore the backup taken when the store last opened cleanly: {aside}, then"
            f" copy {backup} to {path}"
        )
    else:
        remedy = (
            f"{aside}; there is no backup at {backup}, so the next start has an empty store:"
            " the controller then knows no service, removes the clusters they ran and the"
            " manifests must be applied again"
        )
    return StoreUnusable(
        f"the store {path} is damaged ({detail}); it was left as it is. To go on, {remedy}"
    )


def store_error(
    path: Path, error: sqlite3.Error | OSError, busy_timeout: float
) -> RayServiceError | None:
    """The error of the error tree a fault of the store at ``path`` stands for (an OSError:
    its folder could not be made); None for an error that is no fault of the file or the
    disk (a mistake in a query), which goes on unchanged."""
    if isinstance(error, OSError):
        return StoreUnusable(
            f"cannot create the folder {path.parent} that holds the store {path}"
            f" ({error.strerror or error}): make it a folder this user can write,"
            " or point RAYSERVICE_HOME at one"
        )
    code = getattr(error, "sqlite_errorcode", -1) & 0xFF  # the primary result code
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return _damaged(path, str(error))
    unchanged = "nothing was written and the stored state is unchanged"
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return TemporaryError(
            f"the store {path} is locked by another process (waited {busy_timeout:g}s):"
            f" {unchanged}; try again once that process lets go of it"
        )
    if code == sqlite3.SQLITE_FULL:
        return TemporaryError(
            f"disk full at {path}: {unchanged}; free space on that disk and try again"
        )
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        return TemporaryError(
            f"the store {path} is read-only ({error}): {unchanged}; make the file, its folder"
            " and its -wal and -shm files writable by this user"
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return TemporaryError(
            f"cannot open the store {path} ({error}): its folder must exist and be writable"
            " by this user"
        )
    if code == sqlite3.SQLITE_IOERR:
        return TemporaryError(f"disk I/O error at the store {path} ({error}): {unchanged}")
    if isinstance(error, sqlite3.OperationalError):
        return TemporaryError(f"the store {path} failed ({error}): {unchanged}")
    return None


@contextmanager
def _interpreted(path: Path, busy_timeout: float) -> Iterator[None]:
    """Raise the error tree's error for a fault of the store (``store_error``)."""
    try:
        yield
    except (sqlite3.Error, OSError) as e:
        fault = store_error(path, e, busy_timeout)
        if fault is None:
            raise
        raise fault from e


class _StoreConnection(sqlite3.Connection):
    """A connection whose statements, reads included, raise the error tree instead of
    sqlite3's exceptions."""

    store_path: Path
    busy_timeout: float

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        with _interpreted(self.store_path, self.busy_timeout):
            return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        with _interpreted(self.store_path, self.busy_timeout):
            return super().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        with _interpreted(self.store_path, self.busy_timeout):
            return super().executescript(sql_script)


class SqliteStore:
    """The Store on one SQLite file (created with its folder if missing); a file written by
    an older release is brought up to date when opened, and a damaged one is refused
    (``StoreUnusable``) before anything is written to it. ``busy_timeout`` is how long a write
    waits for another process's lock."""

    def __init__(
        self,
        path: Path,
        max_events_per_owner: int = MAX_EVENTS_PER_OWNER,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        self._path = path
        self._max_events = max_events_per_owner
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        with _interpreted(path, busy_timeout):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._refuse_damaged()
        self._connection().executescript(_SCHEMA)
        for file in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))):
            _owner_only(file)
        self._upgrade_events()

    @property
    def path(self) -> Path:
        return self._path

    def _refuse_damaged(self) -> None:
        """Raise ``StoreUnusable`` unless the file is a sound database (or new). An emptied
        file next to a backup counts as damaged: opening it would start an empty store."""
        backup = backup_path(self._path)
        if (
            self._path.is_file()
            and self._path.stat().st_size == 0
            and backup.is_file()
            and backup.stat().st_size > 0
        ):
            raise _damaged(self._path, "the file is empty")
        problems = [row[0] for row in self._connection().execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise _damaged(self._path, "; ".join(str(p) for p in problems[:3]))

    def back_up(self) -> Path | None:
        """Copy the store to ``backup_path`` with SQLite's online backup (a consistent copy even
        while it is written) through a temporary file, so a failed copy never replaces the
        last good backup. A store without resources does not replace an existing backup:
        after a damaged store was moved aside, its backup may be the only copy of the specs.
        Returns the backup written, or None."""
        target = backup_path(self._path)
        empty = self._connection().execute("SELECT 1 FROM resources LIMIT 1").fetchone() is None
        if empty and target.exists():
            return None
        partial = target.with_name(target.name + ".partial")
        try:
            with _interpreted(target, self._busy_timeout):
                copy = sqlite3.connect(partial)
                _owner_only(partial)
                try:
                    self._connection().backup(copy)
                finally:
                    copy.close()
                os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def close(self) -> None:
        """Close this thread's connection (the next call opens another)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            db.close()

    def _upgrade_events(self) -> None:
        """Add the involved object's columns (their rows were all about the RayService
        itself) and the index that finds a repeated event."""
        with self._tx() as db:
            columns = {row["name"] for row in db.execute("PRAGMA table_info(events)")}
            if "involved_kind" not in columns:
                for column in ("involved_kind", "involved_name"):
                    db.execute(f"ALTER TABLE events ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
                db.execute(
                    "UPDATE events SET involved_kind=?, involved_name=name",
                    (ObjectKind.RAY_SERVICE,),
                )
            db.execute(
                "CREATE INDEX IF NOT EXISTS events_by_identity ON events"
                " (namespace, name, involved_kind, involved_name, type, reason, message)"
            )

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            with _interpreted(self._path, self._busy_timeout):
                opened = sqlite3.connect(
                    self._path,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    factory=_StoreConnection,
                )
            opened.store_path, opened.busy_timeout = self._path, self._busy_timeout
            opened.row_factory = sqlite3.Row
            try:
                opened.execute("PRAGMA journal_mode=WAL")
                opened.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                opened.close()
                raise
            self._local.db = db = opened
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:  # a fault of the store is the error tree's already
            if db.in_transaction:
                with suppress(RayServiceError):  # the error that made it roll back is told
                    db.execute("ROLLBACK")
            raise

    # -- resources -------------------------------------------------------------------------

    def apply(self, kind: str, manifest: dict[str, Any], source: str, now: float) -> StoredResource:
        meta = manifest["metadata"]
        namespace, name = meta.get("namespace", "default"), meta["name"]
        text = canonical_json(manifest)
        with self._tx() as db:
            row = db.execute(
                _SELECT_ONE,
                (kind, namespace, name),
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO resources (kind, namespace, name, uid, generation,"
                    " resource_version, created_at, manifest, source) VALUES (?,?,?,?,1,1,?,?,?)",
                    (kind, namespace, name, str(uuid.uuid4()), now, text, source),
                )
                generation = 1
            else:
                bump = int(spec_changed(json.loads(row["manifest"]), manifest))
                db.execute(
                    "UPDATE resources SET manifest=?, source=?, generation=generation+?,"
                    " resource_version=resource_version+1, deleting=0"
                    " WHERE kind=? AND namespace=? AND name=?",
                    (text, source, bump, kind, namespace, name),
                )
                generation = int(row["generation"]) + bump
            if "spec" in manifest:  # revisions are of specs (a Secret has none to go back to)
                db.execute(
                    # the first apply of a generation stays its revision (annotations may follow)
                    "INSERT OR IGNORE INTO revisions (kind, namespace, name, generation, manifest,"
                    " source, applied_at) VALUES (?,?,?,?,?,?,?)",
                    (kind, namespace, name, generation, text, source, now),
                )
                db.execute(
                    "DELETE FROM revisions WHERE kind=? AND namespace=? AND name=?"
                    " AND generation NOT IN (SELECT generation FROM revisions"
                    " WHERE kind=? AND namespace=? AND name=? ORDER BY generation DESC LIMIT ?)",
                    (kind, namespace, name, kind, namespace, name, MAX_REVISIONS_PER_OBJECT),
                )
        stored = self.get(kind, namespace, name)
        assert stored is not None
        return stored

    def get(self, kind: str, namespace: str, name: str) -> StoredResource | None:
        row = (
            self._connection()
            .execute(
                _SELECT_ONE,
                (kind, namespace, name),
            )
            .fetchone()
        )
        return None if row is None else _row_to_resource(row)

    def list_resources(self, kind: str, namespace: str | None = None) -> list[StoredResource]:
        query = f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE kind=?"
        args: tuple[Any, ...] = (kind,)
        if namespace is not None:
            query += " AND namespace=?"
            args += (namespace,)
        rows = self._connection().execute(query + " ORDER BY namespace, name", args).fetchall()
        return [_row_to_resource(r) for r in rows]

    def keys(self, kind: str) -> list[str]:
        rows = self._connection().execute(
            "SELECT namespace, name FROM resources WHERE kind=? ORDER BY namespace, name", (kind,)
        )
        return [f"{namespace}/{name}" for namespace, name in rows]

    def mark_deleting(self, kind: str, namespace: str, name: str) -> StoredResource | None:
        with self._tx() as db:
            db.execute(
                "UPDATE resources SET deleting=1, resource_version=resource_version+1"
                " WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace, name),
            )
        return self.get(kind, namespace, name)

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Forget the resource, its events and its revisions: a new one of the same name
        starts clean."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM resources WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace, name),
            )
            if kind in EVENT_OWNERS:  # events are RayServices' and RayClusters' only
                db.execute("DELETE FROM events WHERE namespace=? AND name=?", (namespace, name))
            db.execute(
                "DELETE FROM revisions WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace, name),
            )

    def revisions(self, kind: str, namespace: str, name: str) -> list[Revision]:
        rows = (
            self._connection()
            .execute(
                "SELECT generation, manifest, source, applied_at FROM revisions"
                " WHERE kind=? AND namespace=? AND name=? ORDER BY generation",
                (kind, namespace, name),
            )
            .fetchall()
        )
        return [
            Revision(int(r["generation"]), json.loads(r["manifest"]), r["source"], r["applied_at"])
            for r in rows
        ]

    def write_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> bool:
        text = canonical_json(status)
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE resources SET status=?, resource_version=resource_version+1"
                " WHERE kind=? AND namespace=? AND name=? AND status<>?",
                (text, kind, namespace, name, text),
            )
            return cursor.rowcount > 0

    def write_record(self, kind: str, namespace: str, name: str, record: dict[str, Any]) -> bool:
        text = canonical_json(record)
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE resources SET record=?, resource_version=resource_version+1"
                " WHERE kind=? AND namespace=? AND name=? AND record<>?",
                (text, kind, namespace, name, text),
            )
            return cursor.rowcount > 0

    def resource_version(self, kind: str, namespace: str, name: str) -> int | None:
        row = (
            self._connection()
            .execute(
                "SELECT resource_version FROM resources WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace, name),
            )
            .fetchone()
        )
        return None if row is None else int(row[0])

    # -- events ----------------------------------------------------------------------------

    def add_event(
        self,
        namespace: str,
        name: str,
        type_: str,
        reason: str,
        message: str,
        now: float,
        involved: ObjectRef | None = None,
    ) -> None:
        about = ObjectRef(ObjectKind.RAY_SERVICE, name) if involved is None else involved
        identity = (namespace, name, about.kind, about.name, type_, reason, message)
        with self._tx() as db:
            repeated = db.execute(
                "UPDATE events SET count=count+1, last_seen=? WHERE id=(SELECT id FROM events"
                " WHERE namespace=? AND name=? AND involved_kind=? AND involved_name=? AND type=?"
                " AND reason=? AND message=? ORDER BY last_seen DESC, id DESC LIMIT 1)",
                (now, *identity),
            ).rowcount
            if repeated:
                return
            db.execute(
                "INSERT INTO events (namespace, name, involved_kind, involved_name, type, reason,"
                " message, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)",
                (*identity, now, now),
            )
            db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE namespace=?"
                " AND name=? ORDER BY last_seen DESC, id DESC LIMIT -1 OFFSET ?)",
                (namespace, name, self._max_events),
            )

    def events(self, namespace: str, name: str) -> list[Event]:
        rows = (
            self._connection()
            .execute(
                "SELECT * FROM events WHERE namespace=? AND name=? ORDER BY last_seen, id",
                (namespace, name),
            )
            .fetchall()
        )
        return [_row_to_event(r) for r in rows]

    # -- observed views --------------------------------------------------------------------

    def replace_views(self, owner: str, views: list[View]) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM views WHERE owner=?", (owner,))
            db.executemany(
                "INSERT OR REPLACE INTO views (kind, namespace, name, owner, doc)"
                " VALUES (?,?,?,?,?)",
                [(v.kind, v.namespace, v.name, owner, canonical_json(v.doc)) for v in views],
            )

    def views(self, kind: str, namespace: str | None = None) -> list[View]:
        query, args = "SELECT * FROM views WHERE kind=?", [kind]
        if namespace is not None:
            query += " AND namespace=?"
            args.append(namespace)
        rows = self._connection().execute(query + " ORDER BY namespace, name", args).fetchall()
        return [
            View(r["kind"], r["namespace"], r["name"], r["owner"], json.loads(r["doc"]))
            for r in rows
        ]

    # -- ports -----------------------------------------------------------------------------

    def allocate_port(
        self, owner: str, purpose: str, start: int, usable: Callable[[int], bool]
    ) -> int:
        with self._tx() as db:
            held = db.execute(
                "SELECT port FROM ports WHERE owner=? AND purpose=?", (owner, purpose)
            ).fetchone()
            if held is not None:
                return int(held["port"])
            taken = {int(r["port"]) for r in db.execute("SELECT port FROM ports").fetchall()}
            port = start
            while port in taken or not usable(port):
                port += 1
                if port > 65535:
                    raise TemporaryError(f"no free port at or above {start} for {owner} {purpose}")
            db.execute(
                "INSERT INTO ports (port, owner, purpose) VALUES (?,?,?)", (port, owner, purpose)
            )
            return port

    def put_scale_request(self, cluster: str, owner: str, request: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO scale_requests (cluster, owner, request) VALUES (?,?,?)",
                (cluster, owner, json.dumps(request, sort_keys=True)),
            )

    def scale_requests(self, owner: str) -> dict[str, dict[str, Any]]:
        rows = self._connection().execute(
            "SELECT cluster, request FROM scale_requests WHERE owner=? ORDER BY cluster", (owner,)
        )
        return {str(row["cluster"]): json.loads(row["request"]) for row in rows.fetchall()}

    def forget_scale_requests(self, clusters: Collection[str]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM scale_requests WHERE cluster=?", [(c,) for c in clusters])

    def forget_removed_workers(self, cluster: str, present: Collection[str]) -> None:
        with self._tx() as db:
            row = db.execute(
                "SELECT request FROM scale_requests WHERE cluster=?", (cluster,)
            ).fetchone()
            if row is None:
                return
            request = json.loads(row["request"])
            leaving = request.get("workersToDelete", [])
            kept = [name for name in leaving if name in present]
            if kept != leaving:
                request["workersToDelete"] = kept
                db.execute(
                    "UPDATE scale_requests SET request=? WHERE cluster=?",
                    (json.dumps(request, sort_keys=True), cluster),
                )

    def port_is_held(self, port: int) -> bool:
        found = self._connection().execute("SELECT 1 FROM ports WHERE port=?", (port,))
        return found.fetchone() is not None

    def release_ports(self, owner: str, purpose: str | None = None) -> None:
        with self._tx() as db:
            if purpose is None:
                db.execute("DELETE FROM ports WHERE owner=?", (owner,))
            else:
                db.execute("DELETE FROM ports WHERE owner=? AND purpose=?", (owner, purpose))
