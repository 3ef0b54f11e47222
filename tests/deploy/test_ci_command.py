"""CI runs the README's test command, word for word: what a reader runs is what CI ran."""

from __future__ import annotations

from tests.deploy.conftest import REPO


def readme_test_command() -> str:
    """The README's second command (install, then test): its test part, after the last ``&&``."""
    commands = (REPO / "README.md").read_text().split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    return commands[1].rsplit("&& ", 1)[1].strip()


def test_ci_runs_exactly_the_readmes_test_command_once() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    runs = [line.split(" || ", 1)[0].strip() for line in ci if line.strip().startswith(".venv/bin/pytest")]
    assert readme_test_command().startswith(".venv/bin/pytest")
    assert runs == [readme_test_command()]
