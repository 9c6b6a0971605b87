"""Messages from Ray made fit for a condition or an event line.

Ray's messages carry terminal colour codes and whole Python tracebacks. A condition or event
should say in one line what went wrong, so :func:`headline` strips the escape codes and keeps
a traceback's last line (the exception and its message); the full text stays where there is
room for it (the application's status in ``describe``, the controller's log).
"""

from __future__ import annotations

import re

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_TRACEBACK = "Traceback (most recent call last)"
MAX_HEADLINE = 1000  # characters: a condition message stays readable in `describe`


def plain(text: str) -> str:
    """``text`` without terminal escape codes."""
    return _ANSI_ESCAPE.sub("", text)


def headline(text: str) -> str:
    """One readable line of a message: no escape codes, a traceback reduced to its last line
    (what was raised), bounded in length."""
    cleaned = plain(text).strip()
    if _TRACEBACK in cleaned:
        before, _, trace = cleaned.partition(_TRACEBACK)
        lines = [line.strip() for line in trace.splitlines() if line.strip()]
        raised = lines[-1] if lines else ""
        lead = before.strip().rstrip(":").strip()
        cleaned = f"{lead}: {raised}" if lead and raised else (raised or lead)
    if len(cleaned) > MAX_HEADLINE:
        cleaned = cleaned[: MAX_HEADLINE - 1] + "…"
    return cleaned
