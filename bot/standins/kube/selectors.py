"""Label and field selectors with apimachinery's grammar and matching rules.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x,y)``, ``a>1``,
``a<1``, joined by commas (all must hold). As in Kubernetes, ``!=`` and ``notin`` also match objects that
lack the label. Field selectors: only ``metadata.name`` and ``metadata.namespace``, which every resource
supports; anything else is refused like the API server refuses an unknown field label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bot.standins.kube.validation import label_value, qualified_name

Operator = Literal["=", "!=", "in", "notin", "exists", "!", "gt", "lt"]

_SINGLE_VALUE_OPERATORS: dict[str, Operator] = {"=": "=", "==": "=", "!=": "!=", "<": "lt", ">": "gt"}
_TOKEN_RE = re.compile(r"\s*(==|!=|=|!|\(|\)|,|<|>|[^\s=!(),<>]+)")


class SelectorError(ValueError):
    """The selector text does not parse; the API server answers 400 BadRequest."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if not present or value is None:
            return False
        try:
            actual = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return actual > bound if self.operator == "gt" else actual < bound


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:  # pragma: no cover - the pattern accepts every non-space character
            raise SelectorError(f"unable to parse requirement: unexpected character at {pos}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in ("==", "!=", "=", "!", "(", ")", ",", "<", ">")


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """Parse ``text``; an empty selector selects everything."""
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    i = 0

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    while i < len(tokens):
        negated = peek() == "!"
        if negated:
            i += 1
        key = peek()
        if not _is_identifier(key) or key is None:
            raise SelectorError(f"unable to parse requirement: found '{key or ''}', expected: identifier")
        i += 1
        if errors := qualified_name(key):
            raise SelectorError(f'unable to parse requirement: key: Invalid value: "{key}": {errors[0]}')
        op = peek()
        if negated:
            if op not in (None, ","):
                raise SelectorError(f"unable to parse requirement: found '{op}', expected: ',' or 'end of string'")
            requirements.append(Requirement(key, "!"))
        elif op in (None, ","):
            requirements.append(Requirement(key, "exists"))
        elif op in ("=", "==", "!=", "<", ">"):
            i += 1
            value = peek()
            if value in (None, ","):
                value = ""  # "a=" selects the empty value, as in Kubernetes
            elif not _is_identifier(value):
                raise SelectorError(f"unable to parse requirement: found '{value}', expected: identifier")
            else:
                i += 1
            assert value is not None
            operator = _SINGLE_VALUE_OPERATORS[op]
            if operator in ("gt", "lt"):
                if not re.fullmatch(r"-?\d+", value):
                    raise SelectorError(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {value}"
                    )
            elif errors := label_value(value):
                raise SelectorError(
                    f'unable to parse requirement: values[0][{key}]: Invalid value: "{value}": {errors[0]}'
                )
            requirements.append(Requirement(key, operator, (value,)))
        elif op in ("in", "notin"):
            i += 1
            if peek() != "(":
                raise SelectorError(f"unable to parse requirement: found '{peek() or ''}', expected: '('")
            i += 1
            values: list[str] = []
            while True:
                item = peek()
                if item == ")":
                    i += 1
                    break
                if item == ",":
                    i += 1
                    continue
                if not _is_identifier(item) or item is None:
                    raise SelectorError(
                        f"unable to parse requirement: found '{item or ''}', expected: ',', ')' or identifier"
                    )
                if errors := label_value(item):
                    raise SelectorError(
                        f'unable to parse requirement: values[0][{key}]: Invalid value: "{item}": {errors[0]}'
                    )
                values.append(item)
                i += 1
            if not values:
                raise SelectorError(
                    f"unable to parse requirement: for 'in', 'notin' operators, values set can't be empty: {key}"
                )
            requirements.append(Requirement(key, "in" if op == "in" else "notin", tuple(values)))
        else:
            raise SelectorError(f"unable to parse requirement: found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        if peek() == ",":
            i += 1
            if peek() is None:
                raise SelectorError("unable to parse requirement: found '', expected: identifier")
        elif peek() is not None:
            raise SelectorError(f"unable to parse requirement: found '{peek()}', expected: ',' or 'end of string'")
    return tuple(requirements)


def labels_match(requirements: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)


@dataclass(frozen=True)
class FieldRequirement:
    field: Literal["metadata.name", "metadata.namespace"]
    equal: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        actual = meta.get(self.field.removeprefix("metadata.")) or ""
        return (actual == self.value) == self.equal


def parse_field_selector(text: str) -> tuple[FieldRequirement, ...]:
    requirements: list[FieldRequirement] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", part)
        if match is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        name, op, value = match.group(1).strip(), match.group(2), match.group(3).strip()
        if name == "metadata.name":
            requirements.append(FieldRequirement("metadata.name", op != "!=", value))
        elif name == "metadata.namespace":
            requirements.append(FieldRequirement("metadata.namespace", op != "!=", value))
        else:
            raise SelectorError(f'field label not supported: "{name}"')
    return tuple(requirements)
