"""The edge's pure parts: the signature, reading bodies, the shape check, the log policy."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any
from urllib.parse import urlencode

import pytest
from multidict import CIMultiDict

from bot.slack import shapes
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.interactions import fit_origin
from bot.web import bodies, protocol_errors
from bot.web.bodies import BadRequest
from bot.web.slack_edge import parse_slack_body, verify_slack_signature
from tests.slack_requests import command_body, signature

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_795_969_704
BODY = b"token=x&command=%2Fincident&text=help"


def headers(timestamp: str, sig: str | None = None) -> CIMultiDict[str]:
    given = sig if sig is not None else signature(SECRET, timestamp, BODY.decode())
    return CIMultiDict({"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": given})


# -- the signature --------------------------------------------------------------------------


def test_a_correct_signature_within_five_minutes_holds() -> None:
    assert verify_slack_signature(BODY, headers(str(NOW)), SECRET, NOW + 299)
    assert verify_slack_signature(BODY, headers(str(NOW)), SECRET, NOW - 299)


@pytest.mark.parametrize(
    "timestamp", ["abc", "", "0x10", "1795969704.5", " 1795969704", "١٧٩٥٩٦٩٧٠٤", "9" * 40, "-1"]
)
def test_a_timestamp_that_is_not_unix_seconds_fails_without_raising(timestamp: str) -> None:
    sig = signature(SECRET, timestamp, BODY.decode())
    assert verify_slack_signature(BODY, headers(timestamp, sig), SECRET, NOW) is False


@pytest.mark.parametrize("skew", [301, -301, 10**9])
def test_a_stale_or_future_timestamp_fails(skew: int) -> None:
    assert not verify_slack_signature(BODY, headers(str(NOW)), SECRET, NOW + skew)


@pytest.mark.parametrize("sig", ["", "v0=", "v0=é" + "0" * 63, "v1=" + "0" * 64, "garbage"])
def test_a_malformed_signature_fails_without_raising(sig: str) -> None:
    assert not verify_slack_signature(BODY, headers(str(NOW), sig), SECRET, NOW)


def test_the_signature_covers_bytes_that_are_not_utf8() -> None:
    raw = b"\xff\xfe payload"
    base = f"v0:{NOW}:".encode() + raw
    import hashlib
    import hmac

    sig = "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    assert verify_slack_signature(raw, headers(str(NOW), sig), SECRET, NOW)
    assert not verify_slack_signature(raw + b"!", headers(str(NOW), sig), SECRET, NOW)


def test_no_secret_signs_nothing() -> None:
    assert not verify_slack_signature(BODY, headers(str(NOW)), "", NOW)


# -- reading the body -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        (b"payload=%5B%5D", "application/x-www-form-urlencoded"),
        (b"[]", "application/json"),
        (b'"just a string"', "application/json"),
        (b"{not json", "application/json"),
        (b"\xff\xfe\xfd", "application/x-www-form-urlencoded"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, None),
        (b'{"a":' * 101 + b"1" + b"}" * 101, None),
        (b'{"text": "\\ud800"}', "application/json"),
    ],
)
def test_signed_bodies_bolt_could_not_read_are_a_bad_request(
    body: bytes, content_type: str | None
) -> None:
    with pytest.raises(BadRequest):
        parse_slack_body(body, content_type)


def test_bodies_are_read_as_bolt_reads_them() -> None:
    form = command_body("help", user_id="U1", channel_id="C1", response_url="https://x")
    parsed = parse_slack_body(form.encode(), "application/x-www-form-urlencoded")
    assert (parsed["user_id"], parsed["text"]) == ("U1", "help")
    payload = urlencode({"payload": json.dumps({"type": "block_actions"})}).encode()
    assert parse_slack_body(payload, "application/x-www-form-urlencoded") == {
        "type": "block_actions"
    }
    assert parse_slack_body(b'{"type":"event_callback"}', None) == {"type": "event_callback"}
    assert parse_slack_body(b"", None) == {}
    assert parse_slack_body(b"payloads=1", None) == {}  # Bolt: "payload" in body, no field


def test_nul_characters_are_left_to_the_shape_check_which_answers_the_person() -> None:
    body = parse_slack_body(b"text=a%00b&command=%2Fincident", None)
    assert body["text"] == "a\x00b"
    with pytest.raises(BadRequest, match="NUL"):
        bodies.json_object(b'{"text": "a\\u0000b"}')
    refusal = shapes.check(command(text="a\x00b"))
    assert refusal is not None and refusal.answer is not None


def test_the_depth_check_needs_no_recursion() -> None:
    deep: Any = 1
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    with pytest.raises(BadRequest, match="nested"):
        bodies.check_tree(deep)
    bodies.check_tree({"a": [{"b": [1, 2, {"c": "é"}]}]})


# -- the shape check ------------------------------------------------------------------------


def block_actions(**action: Any) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U1"},
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.com/actions/1",
        "actions": [{"block_id": "b", **action}],
    }


def command(**changes: Any) -> dict[str, Any]:
    form = command_body("help", user_id="U1", channel_id="C1", response_url="https://x/1")
    body = dict(parse_slack_body(form.encode(), None))
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def reaction(**changes: Any) -> dict[str, Any]:
    event = {
        "type": "reaction_added",
        "user": "U1",
        "reaction": "pushpin",
        "item": {"type": "message", "channel": "C1", "ts": "1700000000.000100"},
    }
    event.update(changes)
    return {"type": "event_callback", "event_id": "Ev1", "event": event}


@pytest.mark.parametrize(
    "body",
    [
        command(),
        block_actions(action_id=ActionId.ACKNOWLEDGE_PAGE, value="17"),
        block_actions(action_id="some-old-button", value="²"),
        reaction(),
        reaction(reaction="eyes", item={"type": "file"}),
        {"type": "url_verification", "challenge": "abc", "token": "t"},
        {"type": "app_rate_limited", "team_id": "T1", "minute_rate_limited": 1518467820},
        {"type": "event_callback", "event_id": "Ev2", "event": {"type": "app_home_opened"}},
        {"token": "x", "ssl_check": "1"},
    ],
)
def test_what_slack_sends_passes(body: dict[str, Any]) -> None:
    assert shapes.check(body) is None


@pytest.mark.parametrize("field", ["user_id", "trigger_id", "response_url"])
def test_a_command_missing_a_field_slack_always_sends_is_refused(field: str) -> None:
    refusal = shapes.check(command(**{field: None}))
    assert refusal is not None and field in refusal.reason
    # Without a user nobody is waiting (400); with one, they are told.
    assert (refusal.answer is None) == (field == "user_id")


@pytest.mark.parametrize("value", ["²", "9" * 30, "", "-1", "1.5", " 7", "2147483648", "١٢"])
def test_id_buttons_carry_ascii_ids_that_fit_the_database(value: str) -> None:
    for action_id in shapes.ID_BUTTONS:
        refusal = shapes.check(block_actions(action_id=action_id, value=value))
        assert refusal is not None and refusal.answer is not None


def test_an_action_list_that_is_empty_or_not_actions_is_refused() -> None:
    body = block_actions(action_id="x")
    for actions in ([], None, "x", [None], [{"value": "1"}]):
        assert shapes.check({**body, "actions": actions}) is not None


def test_a_card_menu_offers_only_statuses_and_severities() -> None:
    for action_id, value in ((ActionId.STATUS_SELECT, "sev1"), (ActionId.SEVERITY_SELECT, "x")):
        body = block_actions(action_id=action_id, selected_option={"value": value})
        assert shapes.check(body) is not None
    fine = block_actions(action_id=ActionId.STATUS_SELECT, selected_option={"value": "resolved"})
    assert shapes.check(fine) is None


def declare_submission(severity: Any = "sev2", metadata: str = "") -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": {"id": "U1"},
        "view": {
            "type": "modal",
            "callback_id": CallbackId.DECLARE_MODAL.value,
            "private_metadata": metadata,
            "state": {
                "values": {
                    BlockId.SEVERITY: {
                        BlockId.SEVERITY: {
                            "type": "static_select",
                            "selected_option": {"value": severity},
                        }
                    }
                }
            },
        },
    }


def test_an_unknown_severity_in_the_form_is_shown_under_the_severity() -> None:
    assert shapes.check(declare_submission()) is None
    refusal = shapes.check(declare_submission(severity="sev9"))
    assert refusal is not None and refusal.block == BlockId.SEVERITY and refusal.answer


@pytest.mark.parametrize(
    "metadata", ["[]", "{", '"x"', '{"ts": 5}', '{"channel": ["C1"]}', '{"ts": "NaN"}']
)
def test_private_metadata_of_the_wrong_shape_is_refused(metadata: str) -> None:
    refusal = shapes.check(declare_submission(metadata=metadata))
    assert refusal is not None and refusal.block == BlockId.TITLE


def test_a_shortcut_on_a_null_message_is_refused_with_an_answer() -> None:
    body = {
        "type": "message_action",
        "user": {"id": "U1"},
        "callback_id": CallbackId.DECLARE_SHORTCUT.value,
        "trigger_id": "1.2.3",
        "channel": {"id": "C1"},
        "message": None,
        "response_url": "https://hooks.slack.com/x",
    }
    refusal = shapes.check(body)
    assert refusal is not None and refusal.answer is not None


@pytest.mark.parametrize(
    "body",
    [
        {**reaction(), "event_id": None},
        reaction(user=None),
        reaction(item={"type": "message", "channel": "C1", "ts": "NaN"}),
        reaction(item={"type": "message", "channel": "C1", "ts": 1700000000.1}),
        reaction(item=None),
        {"type": "event_callback", "event_id": "Ev1", "event": "reaction_added"},
        {
            "type": "event_callback",
            "event_id": "Ev1",
            "event": {"type": "member_joined_channel", "user": "U1", "channel": {"id": "C1"}},
        },
    ],
)
def test_events_slack_could_not_have_sent_are_refused_with_no_one_to_tell(
    body: dict[str, Any],
) -> None:
    refusal = shapes.check(body)
    assert refusal is not None and refusal.answer is None


@pytest.mark.parametrize(
    "changes",
    [
        {"team": 5},
        {"user": ["U1"]},
        {"authorizations": {"team_id": "T1"}},
        {"authorizations": [None]},
        {"enterprise": {"id": 7}},
        {"response_urls": [{"response_url": None}]},
        {"view": "v"},
    ],
)
def test_envelope_fields_bolt_reads_have_slacks_types(changes: dict[str, Any]) -> None:
    body = {**block_actions(action_id="x"), **changes}
    assert shapes.check(body) is not None


# -- the declare form's saved origin --------------------------------------------------------


@pytest.mark.parametrize("text", ["й" * 600, "\\" * 3000, '"' * 2500, "x" * 10_000, ""])
def test_the_saved_origin_always_fits_slacks_private_metadata(text: str) -> None:
    origin = {"channel": "C1", "ts": "1700000000.000100", "user": "U1"}
    metadata, kept = fit_origin(origin, text)
    assert len(metadata) <= 3000
    assert json.loads(metadata)["text"] == text[:kept]
    if len(json.dumps({**origin, "text": text})) <= 3000 and len(text) <= 2000:
        assert kept == len(text)


# -- the protocol error policy --------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_record(error: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        "Error handling request from %s",
        ("10.0.0.1",),
        (type(error), error, None),
    )


def test_caller_faults_become_rate_limited_warnings_without_traceback() -> None:
    from aiohttp.http_exceptions import LineTooLong

    clock = Clock()
    policy = protocol_errors.ProtocolErrorPolicy(burst=3, window=60, clock=clock)
    records = [make_record(LineTooLong(b"x" * 9000, "8190")) for _ in range(10)]
    shown = [r for r in records if policy.filter(r)]
    assert len(shown) == 3
    for record in shown:
        assert record.levelno == logging.WARNING and record.exc_info is None
        assert "LineTooLong" in record.getMessage() and "10.0.0.1" in record.getMessage()
    clock.now = 61
    later = make_record(ConnectionResetError("peer went away"))
    assert policy.filter(later)
    assert "7 more like it" in later.getMessage()


def test_our_own_defects_stay_errors_with_their_traceback() -> None:
    policy = protocol_errors.ProtocolErrorPolicy(burst=1, clock=Clock())
    for _ in range(3):
        record = make_record(KeyError("ours"))
        assert policy.filter(record)
        assert record.levelno == logging.ERROR and record.exc_info is not None


def test_the_policy_is_installed_once() -> None:
    logger = logging.getLogger("tests.protocol_errors")
    first = protocol_errors.install(logger)
    assert protocol_errors.install(logger) is first and logger.filters == [first]
