"""front.json: the record a restarted controller adopts a running HAProxy front by."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rayservice.spec.errors import PermanentError
from rayservice.spec.observed import Backend, FrontSpec
from rayservice.traffic.haproxy_state import FrontFiles, FrontRecord, load_record, save_record

SPEC = FrontSpec(
    serve_port=8000,
    dashboard_port=8265,
    serve_backends=(Backend("node-a", "127.0.0.1", 9001), Backend("node-b", "127.0.0.1", 9002, 0)),
    dashboard_backend=Backend("head", "127.0.0.1", 52365),
)
# front.json as release 0.1.0 wrote it
RELEASED_RECORD = {
    "pid": 4242,
    "spec": {
        "dashboard_backend": {"host": "127.0.0.1", "name": "head", "port": 52365, "weight": 100},
        "dashboard_port": 8265,
        "serve_backends": [
            {"host": "127.0.0.1", "name": "node-a", "port": 9001, "weight": 100},
            {"host": "127.0.0.1", "name": "node-b", "port": 9002, "weight": 0},
        ],
        "serve_port": 8000,
    },
    "start_time": 123456,
}


def files(tmp_path: Path) -> FrontFiles:
    return FrontFiles(tmp_path, tmp_path / "front.sock")


def test_a_record_is_saved_and_loaded_unchanged(tmp_path: Path) -> None:
    record = FrontRecord(spec=SPEC, pid=4242, start_time=123456)

    save_record(files(tmp_path), record)

    assert load_record(files(tmp_path)) == record
    assert [p.name for p in tmp_path.iterdir()] == ["front.json"]  # no partial file left


def test_a_record_written_by_the_released_version_is_read_and_written_alike(
    tmp_path: Path,
) -> None:
    text = json.dumps(RELEASED_RECORD, indent=2, sort_keys=True)
    files(tmp_path).record.write_text(text)

    record = load_record(files(tmp_path))

    assert record == FrontRecord(spec=SPEC, pid=4242, start_time=123456)
    save_record(files(tmp_path), record)
    # the same, with each backend's drained mark (0.3.0), the fronts' listen addresses
    # (after 0.3.0), the cluster of each backend and the clusters' shares (later) that older
    # releases read past
    written = json.loads(files(tmp_path).record.read_text())
    for backend in [*written["spec"]["serve_backends"], written["spec"]["dashboard_backend"]]:
        assert backend.pop("drained") is False
        assert backend.pop("cluster") == ""
    assert written["spec"].pop("serve_address") == "127.0.0.1"
    assert written["spec"].pop("dashboard_address") == "127.0.0.1"
    assert written["spec"].pop("shares") == []
    assert written == RELEASED_RECORD


def test_no_record_is_none(tmp_path: Path) -> None:
    assert load_record(files(tmp_path)) is None


@pytest.mark.parametrize("text", ["{", '{"pid": 1}', '{"pid": 1, "start_time": 2, "spec": {}}'])
def test_an_unreadable_record_is_a_permanent_error(tmp_path: Path, text: str) -> None:
    files(tmp_path).record.write_text(text)

    with pytest.raises(PermanentError, match=r"front\.json is unreadable"):
        load_record(files(tmp_path))
