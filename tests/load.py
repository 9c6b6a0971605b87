"""A modest, bounded HTTP load for end-to-end tests: it counts every failed request.

``ConstantLoad`` sends POSTs at a fixed rate from a few threads for as long as the ``with``
block lasts (and never longer than ``max_seconds``), keeping every outcome: the status and
body of an answer, or the error of a request that got none. Benchmarks use a real load tool
(``hey``); tests need exact per-request outcomes, which this gives.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

import httpx


@dataclass(frozen=True)
class Outcome:
    sent_at: float  # seconds since the load started
    status: int  # 0 when no answer came
    body: str  # the answer, or the error when no answer came


@dataclass
class ConstantLoad:
    url: str
    payload: object
    rate: float = 20.0  # requests per second, all threads together
    threads: int = 4
    max_seconds: float = 600.0
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._started = 0.0

    def __enter__(self) -> ConstantLoad:
        self._started = time.monotonic()
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)

    def _run(self, index: int) -> None:
        period = self.threads / self.rate
        next_at = self._started + index * period / self.threads
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set() and next_at - self._started < self.max_seconds:
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                sent = time.monotonic() - self._started
                try:
                    response = client.post(self.url, json=self.payload)
                    outcome = Outcome(sent, response.status_code, response.text)
                except httpx.HTTPError as e:
                    outcome = Outcome(sent, 0, f"{type(e).__name__}: {e}")
                with self._lock:
                    self.outcomes.append(outcome)
                next_at += period

    def failures(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.status != 200]

    def answers(self) -> Counter[str]:
        with self._lock:
            return Counter(o.body for o in self.outcomes if o.status == 200)

    def in_order(self) -> list[str]:
        """Bodies of the successful answers, in the order their requests were sent."""
        with self._lock:
            ordered = sorted(self.outcomes, key=lambda o: o.sent_at)
        return [o.body for o in ordered if o.status == 200]
