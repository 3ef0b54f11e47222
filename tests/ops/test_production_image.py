"""The production image holds the product and no stand-in, and its ``breakglass demo`` says so.

The image is built from the build context .dockerignore lets through (the Dockerfile copies the whole
context and builds the wheel from it), so the image's file set is read here by applying .dockerignore's
rules to the repository's files the way Docker does: the last rule that matches a path or one of its
parent directories decides, ``!`` lets back in, ``*`` stays within one path segment, ``**`` crosses them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from bot.cli import main

REPO = Path(__file__).resolve().parents[2]


def _rule(pattern: str) -> tuple[bool, re.Pattern[str]]:
    keep = pattern.startswith("!")
    pattern = pattern.removeprefix("!").strip().strip("/")
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return keep, re.compile(regex + r"\Z")


@cache
def _rules() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return tuple(_rule(line) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def in_build_context(path: str) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for keep, regex in _rules():
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not keep
    return not excluded


@cache
def _tracked_files() -> tuple[str, ...]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return tuple(line for line in listed.stdout.splitlines() if line)


def test_the_image_holds_no_stand_in() -> None:
    standins = [path for path in _tracked_files() if path.startswith("bot/standins/")]
    assert standins, "the stand-ins moved: point this test at their new home"
    assert [path for path in standins if in_build_context(path)] == []


def test_the_image_holds_every_product_module_and_what_the_wheel_is_built_from() -> None:
    product = [
        path
        for path in _tracked_files()
        if path.startswith(("bot/", "workers/")) and not path.startswith("bot/standins/") and path.endswith(".py")
    ]
    assert "bot/cli.py" in product
    assert [path for path in product if not in_build_context(path)] == []
    assert in_build_context("pyproject.toml")
    assert in_build_context("requirements.lock")


def test_the_image_holds_no_tests_and_no_local_files() -> None:
    for path in ("tests/conftest.py", "deploy/base/web.yaml", ".env", ".venv/bin/python", "roster.yaml"):
        assert not in_build_context(path), path
    for path in ("bot/__pycache__/cli.cpython-311.pyc", "breakglass.egg-info/PKG-INFO"):
        assert not in_build_context(path), path


def test_demo_without_the_stand_ins_says_in_one_line_that_it_is_not_included(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in the image: the package is not there, so importing it fails.
    monkeypatch.setitem(sys.modules, "bot.standins.demo", None)

    status = main(["demo"])

    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "not included" in err
