"""Block Kit as Slack checks it: its documented limits and the refusals, with Slack's JSON-pointer messages.

Pure: no state, no HTTP. ``block_problems``/``view_problems`` say what Slack would refuse in blocks or a view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

JsonDict = dict[str, Any]

# Slack's limits, as its reference documents them (docs.slack.dev, Block Kit and method pages).
MESSAGE_TEXT_LIMIT = 40_000
MARKDOWN_TEXT_LIMIT = 12_000
MESSAGE_BLOCKS_LIMIT = 50
VIEW_BLOCKS_LIMIT = 100
SECTION_TEXT_LIMIT = 3_000
SECTION_FIELD_LIMIT = 2_000
SECTION_FIELDS_MAX = 10
CONTEXT_TEXT_LIMIT = 3_000
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
HEADER_TEXT_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2_000
URL_LIMIT = 3_000
ID_LIMIT = 255
PLACEHOLDER_LIMIT = 150
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
OPTIONS_MAX = 100
INPUT_LABEL_LIMIT = 2_000
CONFIRM_TITLE_LIMIT = 100
CONFIRM_TEXT_LIMIT = 300
CONFIRM_BUTTON_LIMIT = 30
VIEW_TITLE_LIMIT = 24
VIEW_PRIVATE_METADATA_LIMIT = 3_000
VIEW_SIZE_LIMIT = 250_000
VIEW_STACK_LIMIT = 3
ATTACHMENTS_LIMIT = 100


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.items.append(f"{message} [json-pointer:{pointer}]")

    def __bool__(self) -> bool:
        return bool(self.items)


def _check_length(value: Any, pointer: str, limit: int, problems: _Problems, *, minimum: int = 0) -> bool:
    if not isinstance(value, str):
        problems.add("must provide a string", pointer)
        return False
    if len(value) < minimum:
        problems.add(f"must be more than {minimum - 1} characters", pointer)
        return False
    if len(value) > limit:
        problems.add(f"must be less than {limit + 1} characters", pointer)
        return False
    return True


def _check_text_object(
    parent: Mapping[str, Any],
    key: str,
    pointer: str,
    problems: _Problems,
    *,
    limit: int,
    plain_only: bool = False,
    required: bool = True,
) -> None:
    value = parent.get(key)
    here = f"{pointer}/{key}"
    if value is None:
        if required:
            problems.add(f"missing required field: {key}", pointer)
        return
    if not isinstance(value, dict):
        problems.add("must provide an object", here)
        return
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if value.get("type") not in allowed:
        problems.add("must be a valid enum value", f"{here}/type")
        return
    inner = _Problems()
    _check_length(value.get("text"), f"{here}/text", limit, inner, minimum=1)
    if inner and not plain_only:
        # A field that takes either kind of text object fails both schemas, and Slack says so first.
        problems.add("failed to match all allowed schemas", here)
    problems.items.extend(inner.items)


def _check_id(parent: Mapping[str, Any], key: str, pointer: str, problems: _Problems) -> None:
    if key in parent and parent[key] is not None:
        _check_length(parent[key], f"{pointer}/{key}", ID_LIMIT, problems, minimum=1)


def _check_confirm(element: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    confirm = element.get("confirm")
    if confirm is None:
        return
    here = f"{pointer}/confirm"
    if not isinstance(confirm, dict):
        problems.add("must provide an object", here)
        return
    _check_text_object(confirm, "title", here, problems, limit=CONFIRM_TITLE_LIMIT, plain_only=True)
    _check_text_object(confirm, "text", here, problems, limit=CONFIRM_TEXT_LIMIT)
    _check_text_object(confirm, "confirm", here, problems, limit=CONFIRM_BUTTON_LIMIT, plain_only=True)
    _check_text_object(confirm, "deny", here, problems, limit=CONFIRM_BUTTON_LIMIT, plain_only=True)


def _check_options(element: Mapping[str, Any], pointer: str, problems: _Problems, *, maximum: int) -> None:
    options = element.get("options")
    if options is None:
        return
    here = f"{pointer}/options"
    if not isinstance(options, list):
        problems.add("must provide an array", here)
        return
    if len(options) > maximum:
        problems.add(f"no more than {maximum} items allowed", here)
        return
    for index, option in enumerate(options):
        at = f"{here}/{index}"
        if not isinstance(option, dict):
            problems.add("must provide an object", at)
            continue
        _check_text_object(option, "text", at, problems, limit=OPTION_TEXT_LIMIT)
        if "value" in option:
            _check_length(option["value"], f"{at}/value", OPTION_VALUE_LIMIT, problems, minimum=1)


SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
}
_INPUT_ELEMENTS = {
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "rich_text_input",
    "file_input",
}


def _check_element(element: Any, pointer: str, problems: _Problems) -> None:
    if not isinstance(element, dict):
        problems.add("must provide an object", pointer)
        return
    kind = element.get("type")
    _check_id(element, "action_id", pointer, problems)
    if kind == "button":
        _check_text_object(element, "text", pointer, problems, limit=BUTTON_TEXT_LIMIT, plain_only=True)
        if "value" in element:
            _check_length(element["value"], f"{pointer}/value", BUTTON_VALUE_LIMIT, problems, minimum=1)
        if "url" in element:
            _check_length(element["url"], f"{pointer}/url", URL_LIMIT, problems, minimum=1)
        if "style" in element and element["style"] not in ("primary", "danger"):
            problems.add("must be a valid enum value", f"{pointer}/style")
        _check_confirm(element, pointer, problems)
    elif kind in SELECTS or kind in _INPUT_ELEMENTS or kind == "overflow":
        _check_text_object(
            element, "placeholder", pointer, problems, limit=PLACEHOLDER_LIMIT, plain_only=True, required=False
        )
        maximum = 5 if kind == "overflow" else 10 if kind in ("checkboxes", "radio_buttons") else OPTIONS_MAX
        _check_options(element, pointer, problems, maximum=maximum)
        _check_confirm(element, pointer, problems)
    elif kind == "image":
        if "alt_text" not in element:
            problems.add("missing required field: alt_text", pointer)
    else:
        problems.add("failed to match all allowed schemas", pointer)


def _check_section(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    if block.get("text") is None and block.get("fields") is None:
        problems.add("missing required field: text", pointer)
    _check_text_object(block, "text", pointer, problems, limit=SECTION_TEXT_LIMIT, required=False)
    fields = block.get("fields")
    if fields is not None:
        here = f"{pointer}/fields"
        if not isinstance(fields, list):
            problems.add("must provide an array", here)
        elif len(fields) > SECTION_FIELDS_MAX:
            problems.add(f"no more than {SECTION_FIELDS_MAX} items allowed", here)
        else:
            holder = {str(i): f for i, f in enumerate(fields)}
            for index in range(len(fields)):
                _check_text_object(holder, str(index), here, problems, limit=SECTION_FIELD_LIMIT)
    if block.get("accessory") is not None:
        _check_element(block["accessory"], f"{pointer}/accessory", problems)


def _check_header(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    _check_text_object(block, "text", pointer, problems, limit=HEADER_TEXT_LIMIT, plain_only=True)


def _check_context(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    elements = block.get("elements")
    here = f"{pointer}/elements"
    if not isinstance(elements, list) or not elements:
        problems.add("missing required field: elements", pointer)
        return
    if len(elements) > CONTEXT_ELEMENTS_MAX:
        problems.add(f"no more than {CONTEXT_ELEMENTS_MAX} items allowed", here)
        return
    holder = {str(i): e for i, e in enumerate(elements)}
    for index, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") == "image":
            _check_element(element, f"{here}/{index}", problems)
        else:
            _check_text_object(holder, str(index), here, problems, limit=CONTEXT_TEXT_LIMIT)


def _check_actions(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    elements = block.get("elements")
    here = f"{pointer}/elements"
    if not isinstance(elements, list) or not elements:
        problems.add("missing required field: elements", pointer)
        return
    if len(elements) > ACTIONS_ELEMENTS_MAX:
        problems.add(f"no more than {ACTIONS_ELEMENTS_MAX} items allowed", here)
        return
    seen: set[str] = set()
    for index, element in enumerate(elements):
        _check_element(element, f"{here}/{index}", problems)
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in seen:
                problems.add("non-unique action_id", f"{here}/{index}/action_id")
            seen.add(action_id)


def _check_input(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    _check_text_object(block, "label", pointer, problems, limit=INPUT_LABEL_LIMIT, plain_only=True)
    _check_text_object(block, "hint", pointer, problems, limit=INPUT_LABEL_LIMIT, plain_only=True, required=False)
    if block.get("element") is None:
        problems.add("missing required field: element", pointer)
    else:
        _check_element(block["element"], f"{pointer}/element", problems)


def _check_image_block(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    if "alt_text" not in block:
        problems.add("missing required field: alt_text", pointer)
    _check_text_object(block, "title", pointer, problems, limit=INPUT_LABEL_LIMIT, plain_only=True, required=False)


def _check_markdown(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    _check_length(block.get("text"), f"{pointer}/text", MARKDOWN_TEXT_LIMIT, problems, minimum=1)


def _no_check(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    """Blocks whose insides the double does not validate (see the module docstring)."""


_BlockCheck = Callable[[Mapping[str, Any], str, _Problems], None]
_BLOCK_CHECKS: dict[str, tuple[_BlockCheck, frozenset[str]]] = {
    "section": (_check_section, frozenset({"message", "modal", "home"})),
    "header": (_check_header, frozenset({"message", "modal", "home"})),
    "context": (_check_context, frozenset({"message", "modal", "home"})),
    "actions": (_check_actions, frozenset({"message", "modal", "home"})),
    "divider": (_no_check, frozenset({"message", "modal", "home"})),
    "image": (_check_image_block, frozenset({"message", "modal", "home"})),
    "input": (_check_input, frozenset({"message", "modal", "home"})),
    "rich_text": (_no_check, frozenset({"message", "modal", "home"})),
    "video": (_no_check, frozenset({"message", "modal", "home"})),
    "file": (_no_check, frozenset({"message"})),
    "markdown": (_check_markdown, frozenset({"message"})),
}


def block_problems(blocks: Any, pointer: str = "/blocks", *, surface: str = "message") -> list[str]:
    """What Slack would say is wrong with ``blocks`` on ``surface`` (message, modal or home); empty if fine."""
    problems = _Problems()
    limit = MESSAGE_BLOCKS_LIMIT if surface == "message" else VIEW_BLOCKS_LIMIT
    if not isinstance(blocks, list):
        problems.add("must provide an array", pointer)
        return problems.items
    if len(blocks) > limit:
        problems.add(f"no more than {limit} items allowed", pointer)
        return problems.items
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        here = f"{pointer}/{index}"
        if not isinstance(block, dict):
            problems.add("must provide an object", here)
            continue
        rule = _BLOCK_CHECKS.get(str(block.get("type")))
        if rule is None or surface not in rule[1]:
            problems.add("failed to match all allowed schemas", here)
            continue
        _check_id(block, "block_id", here, problems)
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                problems.add("duplicate block_id", f"{here}/block_id")
            block_ids.add(block_id)
        rule[0](block, here, problems)
    return problems.items


def view_problems(view: Any, *, expected_type: str) -> list[str]:
    """What Slack would say is wrong with a view of ``expected_type`` (modal or home); empty if fine."""
    problems = _Problems()
    if not isinstance(view, dict):
        problems.add("must provide an object", "/view")
        return problems.items
    if view.get("type") != expected_type:
        problems.add("must be a valid enum value", "/view/type")
        return problems.items
    if expected_type == "modal":
        _check_text_object(view, "title", "/view", problems, limit=VIEW_TITLE_LIMIT, plain_only=True)
        _check_text_object(view, "submit", "/view", problems, limit=VIEW_TITLE_LIMIT, plain_only=True, required=False)
        _check_text_object(view, "close", "/view", problems, limit=VIEW_TITLE_LIMIT, plain_only=True, required=False)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            problems.add("must provide submit when using input blocks", "/view")
    if "private_metadata" in view:
        _check_length(view["private_metadata"], "/view/private_metadata", VIEW_PRIVATE_METADATA_LIMIT, problems)
    for key in ("callback_id", "external_id"):
        if key in view and view[key] not in (None, ""):
            _check_length(view[key], f"/view/{key}", ID_LIMIT, problems)
    if "blocks" not in view:
        problems.add("missing required field: blocks", "/view")
    else:
        problems.items.extend(block_problems(view["blocks"], "/view/blocks", surface=expected_type))
    return problems.items
