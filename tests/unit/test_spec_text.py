"""Ray's messages reduced to one line for conditions and events."""

from __future__ import annotations

from rayservice.planner.service_status import app_events
from rayservice.spec.status import AppStatus, ServiceStatus
from rayservice.spec.text import MAX_HEADLINE, headline, plain

TRACEBACK = (
    "\x1b[36mray::ServeReplica:fruit_app:MangoStand.initialize_and_get_metadata()\x1b[39m"
    " (pid=123, ip=127.0.0.2)\n"
    "Traceback (most recent call last):\n"
    '  File "/app/fruit.py", line 12, in __init__\n'
    "    raise ValueError('no price list')\n"
    "ValueError: no price list\n"
)


def test_escape_codes_are_stripped() -> None:
    assert plain("\x1b[1m\x1b[31mred\x1b[0m text") == "red text"


def test_a_traceback_keeps_what_was_raised() -> None:
    assert headline(TRACEBACK) == (
        "ray::ServeReplica:fruit_app:MangoStand.initialize_and_get_metadata()"
        " (pid=123, ip=127.0.0.2): ValueError: no price list"
    )


def test_a_plain_message_stays_and_a_long_one_is_cut() -> None:
    assert headline("  Deployment failed to start  ") == "Deployment failed to start"
    cut = headline("x" * 5000)
    assert len(cut) == MAX_HEADLINE and cut.endswith("…")


def test_an_application_warning_carries_the_headline_not_the_traceback() -> None:
    before = ServiceStatus(
        rayClusterName="c", applicationStatuses={"a": AppStatus(status="DEPLOYING")}
    )
    after = ServiceStatus(
        rayClusterName="c",
        applicationStatuses={"a": AppStatus(status="DEPLOY_FAILED", message=TRACEBACK)},
    )

    [event] = app_events(before, after)

    assert event.type == "Warning"
    assert event.message.endswith("ValueError: no price list")
    assert "Traceback" not in event.message and "\x1b" not in event.message
