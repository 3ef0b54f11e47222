"""Injected failures: added latency, error answers (429/500/503/504) and hangs, for reliability tests.

Faults are checked before authentication, as a load balancer or an overloaded API server would fail a
request before looking at it. Durations are measured on the double's injected clock, so a test ends a
"for 30 seconds" outage by moving its clock, not by sleeping; latency and hangs are real sleeps in the
handler thread, because what they test is the client's own timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

FaultKind = Literal["latency", "error", "hang"]


@dataclass
class Fault:
    kind: FaultKind
    status: int = 503
    seconds: float = 0.0
    retry_after: int | None = None
    remaining: int | None = None  # None: until cleared (or until ``until``)
    until: datetime | None = None
    path_prefix: str | None = None
    method: str | None = None

    def applies(self, method: str, path: str, now: datetime) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


@dataclass(frozen=True)
class Outcome:
    """What the faults decided for one request."""

    delay: float = 0.0
    fault: Fault | None = None  # an error or hang to act out, already counted


class Faults:
    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._released = threading.Event()

    def add(self, fault: Fault, for_seconds: float | None) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be at least 1")
        if for_seconds is not None:
            fault.until = self._now() + timedelta(seconds=for_seconds)
        with self._lock:
            self._released.clear()
            self._faults.append(fault)

    def clear(self) -> None:
        """Drop every fault and release requests that are hanging right now."""
        with self._lock:
            self._faults.clear()
            self._released.set()

    def decide(self, method: str, path: str) -> Outcome:
        now = self._now()
        delay = 0.0
        chosen: Fault | None = None
        with self._lock:
            self._faults = [f for f in self._faults if f.until is None or now < f.until]
            for fault in self._faults:
                if not fault.applies(method, path, now):
                    continue
                if fault.kind == "latency":
                    delay += fault.seconds
                    self._count(fault)
                elif chosen is None:
                    chosen = fault
                    self._count(chosen)
            self._faults = [f for f in self._faults if f.remaining is None or f.remaining > 0]
        return Outcome(delay, chosen)

    @staticmethod
    def _count(fault: Fault) -> None:
        if fault.remaining is not None:
            fault.remaining -= 1

    def wait(self, seconds: float) -> None:
        """Sleep in the handler thread; ``clear()`` (or stopping the double) cuts it short."""
        if seconds > 0:
            self._released.wait(seconds)
