"""The error tree, typed by what the control loop should do with each error.

    RayServiceError
     +-- InvalidSpec        the user's input is wrong: report it, never retry
     |     (carries SpecProblem items: file, field path, what is wrong, what would be valid)
     +-- TemporaryError     the outside world is not ready yet: retry with backoff
     +-- PermanentError     retrying cannot help (e.g. Ray refused the Serve config)

Adapters wrap third-party exceptions in one of these (``raise ... from e``) so that the
controller never has to know about httpx, sqlite3 or subprocess errors.
"""

from __future__ import annotations

from dataclasses import dataclass


class RayServiceError(Exception):
    """Base of every error this package raises on purpose."""


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a manifest, located precisely enough to fix it."""

    source: str  # the file name, or "<request body>"
    field: str  # dotted path, e.g. spec.rayClusterConfig.workerGroupSpecs[0].replicas
    message: str  # what is wrong
    valid: str = ""  # what would be valid

    def render(self) -> str:
        text = f"{self.source}: {self.field}: {self.message}"
        return f"{text} (valid: {self.valid})" if self.valid else text


class InvalidSpec(RayServiceError):
    """The manifest cannot be accepted; nothing was stored or changed."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))


class TemporaryError(RayServiceError):
    """Something is not reachable or not ready yet; the loop retries with backoff."""


class PermanentError(RayServiceError):
    """Retrying the same input cannot succeed; the loop reports it and waits for a change."""
