"""``requirements.lock``: the exact version of every runtime dependency the image installs.

The Dockerfile builds its wheels with ``pip wheel -c requirements.lock``, so the image gets the
versions the tests ran on, not whatever newest release pyproject's ranges allow on build day. This
test holds the lock to the project: it names every package of the runtime closure (the project's
``dependencies`` and theirs, markers evaluated for Linux and this Python, no dev extras), nothing
else, and each pinned version satisfies every range that asks for it. Regenerate it from the
installed, tested environment with ``.venv/bin/python -m tests.deploy.test_requirements_lock >
requirements.lock``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.conftest import REPO

LOCK = REPO / "requirements.lock"
HEADER = """\
# Exact versions of breakglass's runtime dependencies and theirs (no dev tools), as installed and
# tested. The Dockerfile builds with `pip wheel -c requirements.lock`. Regenerate after changing
# pyproject's dependencies or upgrading the venv:
#   .venv/bin/python -m tests.deploy.test_requirements_lock > requirements.lock
# tests/deploy/test_requirements_lock.py fails when this no longer matches pyproject.toml.
"""


def _project_requirements() -> list[Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [Requirement(text) for text in pyproject["project"]["dependencies"]]


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def runtime_closure() -> dict[str, tuple[str, list[Requirement]]]:
    """Installed version and the requirements naming it, for every package the runtime needs."""
    found: dict[str, tuple[str, list[Requirement]]] = {}
    pending = [(requirement, frozenset[str]()) for requirement in _project_requirements()]
    while pending:
        requirement, parent_extras = pending.pop()
        if not _applies(requirement, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        distribution = metadata.distribution(requirement.name)
        _, asked = found.setdefault(name, (distribution.version, []))
        asked.append(requirement)
        wanted = frozenset(requirement.extras)
        if len(asked) > 1 and not wanted:
            continue  # its own requirements are already queued
        for text in distribution.requires or []:
            pending.append((Requirement(text), wanted))
    return found


def render_lock() -> str:
    lines = [f"{name}=={version}" for name, (version, _) in sorted(runtime_closure().items())]
    return HEADER + "\n".join(lines) + "\n"


def _locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
            assert match, f"requirements.lock: not an exact pin: {line!r}"
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_the_lock_pins_exactly_the_runtime_closure() -> None:
    closure = runtime_closure()
    locked = _locked()
    assert set(locked) == set(closure), (
        f"missing {sorted(set(closure) - set(locked))}, not needed {sorted(set(locked) - set(closure))}; "
        "regenerate requirements.lock (see its header)"
    )
    assert {"slack-bolt", "kubernetes", "redis", "rq", "pydantic-core", "urllib3"} <= set(locked)
    assert not {"pytest", "ruff", "mypy", "fakeredis", "hypothesis"} & set(locked)


def test_every_pin_satisfies_every_range_that_asks_for_it() -> None:
    closure = runtime_closure()
    for name, version in _locked().items():
        for requirement in closure.get(name, ("", []))[1]:
            assert requirement.specifier.contains(Version(version), prereleases=True), (
                f"requirements.lock pins {name}=={version}, outside {requirement}"
            )


def test_the_lock_is_what_the_tested_environment_has_installed() -> None:
    assert LOCK.read_text() == render_lock(), "regenerate requirements.lock (see its header)"


def test_the_dockerfile_builds_with_the_lock_and_the_context_lets_it_in() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip wheel -c requirements.lock" in dockerfile
    assert "!requirements.lock" in (REPO / ".dockerignore").read_text().splitlines()


if __name__ == "__main__":
    print(render_lock(), end="")
