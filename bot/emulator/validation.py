"""Check Web API arguments, Block Kit blocks and views the way Slack does.

Arguments are checked against the method's `args` JSON Schema (scraped from Slack's
documentation, vendored in `methods/`). Blocks and views are checked with slack_sdk's
models plus the documented limits, because slack_sdk alone lets some through (unknown
block types, a modal without a title).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

METHODS_DIR = Path(__file__).resolve().parent / "methods"

MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_MODAL_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255
MAX_MESSAGE_TEXT = 40_000
MAX_TOPIC = 250

# String-typed arguments that carry JSON; in a JSON body they may arrive already decoded.
JSON_ENCODED_ARGS = frozenset({"blocks", "attachments", "unfurled_attachments", "metadata", "view"})
# Named schemas the scraped files refer to, reduced to the JSON type they stand for.
NAMED_SCHEMA_TYPES = {
    "channel": "string",
    "user_id": "string",
    "file_id": "string",
    "workspace_id": "string",
    "ts": "string",
    "modal": "object",
    "view": "object",
    "workflow-step": "object",
    "app-notification-subscription-configuration": "object",
}
TRUE_STRINGS = frozenset({"true", "1"})
FALSE_STRINGS = frozenset({"false", "0"})

JsonObject = dict[str, Any]


class SlackRefusal(Exception):
    """A call Slack would refuse: `error` is the API error code, `messages` the details."""

    def __init__(self, error: str, messages: Sequence[str] = ()) -> None:
        self.error = error
        self.messages = list(messages)
        detail = "; ".join(self.messages)
        super().__init__(f"{error}: {detail}" if detail else error)


@dataclass(frozen=True)
class MethodSpec:
    """The parts of a method's documentation the emulator enforces."""

    name: str
    args_schema: JsonObject
    errors: frozenset[str]
    json_input_supported: bool

    @property
    def required(self) -> list[str]:
        """Required argument names, token excluded (it travels in the header)."""
        return [name for name in self.args_schema.get("required", []) if name != "token"]

    @property
    def properties(self) -> dict[str, JsonObject]:
        props: dict[str, JsonObject] = self.args_schema.get("properties", {})
        return props


def load_method_spec(method: str, directory: Path | None = None) -> MethodSpec:
    """Read `<directory>/<method>.json` (default: the vendored copies)."""
    return _load_cached(method, directory or METHODS_DIR)


@cache
def _load_cached(method: str, directory: Path) -> MethodSpec:
    path = directory / f"{method}.json"
    if not path.is_file():
        raise KeyError(f"no schema for Slack method {method!r} in {directory}")
    document = json.loads(path.read_text(encoding="utf-8"))
    return MethodSpec(
        name=method,
        args_schema=document.get("args", {}),
        errors=frozenset(document.get("errors", {})),
        json_input_supported=bool(document.get("json_input_supported")),
    )


def vendored_methods() -> list[str]:
    """Names of the methods whose schemas are vendored."""
    return sorted(path.stem for path in METHODS_DIR.glob("*.json"))


def check_args(spec: MethodSpec, args: Mapping[str, Any]) -> JsonObject:
    """Validate `args` (token removed) and return them coerced to their schema types.

    Unknown argument names are kept as given: slack_sdk adds some that are not documented.
    """
    problems: list[str] = []
    missing = [name for name in spec.required if args.get(name) is None]
    for name in missing:
        problems.append(f"[ERROR] missing required field: {name}")
    if missing:
        code = "missing_argument" if "missing_argument" in spec.errors else "invalid_arguments"
        raise SlackRefusal(code, problems)

    coerced: JsonObject = {}
    for name, value in copy.deepcopy(dict(args)).items():
        schema = spec.properties.get(name)
        if schema is None:
            coerced[name] = value
            continue
        result = _coerce(schema, value, name, f"/{name}")
        if isinstance(result, _Invalid):
            problems.append(f"[ERROR] {result.reason} [json-pointer:/{name}]")
        else:
            coerced[name] = result
    if problems:
        if any(p.endswith("[json-pointer:/blocks]") for p in problems):
            if "invalid_blocks_format" in spec.errors:
                raise SlackRefusal("invalid_blocks_format", problems)
        raise SlackRefusal("invalid_arguments", problems)
    return coerced


@dataclass(frozen=True)
class _Invalid:
    reason: str


def _coerce(schema: Mapping[str, Any], value: Any, name: str, pointer: str) -> Any:
    """Return `value` converted to what `schema` describes, or `_Invalid`."""
    if "anyOf" in schema:
        reasons = []
        for option in schema["anyOf"]:
            result = _coerce(option, value, name, pointer)
            if not isinstance(result, _Invalid):
                return result
            reasons.append(result.reason)
        return _Invalid(" or ".join(dict.fromkeys(reasons)))
    if "allOf" in schema:
        for part in schema["allOf"]:
            value = _coerce(part, value, name, pointer)
            if isinstance(value, _Invalid):
                return value
    types = schema.get("type")
    if types is None and isinstance(schema.get("schema"), str):
        types = NAMED_SCHEMA_TYPES.get(schema["schema"])
    if types is not None:
        type_list = types if isinstance(types, list) else [types]
        for json_type in type_list:
            result = _coerce_type(json_type, value, name)
            if not isinstance(result, _Invalid):
                value = result
                break
        else:
            return _coerce_type(type_list[0], value, name)
    return _check_constraints(schema, value, name, pointer)


def _coerce_type(json_type: str, value: Any, name: str) -> Any:
    match json_type:
        case "null":
            return None if value is None else _Invalid("must be null")
        case "string":
            if isinstance(value, str):
                if name in JSON_ENCODED_ARGS and value:
                    try:
                        json.loads(value)
                    except ValueError:
                        return _Invalid(f"`{name}` must be a JSON-encoded string")
                return value
            if name in JSON_ENCODED_ARGS and isinstance(value, list | dict):
                return value
            return _Invalid("must provide a string")
        case "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.lower() in TRUE_STRINGS | FALSE_STRINGS:
                return value.lower() in TRUE_STRINGS
            return _Invalid("must provide a boolean")
        case "integer":
            if isinstance(value, bool):
                return _Invalid("must provide an integer")
            if isinstance(value, int):
                return value
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    pass
            return _Invalid("must provide an integer")
        case "number":
            if isinstance(value, bool):
                return _Invalid("must provide a number")
            if isinstance(value, int | float):
                return value
            if isinstance(value, str):
                try:
                    number = float(value.strip())
                except ValueError:
                    return _Invalid("must provide a number")
                return int(number) if number.is_integer() else number
            return _Invalid("must provide a number")
        case "array" | "object":
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    return _Invalid(f"must provide a JSON-encoded {json_type}")
            if isinstance(value, list if json_type == "array" else dict):
                return value
            return _Invalid(f"must provide an {json_type}")
        case _:
            return value


def _check_constraints(schema: Mapping[str, Any], value: Any, name: str, pointer: str) -> Any:
    if isinstance(value, str):
        max_length = schema.get("maxLength")
        if isinstance(max_length, int) and len(value) > max_length:
            return _Invalid(f"must be at most {max_length} characters")
        enum = schema.get("enum")
        if isinstance(enum, list) and value not in enum:
            return _Invalid(f"must be one of {enum}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        minimum = schema.get("minimum")
        maximum = schema.get("maximum")
        if isinstance(minimum, int | float) and value < minimum:
            return _Invalid(f"must be at least {minimum}")
        if isinstance(maximum, int | float) and value > maximum:
            return _Invalid(f"must be at most {maximum}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            result = _coerce(schema["items"], item, name, f"{pointer}/{index}")
            if isinstance(result, _Invalid):
                return _Invalid(f"item {index}: {result.reason}")
            value[index] = result
    if isinstance(value, dict) and schema.get("type") == "object":
        for required in schema.get("required", []):
            if required not in value:
                return _Invalid(f"missing required field: {required}")
        for key, sub_schema in schema.get("properties", {}).items():
            if key in value:
                result = _coerce(sub_schema, value[key], key, f"{pointer}/{key}")
                if isinstance(result, _Invalid):
                    return _Invalid(f"`{key}` {result.reason}")
    return value


def parse_json_arg(value: Any) -> Any:
    """Decode a JSON-encoded argument; values from a JSON body are already decoded."""
    if isinstance(value, str):
        return json.loads(value) if value else None
    return value


def check_blocks(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Problems with a list of Block Kit blocks; an empty list means valid."""
    if not isinstance(blocks, list):
        return ["[ERROR] blocks must be an array"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:/blocks]")
    for index, raw in enumerate(blocks):
        pointer = f"[json-pointer:/blocks/{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            problems.append(f"[ERROR] a block must be an object with a type {pointer}")
            continue
        problems.extend(f"[ERROR] {reason} {pointer}" for reason in _limit_problems(raw))
        try:
            block = Block.parse(raw)
        except (SlackObjectFormationError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"[ERROR] {exc} {pointer}")
            continue
        if block is None:
            problems.append(f"[ERROR] unsupported type: {raw['type']} {pointer}")
            continue
        try:
            block.validate_json()
        except SlackObjectFormationError as exc:
            problems.append(f"[ERROR] {exc} {pointer}")
    return list(dict.fromkeys(problems))


def _text_of(element: Any) -> str | None:
    if isinstance(element, dict) and isinstance(element.get("text"), str):
        text: str = element["text"]
        return text
    return None


def _limit_problems(block: Mapping[str, Any]) -> list[str]:
    """The limits from Slack's docs, checked directly so they never depend on slack_sdk."""
    problems: list[str] = []
    kind = block.get("type")
    text = _text_of(block.get("text"))
    if kind == "section" and text is not None and len(text) > MAX_SECTION_TEXT:
        problems.append(f"section text must be at most {MAX_SECTION_TEXT} characters")
    if kind == "header" and text is not None and len(text) > MAX_HEADER_TEXT:
        problems.append(f"header text must be at most {MAX_HEADER_TEXT} characters")
    elements = list(block.get("elements") or [])
    if isinstance(block.get("accessory"), dict):
        elements.append(block["accessory"])
    for element in elements:
        if isinstance(element, dict) and element.get("type") == "button":
            label = _text_of(element.get("text"))
            if label is not None and len(label) > MAX_BUTTON_TEXT:
                problems.append(f"button text must be at most {MAX_BUTTON_TEXT} characters")
    return problems


def check_view(view: Any) -> list[str]:
    """Problems with a modal or Home tab view; an empty list means valid."""
    if not isinstance(view, dict):
        return ["[ERROR] view must be an object [json-pointer:/view]"]
    problems: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        problems.append("[ERROR] view type must be modal or home [json-pointer:/view/type]")
    if kind == "modal":
        title = _text_of(view.get("title"))
        if title is None:
            problems.append("[ERROR] missing required field: title [json-pointer:/view/title]")
        elif len(title) > MAX_MODAL_TITLE:
            problems.append(
                f"[ERROR] must be at most {MAX_MODAL_TITLE} characters "
                "[json-pointer:/view/title/text]"
            )
        for button in ("submit", "close"):
            label = _text_of(view.get(button))
            if label is not None and len(label) > MAX_MODAL_TITLE:
                problems.append(
                    f"[ERROR] must be at most {MAX_MODAL_TITLE} characters "
                    f"[json-pointer:/view/{button}/text]"
                )
    metadata = view.get("private_metadata")
    if metadata is not None and (
        not isinstance(metadata, str) or len(metadata) > MAX_PRIVATE_METADATA
    ):
        problems.append(
            f"[ERROR] must be a string of at most {MAX_PRIVATE_METADATA} characters "
            "[json-pointer:/view/private_metadata]"
        )
    callback_id = view.get("callback_id")
    if callback_id is not None and (
        not isinstance(callback_id, str) or len(callback_id) > MAX_CALLBACK_ID
    ):
        problems.append(
            f"[ERROR] must be a string of at most {MAX_CALLBACK_ID} characters "
            "[json-pointer:/view/callback_id]"
        )
    blocks = view.get("blocks")
    if blocks is None:
        problems.append("[ERROR] missing required field: blocks [json-pointer:/view/blocks]")
    else:
        block_problems = check_blocks(blocks, max_blocks=MAX_MODAL_BLOCKS)
        problems.extend(
            p.replace("[json-pointer:/", "[json-pointer:/view/") for p in block_problems
        )
    if not problems:
        try:
            View(**view).validate_json()
        except (SlackObjectFormationError, TypeError) as exc:
            problems.append(f"[ERROR] {exc} [json-pointer:/view]")
    return problems


def check_message_content(method: str, args: Mapping[str, Any]) -> None:
    """Raise `SlackRefusal` for message text/blocks Slack would refuse (chat.* methods)."""
    text = args.get("text")
    blocks = parse_json_arg(args.get("blocks"))
    attachments = parse_json_arg(args.get("attachments"))
    markdown_text = args.get("markdown_text")
    if markdown_text and (text or blocks):
        raise SlackRefusal("markdown_text_conflict")
    if not text and not blocks and not attachments and not markdown_text:
        raise SlackRefusal("no_text")
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        raise SlackRefusal("msg_too_long")
    if blocks:
        problems = check_blocks(blocks)
        if problems:
            raise SlackRefusal("invalid_blocks", problems)


MESSAGE_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage"}
)
TRIGGERED_VIEW_METHODS = frozenset({"views.open", "views.push"})
VIEW_METHODS = frozenset({*TRIGGERED_VIEW_METHODS, "views.update", "views.publish"})


def check_view_args(method: str, args: Mapping[str, Any]) -> JsonObject:
    """Raise `SlackRefusal` unless a views.* call carries a usable view; return the view."""
    # Real trigger_ids expire after 3 s and work once; the emulator only refuses a missing one.
    if method in TRIGGERED_VIEW_METHODS and not (
        args.get("trigger_id") or args.get("interactivity_pointer")
    ):
        raise SlackRefusal("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
    if method == "views.update" and not (args.get("view_id") or args.get("external_id")):
        raise SlackRefusal(
            "invalid_arguments", ["[ERROR] either view_id or external_id is required"]
        )
    view = parse_json_arg(args.get("view"))
    problems = check_view(view)
    if problems:
        raise SlackRefusal("invalid_arguments", problems)
    checked: JsonObject = view
    return checked


def check_call_rules(method: str, args: Mapping[str, Any]) -> None:
    """The rules beyond the argument schema: message content and views."""
    if method in MESSAGE_METHODS:
        check_message_content(method, args)
    if method in VIEW_METHODS:
        check_view_args(method, args)
