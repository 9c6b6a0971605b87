"""Durations as KubeRay's annotations spell them: a Go duration or a whole number of seconds.

``ray.io/initializing-timeout`` takes what Go's ``time.ParseDuration`` reads (``90s``, ``10m``,
``1h30m``, ``1.5h``, ``300ms``; units ns, us, µs, ms, s, m, h) or, failing that, an integer
number of seconds (``600``). Only positive durations are a timeout. Kept apart from the
validators, with no imports beyond ``re``, so that the loader and the pure planner read the
annotation the same way.
"""

from __future__ import annotations

import re

DURATION_HINT = (
    "a positive Go duration such as 90s, 10m or 1h30m (units ns, us, ms, s, m, h)"
    " or a whole number of seconds such as 600"
)
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_UNITS = "|".join(sorted(_UNIT_SECONDS, key=len, reverse=True))
_PART = re.compile(rf"([0-9]+\.?[0-9]*|\.[0-9]+)({_UNITS})")
_GO_DURATION = re.compile(rf"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:{_UNITS}))+")
_SECONDS = re.compile(r"[-+]?[0-9]+")
# Go keeps a duration in int64 nanoseconds: about 292 years
_LONGEST_SECONDS = (2**63 - 1) / 1e9


def parse_duration(text: str) -> float:
    """Seconds of a positive duration written as Go writes one, or as whole seconds.

    Raises ``ValueError`` saying what is wrong: not a duration, not positive, too long.
    """
    if _GO_DURATION.fullmatch(text):
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        seconds = sign * sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(body))
    elif _SECONDS.fullmatch(text):
        seconds = float(int(text))
    else:
        raise ValueError(f"{text!r} is not a duration")
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, got {text!r}")
    if seconds > _LONGEST_SECONDS:
        raise ValueError(f"{text!r} is longer than a Go duration can be (about 292 years)")
    return seconds


def format_seconds(seconds: float) -> str:
    """``1h30m``, ``10m``, ``45s``, ``1.5s``: a length of time as a duration is written."""
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)
