"""``breakglass roster check`` as an operator runs it before a deploy: a real subprocess, its exit code
and what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ROSTER, ROOT

pytestmark = pytest.mark.slow  # a real `breakglass` process


def test_roster_check_refuses_two_people_with_one_kube_user_and_names_both(tmp_path: Path) -> None:
    """Finding 3: two Slack ids with one kube_user passed the check, and one could approve the other."""
    example = EXAMPLE_ROSTER.read_text(encoding="utf-8")
    assert "U00000CAROL: {kube_user: carol@example.com" in example
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        example.replace("U00000CAROL: {kube_user: carol@example.com", "U00000CAROL: {kube_user: bob@example.com")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKGLASS_")}
    checked = subprocess.run(
        [sys.executable, "-m", "bot.cli", "roster", "check", str(roster)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode != 0, checked.stdout
    (problem,) = [line for line in checked.stdout.splitlines() if "bob@example.com" in line]
    assert "U00000CAROL" in problem
    assert "U0000000BOB" in problem
    assert "ok:" not in checked.stdout
