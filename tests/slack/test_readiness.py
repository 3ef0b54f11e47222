"""What ``/readyz`` tells whoever reaches the web process: which dependency is not ready, never why."""

from __future__ import annotations

import json
from dataclasses import replace
from wsgiref.util import setup_testing_defaults

from bot.domain.roster import Problem, Roster, RosterError
from bot.web import BreakglassWeb
from bot.wiring import Core


def _readyz(web: BreakglassWeb) -> tuple[str, dict[str, object]]:
    environ: dict[str, object] = {"PATH_INFO": "/readyz", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    answer: list[str] = []
    body = b"".join(web(environ, lambda status, headers: answer.append(status)))  # type: ignore[arg-type]
    return answer[0], json.loads(body)


def test_readyz_names_a_roster_that_does_not_load_without_its_problems(core: Core) -> None:
    def broken() -> Roster:
        raise RosterError([Problem("people.U1.kube_user", "secret-looking detail", line=7)])

    web = BreakglassWeb(core.settings, replace(core, roster=broken), slack=None)
    status, body = _readyz(web)
    assert status.startswith("503")
    assert body == {"status": "not ready", "problems": ["roster"]}


def test_readyz_is_ready_with_redis_and_a_roster(core: Core) -> None:
    status, body = _readyz(BreakglassWeb(core.settings, core, slack=None))
    assert (status, body) == ("200 OK", {"status": "ready"})
