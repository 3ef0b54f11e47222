"""Shell completion for ``breakglass``, generated from its argparse tree.

The script is built from the parser the command itself uses, so a new sub-command or option completes
without anyone editing a script. It completes command words and options; where a file is expected
(a roster), the shell's own file completion takes over. Nothing here runs at completion time but the
shell: the script is static text, so completing never starts Python.
"""

from __future__ import annotations

import argparse
import shlex

_FUNCTION = "_breakglass_complete"


def _tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[str]]:
    """Each command path (``("roster", "check")``) and the words that may follow it."""
    words: list[str] = []
    found: dict[tuple[str, ...], list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words.append(name)
                found.update(_tree(sub, (*path, name)))
        elif action.option_strings:
            words.extend(action.option_strings)
        elif action.choices:  # a positional with fixed values (`completion bash|zsh`)
            words.extend(str(choice) for choice in action.choices)
    found[path] = words
    return found


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    taking: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                taking |= _value_options(sub)
        elif action.option_strings and action.nargs != 0:
            taking.update(action.option_strings)
    return taking


def bash_script(parser: argparse.ArgumentParser) -> str:
    cases = "\n".join(
        f"        {shlex.quote(' '.join(path))}) words={shlex.quote(' '.join(words))} ;;"
        for path, words in sorted(_tree(parser).items())
    )
    skip = "|".join(sorted(_value_options(parser))) or "--never"
    return f"""# bash completion for breakglass: eval "$(breakglass completion bash)" (e.g. in ~/.bashrc)
{_FUNCTION}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" words="" i skip=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        if ((skip)); then skip=0; continue; fi
        case "${{COMP_WORDS[i]}}" in
            {skip}) skip=1 ;;
            -*) ;;
            *) path="${{path:+$path }}${{COMP_WORDS[i]}}" ;;
        esac
    done
    ((skip)) && return 0
    case "$path" in
{cases}
        *) return 0 ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F {_FUNCTION} breakglass
"""


def zsh_script(parser: argparse.ArgumentParser) -> str:
    """zsh runs the bash function through its bashcompinit layer, so both shells complete alike."""
    return (
        '#compdef breakglass\n# zsh completion for breakglass: eval "$(breakglass completion zsh)" (e.g. in ~/.zshrc)\n'
        "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(parser).split("\n", 1)[1]
    )
