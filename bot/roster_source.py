"""The roster as the processes see it: loaded from its file, reloaded when the file changes.

A roster edited into something invalid is *not* taken: the last good one stays in force and the
problem is logged, because a typo must never widen or wipe access mid-incident. At start-up there is
no last good roster, so an invalid file stops the process (contract).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from bot.domain.roster import Roster, RosterError, load_roster_file

log = logging.getLogger(__name__)


class RosterFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._roster = load_roster_file(self.path)  # raises RosterError: refuse to start
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def __call__(self) -> Roster:
        stamp = self._file_stamp()
        if stamp is not None and stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self._roster = load_roster_file(self.path)
                        log.info("roster reloaded", extra={"roster": str(self.path)})
                    except RosterError as exc:
                        log.error("roster change refused, keeping the last good one: %s", exc)
                    self._stamp = stamp
        return self._roster


class FixedRoster:
    """A roster that never changes (tests, the demo)."""

    def __init__(self, roster: Roster) -> None:
        self.roster = roster

    def __call__(self) -> Roster:
        return self.roster
