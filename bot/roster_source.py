"""The roster as the processes see it: loaded from its file, reloaded when the file changes.

A roster edited into something invalid is *not* taken: the last good one stays in force and the
problem is logged, because a typo must never widen or wipe access mid-incident, and revocation and
the sweep must go on whatever the file holds. At start-up there is no last good roster, so an invalid
file stops the process (contract).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from pathlib import Path

from bot.domain.roster import Roster, RosterError, load_roster_file

log = logging.getLogger(__name__)


class RosterFile:
    def __init__(self, path: str | Path, token_namespace: str | None = None) -> None:
        self.path = Path(path)
        # The token namespace is protected like the bot's own (a process setting, not the file's).
        self._also_protected = (token_namespace,) if token_namespace else ()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._roster = self._load()  # raises RosterError: refuse to start
        self._stamp = self._file_stamp()

    def _load(self) -> Roster:
        return replace(load_roster_file(self.path), also_protected=self._also_protected)

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
                        self._roster = self._load()
                        log.info("roster reloaded", extra={"roster": str(self.path)})
                    except RosterError as exc:
                        log.error("roster change refused, keeping the last good one: %s", exc)
                    except Exception:
                        # load_roster_file turns every read or parse failure into RosterError; one
                        # that escapes anyway is a bug, and must not stop every roster() caller,
                        # revoke jobs and the sweep among them.
                        log.exception("roster change could not be read, keeping the last good one")
                    self._stamp = stamp
        return self._roster


class FixedRoster:
    """A roster that never changes (tests, the demo)."""

    def __init__(self, roster: Roster) -> None:
        self.roster = roster

    def __call__(self) -> Roster:
        return self.roster
