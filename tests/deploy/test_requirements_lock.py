"""``requirements.lock``: the exact version of every package breakglass installs, runtime and dev tools.

Every install is constrained by it: ``.ci/run`` and the README's commands (``pip install -c
requirements.lock -e '.[dev]'``) and the Dockerfile (``pip wheel -c requirements.lock``). So the tested
environment is the locked one, and a release published on the index later changes nothing (not the
tests, not ruff's rules, not mypy's verdicts) until someone refreshes the lock on purpose.

What is tested holds whatever the index serves on the day: the lock names every package of the
closure (the project's ``dependencies`` and its ``dev`` extra, and theirs, as installed; markers
evaluated for Linux and this Python), and each pin satisfies every range that asks for it (pyproject's
and the installed packages' own). No test compares the lock with the index or with what an
unconstrained install would pick.

Refreshing (the lock's header says the same): ``.venv/bin/python -m tests.deploy.test_requirements_lock
> requirements.lock`` writes the installed closure.
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
INSTALL = "pip install -c requirements.lock -e '.[dev]'"
HEADER = f"""\
# Exact versions of everything breakglass installs: its runtime dependencies and theirs, then the
# development tools (the `dev` extra) and theirs. Every install is constrained by this file, so what
# is tested is what is locked and a new release on the index changes nothing until it is refreshed:
#   .ci/run and the README:  {INSTALL}
#   the Dockerfile:          pip wheel -c requirements.lock
# Refresh, after adding or changing a dependency in pyproject.toml (every other pin stays as it is;
# when a pin below conflicts with a range you changed, delete its line first):
#   .venv/bin/{INSTALL} \\
#     && .venv/bin/python -m tests.deploy.test_requirements_lock > requirements.lock
# To move every package to the newest release pyproject allows, do the same in a new venv without
# `-c requirements.lock`, then run the whole suite (bash .ci/run) before landing.
# tests/deploy/test_requirements_lock.py fails when a needed package is missing or a pin is outside a range.
"""
DEV_HEADER = "\n# development tools (the `dev` extra), beyond the runtime's\n"


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def runtime_requirements() -> list[Requirement]:
    return [Requirement(text) for text in _pyproject()["project"]["dependencies"]]


def dev_requirements() -> list[Requirement]:
    return [Requirement(text) for text in _pyproject()["project"]["optional-dependencies"]["dev"]]


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def closure(requirements: list[Requirement]) -> dict[str, tuple[str, list[Requirement]]]:
    """Installed version and the requirements naming it, for every package ``requirements`` need."""
    found: dict[str, tuple[str, list[Requirement]]] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(requirement, frozenset[str]()) for requirement in requirements]
    while pending:
        requirement, parent_extras = pending.pop()
        if not _applies(requirement, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        distribution = metadata.distribution(requirement.name)
        _, asked = found.setdefault(name, (distribution.version, []))
        asked.append(requirement)
        wanted = frozenset(requirement.extras)
        if (name, wanted) in seen:
            continue  # its own requirements are already queued
        seen.add((name, wanted))
        for text in distribution.requires or []:
            pending.append((Requirement(text), wanted))
    return found


def render_lock() -> str:
    runtime = closure(runtime_requirements())
    dev = {name: pin for name, pin in closure(dev_requirements()).items() if name not in runtime}
    lines = [f"{name}=={version}" for name, (version, _) in sorted(runtime.items())]
    dev_lines = [f"{name}=={version}" for name, (version, _) in sorted(dev.items())]
    return HEADER + "\n".join(lines) + "\n" + DEV_HEADER + "\n".join(dev_lines) + "\n"


def _locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
            assert match, f"requirements.lock: not an exact pin: {line!r}"
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_the_lock_pins_every_package_of_the_runtime_and_dev_closure() -> None:
    needed = closure(runtime_requirements()) | closure(dev_requirements())
    locked = _locked()
    missing = sorted(set(needed) - set(locked))
    assert not missing, f"requirements.lock does not pin {missing}; refresh it (see its header)"
    assert {"slack-bolt", "kubernetes", "redis", "rq", "pydantic-core", "urllib3"} <= set(locked)
    assert {"pytest", "ruff", "mypy", "fakeredis", "hypothesis", "import-linter"} <= set(locked)


def test_every_pin_satisfies_every_range_that_asks_for_it() -> None:
    needed = closure(runtime_requirements()) | closure(dev_requirements())
    asked_by = {name: asked for name, (_, asked) in needed.items()}
    for requirement in runtime_requirements() + dev_requirements():
        asked_by.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    for name, version in _locked().items():
        for requirement in asked_by.get(name, []):
            assert requirement.specifier.contains(Version(version), prereleases=True), (
                f"requirements.lock pins {name}=={version}, outside {requirement}"
            )


def test_the_lock_says_how_to_refresh_it() -> None:
    assert LOCK.read_text().startswith(HEADER), "requirements.lock's header is rendered by this module; refresh it"


def test_every_install_is_constrained_by_the_lock() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip wheel -c requirements.lock" in dockerfile
    assert "!requirements.lock" in (REPO / ".dockerignore").read_text().splitlines()
    ci = (REPO / ".ci" / "run").read_text()
    assert "pip install --quiet -c requirements.lock -e '.[dev]'" in ci
    readme_commands = (REPO / "README.md").read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    installs = re.findall(r"pip install [^&]*", readme_commands)
    assert installs, "the README opens with its install commands"
    assert all("-c requirements.lock" in install for install in installs), installs


if __name__ == "__main__":
    print(render_lock(), end="")
