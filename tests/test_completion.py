"""``breakglass completion``: the script bash loads completes the command tree it was generated from."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bot.cli import _parser
from bot.completion import bash_script, zsh_script

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def completions(script: str, line: str) -> list[str]:
    """What bash offers after ``line`` (ending in the word being completed), via the function that
    ``complete -p breakglass`` names."""
    words = line.split(" ")
    program = f"""
{script}
spec=$(complete -p breakglass) || exit 3
function=${{spec##*-F }}; function=${{function%% *}}
COMP_WORDS=({" ".join(f"'{w}'" for w in words)})
COMP_CWORD={len(words) - 1}
"$function"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, check=True)
    return sorted(filter(None, done.stdout.splitlines()))


@needs_bash
@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("breakglass ro", ["roster"]),
        ("breakglass roster ", ["--help", "-h", "check", "members"]),
        ("breakglass audit v", ["verify"]),
        ("breakglass audit export --", ["--help", "--request", "--since"]),
        ("breakglass audit export --since 90d --re", ["--request"]),
        ("breakglass completion ", ["--help", "-h", "bash", "zsh"]),
        ("breakglass deploy rbac --roster ", []),  # a file: bash's own completion takes over
    ],
)
def test_bash_completes_the_command_tree(line: str, offered: list[str]) -> None:
    assert completions(bash_script(_parser()), line) == offered


@needs_bash
def test_every_command_is_offered_at_the_top() -> None:
    offered = completions(bash_script(_parser()), "breakglass ")
    assert {"web", "worker", "serve", "roster", "audit", "doctor", "demo", "deploy", "completion"} <= set(offered)


def test_the_zsh_script_loads_the_same_function_through_bashcompinit() -> None:
    script = zsh_script(_parser())
    assert script.startswith("#compdef breakglass\n")
    assert "bashcompinit" in script
    assert "complete -o default -F _breakglass_complete breakglass" in script


def test_the_command_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["completion", "bash"]) == 0
    assert "complete -o default -F _breakglass_complete breakglass" in capsys.readouterr().out
