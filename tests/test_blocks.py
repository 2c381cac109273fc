"""Block Kit builders: every payload passes slack_sdk's validation and Slack's documented limits."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.core.enums import EntryKind, Severity, Status
from bot.slack import blocks
from bot.slack.blocks import (
    CardData,
    DeclareForm,
    ListedIncident,
    TimelineLine,
    card_fallback_text,
    card_ref_from_block_id,
    declare_modal,
    escape_mrkdwn,
    incident_list_blocks,
    page_blocks,
    page_ref_from_block_id,
    parse_declare_submission,
    summary_card,
    timeline_blocks,
    topic,
    truncate,
    validation_errors,
)
from bot.slack.ids import ActionId, BlockId, CallbackId, CommandName

TZ = ZoneInfo("America/Los_Angeles")
DECLARED = datetime(2026, 11, 25, 18, 25, tzinfo=UTC)  # 10:25 AM PST
HOSTILE = "مرحبا עולם 🔥👩‍💻 <!channel> <!here> & <script> *bold* "


def card(**changes: Any) -> CardData:
    values: dict[str, Any] = {
        "ref": "INC-7",
        "title": "Checkout database is down",
        "severity": Severity.SEV1,
        "status": Status.INVESTIGATING,
        "private": False,
        "roles": {"commander": ["U1"]},
        "declared_by": "U9",
        "declared_at": DECLARED,
        "started_at": None,
        "resolved_at": None,
        "channel_id": "C123",
    }
    values.update(changes)
    return CardData(**values)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a payload."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def texts(payload: Any) -> list[str]:
    return [node["text"] for node in walk(payload) if isinstance(node.get("text"), str)]


def assert_valid_blocks(payload: Sequence[dict[str, Any]], *, max_blocks: int = 50) -> None:
    """slack_sdk's validation, a lossless round trip, and the limits slack_sdk does not check."""
    assert 1 <= len(payload) <= max_blocks
    for raw in payload:
        parsed = Block.parse(raw)
        assert parsed is not None, raw
        parsed.validate_json()
        assert parsed.to_dict() == raw  # no key slack_sdk does not know (a typo) was dropped
        if raw["type"] == "section":
            assert len(raw.get("fields", ())) <= 10
            for field in raw.get("fields", ()):
                assert len(field["text"]) <= 2000
            if "text" in raw:
                assert len(raw["text"]["text"]) <= 3000
        if raw["type"] == "header":
            assert len(raw["text"]["text"]) <= 150
        if raw["type"] == "context":
            assert 1 <= len(raw["elements"]) <= 10
            for element in raw["elements"]:
                assert len(element["text"]) <= 3000
    for node in walk(list(payload)):
        if node.get("type") == "button":
            assert len(node["text"]["text"]) <= 75
        if "options" in node:
            assert len(node["options"]) <= 100
            for option in node["options"]:
                assert len(option["text"]["text"]) <= 75
                assert len(option["value"]) <= 150
    json.dumps(payload)  # JSON-ready


def assert_valid_view(view: dict[str, Any]) -> None:
    parsed = View(**view)
    parsed.validate_json()
    assert len(view["title"]["text"]) <= 24
    assert len(view.get("private_metadata", "")) <= 3000
    assert_valid_blocks(view["blocks"], max_blocks=100)


def assert_no_ping(payload: Any) -> None:
    for text in texts(payload):
        for special in ("<!channel>", "<!here>", "<!everyone>", "<script>"):
            assert special not in text or not _is_mrkdwn_text(payload, text)


def _is_mrkdwn_text(payload: Any, text: str) -> bool:
    # plain_text is shown literally by Slack and never pings; only mrkdwn matters.
    return any(node.get("type") == "mrkdwn" and node.get("text") == text for node in walk(payload))


# --- helpers -------------------------------------------------------------------------------------


def test_truncate_cuts_with_an_ellipsis_only_when_needed() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("x" * 10, 10) == "x" * 10
    assert truncate("x" * 11, 10) == "x" * 9 + "…"
    assert len(truncate("🔥" * 500, 150)) == 150
    with pytest.raises(ValueError):
        truncate("x", 0)


def test_escape_mrkdwn_escapes_broadcasts_but_keeps_mentions_and_links() -> None:
    assert escape_mrkdwn("a & b <!channel> <!here>") == "a &amp; b &lt;!channel&gt; &lt;!here&gt;"
    assert escape_mrkdwn("x < y > z") == "x &lt; y &gt; z"
    kept = "<@U024BE7LH> in <#C123|ops> for <!subteam^S0DB|@dba> see <https://e.com/a?b=1|dash>"
    assert escape_mrkdwn(kept) == kept
    assert escape_mrkdwn("<https://example.com>") == "<https://example.com>"
    assert escape_mrkdwn("<javascript:alert(1)|x>") == "&lt;javascript:alert(1)|x&gt;"
    assert escape_mrkdwn("<!date^1392734382^{date}|x>").startswith("&lt;!date")


def test_escape_mrkdwn_does_not_escape_twice() -> None:
    once = escape_mrkdwn("a & <b>")
    assert escape_mrkdwn(once) == once  # Slack sends &amp; &lt; &gt; already escaped


# --- ids -----------------------------------------------------------------------------------------


def test_ids_are_stable_strings() -> None:
    assert CommandName.INCIDENT == "/incident"
    assert ActionId.STATUS_SELECT == "incident-status-select"
    assert ActionId.SEVERITY_SELECT == "incident-severity-select"
    assert ActionId.ACKNOWLEDGE_PAGE == "page-acknowledge"
    assert ActionId.ESCALATE_PAGE == "page-escalate"
    assert CallbackId.DECLARE_MODAL == "declare-incident-modal"
    assert CallbackId.DECLARE_SHORTCUT == "declare-incident-from-message"
    assert {block.value for block in BlockId} == {
        "title",
        "severity",
        "service",
        "impact",
        "private",
    }


# --- summary card --------------------------------------------------------------------------------


def test_summary_card_shows_the_incident_and_names_it_in_the_actions_block() -> None:
    payload = summary_card(card(), tz=TZ)
    assert_valid_blocks(payload)
    assert payload[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "INC-7: Checkout database is down", "emoji": True},
    }
    fields = [field["text"] for field in payload[1]["fields"]]
    assert "*Severity*\nSEV1" in fields
    assert "*Status*\nInvestigating" in fields
    assert "*Commander*\n<@U1>" in fields
    assert "*Started*\n2026-11-25 10:25 AM PST" in fields
    assert "*Declared by*\n<@U9>, 2026-11-25 10:25 AM PST" in fields
    assert not any(field.startswith("*Resolved*") for field in fields)
    actions = payload[-1]
    assert actions["type"] == "actions"
    assert card_ref_from_block_id(actions["block_id"]) == "INC-7"
    status_select, severity_select = actions["elements"]
    assert status_select["action_id"] == ActionId.STATUS_SELECT
    assert status_select["initial_option"]["value"] == "investigating"
    assert [option["value"] for option in status_select["options"]] == [s.value for s in Status]
    assert severity_select["action_id"] == ActionId.SEVERITY_SELECT
    assert severity_select["initial_option"]["value"] == "sev1"
    assert severity_select["initial_option"] in severity_select["options"]


def test_summary_card_of_a_resolved_private_incident() -> None:
    resolved = card(
        status=Status.RESOLVED,
        private=True,
        roles={},
        started_at=DECLARED - timedelta(hours=1),
        resolved_at=DECLARED + timedelta(hours=8),  # 6:25 PM PST
        playbook="database",
        links=[
            ("DB dashboard", "https://grafana.example.com/d/db"),
            ("bad", "javascript:x"),
            ("<@U1> | <!channel>", "https://e.com/x"),
        ],
    )
    payload = summary_card(resolved, tz=TZ)
    assert_valid_blocks(payload)
    fields = [field["text"] for field in payload[1]["fields"]]
    assert "*Commander*\n_unassigned_" in fields
    assert "*Started*\n2026-11-25 9:25 AM PST" in fields
    assert "*Resolved*\n2026-11-25 6:25 PM PST" in fields
    context = " ".join(texts(payload[2]))
    assert "🔒" in context
    assert "Playbook: *database*" in context
    assert "<https://grafana.example.com/d/db|DB dashboard>" in context
    assert "javascript" not in context
    assert "<https://e.com/x|&lt;@U1&gt; ¦ &lt;!channel&gt;>" in context


def test_card_ref_from_block_id_ignores_other_blocks() -> None:
    assert card_ref_from_block_id("incident-actions:INC-12") == "INC-12"
    assert card_ref_from_block_id("incident-actions:") is None
    assert card_ref_from_block_id("page-actions:INC-12") is None
    assert card_ref_from_block_id("title") is None


def test_summary_card_with_hostile_huge_input_stays_within_limits() -> None:
    roles = {f"role_{n}": [f"U{n:03d}{m:04d}" for m in range(400)] for n in range(30)}
    roles["commander"] = [f"U9{m:07d}" for m in range(500)]
    hostile = card(
        ref="INC-123456",
        title=HOSTILE * 20,
        roles=roles,
        declared_by="<!channel>",
        playbook=HOSTILE * 50,
        links=[(HOSTILE * 10, f"https://e.com/{n}") for n in range(200)],
        channel_id="not a channel",
    )
    payload = summary_card(hostile, tz=TZ)
    assert_valid_blocks(payload)
    assert_no_ping(payload)
    assert payload[0]["text"]["text"].endswith("…")
    assert len(payload[0]["text"]["text"]) == 150
    assert card_ref_from_block_id(payload[-1]["block_id"]) == "INC-123456"
    roles_text = payload[2]["text"]["text"]
    assert "*Role 0:*" in roles_text
    assert "more" in roles_text


def test_summary_card_fits_up_to_ten_fields_and_then_lists_roles_in_text() -> None:
    few = card(roles={"commander": ["U1"], "scribe": ["U2"], "comms": ["U3", "U4"]})
    payload = summary_card(few, tz=TZ)
    assert_valid_blocks(payload)
    fields = [field["text"] for field in payload[1]["fields"]]
    assert "*Scribe*\n<@U2>" in fields
    assert "*Comms*\n<@U3>, <@U4>" in fields
    many = card(roles={f"r{n}": ["U1"] for n in range(6)})
    payload = summary_card(many, tz=TZ)
    assert_valid_blocks(payload)
    assert payload[2]["type"] == "section"
    assert "*R5:* <@U1>" in payload[2]["text"]["text"]


def test_card_fallback_text_is_one_escaped_line() -> None:
    text = card_fallback_text(card(title="DB\ndown <!channel> & more"))
    assert text == "INC-7 · SEV1 · Investigating — DB down &lt;!channel&gt; &amp; more"
    long = card_fallback_text(card(title="&" * 10_000))
    assert len(long) <= 3000
    assert "\n" not in long
    assert long.endswith("…")
    assert not long.removesuffix("…").endswith(("&", "&a", "&am", "&amp"))


def test_topic() -> None:
    assert topic(card()) == "SEV1 · Investigating · IC <@U1>"
    assert topic(card(), commander_name="alice") == "SEV1 · Investigating · IC @alice"
    assert topic(card(roles={})) == "SEV1 · Investigating · IC unassigned"
    assert len(topic(card(), commander_name=HOSTILE * 100)) == 250


# --- declare modal -------------------------------------------------------------------------------


def test_declare_modal_with_services() -> None:
    view = declare_modal(
        title="Checkout slow",
        severity=Severity.SEV2,
        services=["postgres", "checkout-db", "postgres"],
        private_metadata='{"channel_id": "C1", "message_ts": "1.2"}',
    )
    assert_valid_view(view)
    assert view["callback_id"] == CallbackId.DECLARE_MODAL
    assert view["title"]["text"] == "Declare incident"
    assert view["submit"]["text"] == "Declare"
    assert view["close"]["text"] == "Cancel"
    assert view["private_metadata"] == '{"channel_id": "C1", "message_ts": "1.2"}'
    by_id = {block["block_id"]: block for block in view["blocks"]}
    assert list(by_id) == ["title", "severity", "service", "impact", "private"]
    for block_id, block in by_id.items():
        assert block["element"]["action_id"] == block_id
    assert by_id["title"]["element"]["initial_value"] == "Checkout slow"
    assert by_id["title"]["element"]["max_length"] == 200
    assert by_id["title"]["optional"] is False
    assert by_id["severity"]["element"]["initial_option"]["value"] == "sev2"
    service = by_id["service"]["element"]
    assert service["type"] == "static_select"
    assert [option["value"] for option in service["options"]] == ["postgres", "checkout-db"]
    assert by_id["impact"]["element"]["multiline"] is True
    assert by_id["impact"]["optional"] is True
    assert by_id["private"]["element"]["type"] == "checkboxes"
    assert by_id["private"]["optional"] is True


def test_declare_modal_defaults() -> None:
    view = declare_modal()
    assert_valid_view(view)
    by_id = {block["block_id"]: block for block in view["blocks"]}
    assert "initial_value" not in by_id["title"]["element"]
    assert by_id["severity"]["element"]["initial_option"]["value"] == "sev3"
    assert by_id["service"]["element"]["type"] == "plain_text_input"
    assert by_id["service"]["optional"] is True
    assert "private_metadata" not in view


def test_declare_modal_with_hostile_input() -> None:
    too_many = [f"service-{n}" for n in range(300)]
    view = declare_modal(title=HOSTILE * 40, services=too_many, private_metadata="x" * 3000)
    assert_valid_view(view)
    by_id = {block["block_id"]: block for block in view["blocks"]}
    assert len(by_id["title"]["element"]["initial_value"]) == 200
    assert by_id["service"]["element"]["type"] == "plain_text_input"
    long_names = declare_modal(services=["s" * 100, "t" * 200])
    assert_valid_view(long_names)
    labelled = declare_modal(services=["s" * 100, "e" * 5])
    assert_valid_view(labelled)
    options = labelled["blocks"][2]["element"]["options"]
    assert options[0]["value"] == "s" * 100
    assert len(options[0]["text"]["text"]) == 75


def test_declare_modal_refuses_oversized_private_metadata() -> None:
    with pytest.raises(ValueError, match="3000"):
        declare_modal(private_metadata="x" * 3001)


def submitted_values(
    *,
    title: str | None = "Checkout 500s",
    severity: str | None = "sev2",
    service: dict[str, Any] | None = None,
    impact: str | None = "Customers cannot pay",
    private: bool = True,
) -> dict[str, Any]:
    """`view.state.values` shaped like Slack's view_submission payload."""
    option = {
        "text": {"type": "plain_text", "text": "Private incident", "emoji": True},
        "value": "private",
    }
    return {
        "title": {"title": {"type": "plain_text_input", "value": title}},
        "severity": {
            "severity": {
                "type": "static_select",
                "selected_option": (
                    {
                        "text": {"type": "plain_text", "text": "SEV2", "emoji": True},
                        "value": severity,
                    }
                    if severity
                    else None
                ),
            }
        },
        "service": {
            "service": service
            or {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": "postgres", "emoji": True},
                    "value": "postgres",
                },
            }
        },
        "impact": {"impact": {"type": "plain_text_input", "value": impact}},
        "private": {
            "private": {"type": "checkboxes", "selected_options": [option] if private else []}
        },
    }


def test_parse_declare_submission_reads_a_view_submission_payload() -> None:
    payload = {
        "type": "view_submission",
        "team": {"id": "T111", "domain": "workspace-domain"},
        "user": {"id": "W111", "username": "primary-owner", "team_id": "T111"},
        "api_app_id": "A111",
        "trigger_id": "111.222.valid",
        "view": {
            "id": "V111",
            "type": "modal",
            "callback_id": "declare-incident-modal",
            "private_metadata": "",
            "state": {"values": submitted_values()},
            "hash": "1596530361.3wRYuk3R",
        },
        "response_urls": [],
    }
    form = parse_declare_submission(payload["view"]["state"]["values"])
    assert form == DeclareForm(
        title="Checkout 500s",
        severity=Severity.SEV2,
        service="postgres",
        impact="Customers cannot pay",
        private=True,
    )
    assert validation_errors(form) == {}


def test_parse_declare_submission_with_empty_optional_inputs() -> None:
    values = submitted_values(
        title="  Checkout\n500s ",
        impact=None,
        private=False,
        service={"type": "plain_text_input", "value": "   "},
    )
    form = parse_declare_submission(values)
    assert form.title == "Checkout 500s"
    assert form.service is None
    assert form.impact is None
    assert form.private is False
    text_service = submitted_values(service={"type": "plain_text_input", "value": " checkout "})
    assert parse_declare_submission(text_service).service == "checkout"
    no_select = submitted_values(service={"type": "static_select", "selected_option": None})
    assert parse_declare_submission(no_select).service is None


def test_parse_declare_submission_tolerates_missing_blocks() -> None:
    form = parse_declare_submission({"title": {"title": {"type": "plain_text_input"}}})
    assert form == DeclareForm(
        title="", severity=Severity.SEV3, service=None, impact=None, private=False
    )


def test_validation_errors_are_keyed_by_block_id() -> None:
    empty = parse_declare_submission(submitted_values(title="   "))
    assert validation_errors(empty) == {"title": "Give the incident a title."}
    missing = parse_declare_submission(submitted_values(title=None))
    assert validation_errors(missing) == {"title": "Give the incident a title."}
    long = parse_declare_submission(submitted_values(title="x" * 201))
    assert set(validation_errors(long)) == {"title"}


def test_modal_round_trip_every_block_id_is_read() -> None:
    view = declare_modal()
    ids_in_view = {block["block_id"] for block in view["blocks"]}
    assert ids_in_view == set(submitted_values())


# --- timeline ------------------------------------------------------------------------------------


def line(minutes: int, text: str, **changes: Any) -> TimelineLine:
    values: dict[str, Any] = {
        "occurred_at": DECLARED + timedelta(minutes=minutes),
        "kind": EntryKind.NOTE,
        "text": text,
        "author": "U1",
    }
    values.update(changes)
    return TimelineLine(**values)


def test_timeline_lines() -> None:
    lines = [
        line(0, "Declared", kind=EntryKind.DECLARED, author=None),
        line(5, "Cache hit rate <50% & falling", permalink="https://x.slack.com/archives/C1/p1"),
        line(60 * 24, "Next day"),
    ]
    payload = timeline_blocks("INC-7", lines, tz=TZ)
    assert_valid_blocks(payload)
    assert payload[0]["type"] == "header"
    assert "INC-7" in payload[0]["text"]["text"]
    assert payload[1]["text"]["text"].split("\n") == [
        "• 10:25 AM PST — Declared",
        "• 10:30 AM PST — Cache hit rate &lt;50% &amp; falling (<@U1>)"
        " <https://x.slack.com/archives/C1/p1|📌>",
        "• 2026-11-26 10:25 AM PST — Next day (<@U1>)",
    ]


def test_empty_timeline() -> None:
    payload = timeline_blocks("INC-7", [], tz=TZ)
    assert_valid_blocks(payload)
    assert "No timeline entries yet." in texts(payload)


def test_timeline_escapes_broadcasts_in_notes() -> None:
    payload = timeline_blocks("INC-7", [line(1, "<!channel> wake up <@U2>")], tz=TZ)
    assert_valid_blocks(payload)
    assert_no_ping(payload)
    assert "&lt;!channel&gt; wake up <@U2>" in payload[1]["text"]["text"]


def test_huge_timeline_keeps_the_latest_entries_and_says_what_was_left_out() -> None:
    lines = [line(n, f"note {n} " + HOSTILE) for n in range(2000)]
    payload = timeline_blocks("INC-7", lines, tz=TZ)
    assert_valid_blocks(payload)
    assert_no_ping(payload)
    assert len(payload) == 50
    shown = [row for block in payload[1:-1] for row in block["text"]["text"].split("\n")]
    assert shown[-1].startswith("• 2026-11-26 7:44 PM PST — note 1999 ")
    numbers = [int(row.split("note ")[1].split()[0]) for row in shown]
    assert numbers == list(range(2000 - len(shown), 2000))
    note = payload[-1]
    assert note["type"] == "context"
    assert note["elements"][0]["text"] == (
        f"{2000 - len(shown):,} earlier entries of 2,000 not shown here. "
        "Use `/incident postmortem` for the full document."
    )


def test_timeline_with_ten_thousand_character_notes() -> None:
    lines = [line(n, "&<>" * 3_334, author="<!here>") for n in range(200)]
    payload = timeline_blocks("INC-" + "9" * 200, lines, tz=TZ)
    assert_valid_blocks(payload)
    assert_no_ping(payload)
    assert len(payload[0]["text"]["text"]) <= 150
    for block in payload[1:-1]:
        for row in block["text"]["text"].split("\n"):
            assert row.endswith("… (&lt;!here&gt;)")
            assert len(row) <= 1000
            assert "&am…" not in row and "&l…" not in row and "&g…" not in row


def test_timeline_that_just_fits_has_no_note() -> None:
    lines = [line(n, "x") for n in range(100)]
    payload = timeline_blocks("INC-7", lines, tz=TZ)
    assert_valid_blocks(payload)
    assert len(payload) == 2
    assert len(payload[1]["text"]["text"].split("\n")) == 100


# --- incident list -------------------------------------------------------------------------------


def listed(n: int, **changes: Any) -> ListedIncident:
    values: dict[str, Any] = {
        "ref": f"INC-{n}",
        "title": f"Incident {n}",
        "severity": Severity.SEV1,
        "status": Status.INVESTIGATING,
        "channel_id": "C123",
        "declared_at": DECLARED,
        "commander": "U1",
    }
    values.update(changes)
    return ListedIncident(**values)


def test_no_open_incidents() -> None:
    payload = incident_list_blocks([], tz=TZ)
    assert_valid_blocks(payload)
    assert texts(payload) == ["No open incidents."]


def test_incident_list() -> None:
    payload = incident_list_blocks(
        [listed(7), listed(8, commander=None, channel_id=None, title="a < b")], tz=TZ
    )
    assert_valid_blocks(payload)
    assert payload[0]["text"]["text"] == (
        "*INC-7* SEV1 · Investigating — Incident 7 — <#C123>\n"
        "IC <@U1> · declared 2026-11-25 10:25 AM PST"
    )
    assert payload[1]["text"]["text"].startswith("*INC-8* SEV1 · Investigating — a &lt; b\n")
    assert "IC _unassigned_" in payload[1]["text"]["text"]


def test_long_incident_list_is_capped() -> None:
    items = [listed(n, title=HOSTILE * 50) for n in range(300)]
    payload = incident_list_blocks(items, tz=TZ)
    assert_valid_blocks(payload)
    assert_no_ping(payload)
    assert len(payload) == 50
    assert payload[-1]["type"] == "context"
    assert payload[-1]["elements"][0]["text"] == "… and 251 more open incidents."
    exactly = incident_list_blocks([listed(n) for n in range(50)], tz=TZ)
    assert_valid_blocks(exactly)
    assert all(block["type"] == "section" for block in exactly)


# --- pages ---------------------------------------------------------------------------------------


def test_page_blocks() -> None:
    payload = page_blocks(
        ref="INC-7",
        title="Checkout down",
        severity=Severity.SEV1,
        message="Please look at the DB\n<!channel>",
        page_id=42,
        channel_id="C123",
    )
    assert_valid_blocks(payload)
    assert_no_ping(payload)
    assert "*INC-7*" in payload[0]["text"]["text"]
    assert payload[1]["text"]["text"] == "> Please look at the DB\n> &lt;!channel&gt;"
    assert "<#C123>" in " ".join(texts(payload))
    actions = payload[-1]
    assert page_ref_from_block_id(actions["block_id"]) == "INC-7"
    assert card_ref_from_block_id(actions["block_id"]) is None
    acknowledge, escalate = actions["elements"]
    assert acknowledge["action_id"] == ActionId.ACKNOWLEDGE_PAGE
    assert acknowledge["value"] == "42"
    assert acknowledge["style"] == "primary"
    assert acknowledge["text"]["text"] == "Acknowledge"
    assert escalate["action_id"] == ActionId.ESCALATE_PAGE
    assert escalate["value"] == "42"


def test_page_blocks_with_hostile_input() -> None:
    payload = page_blocks(
        ref="INC-7",
        title=HOSTILE * 100,
        severity=Severity.SEV4,
        message=HOSTILE * 500,
        page_id=2**40,
        channel_id=None,
    )
    assert_valid_blocks(payload)
    assert_no_ping(payload)
    assert payload[-1]["elements"][0]["value"] == str(2**40)
    bare = page_blocks(
        ref="INC-7", title="t", severity=Severity.SEV2, message=None, page_id=1, channel_id=None
    )
    assert_valid_blocks(bare)
    assert [block["type"] for block in bare] == ["section", "actions"]


def test_page_fallback_text() -> None:
    text = blocks.page_fallback_text(ref="INC-7", title="<!channel> down", severity=Severity.SEV1)
    assert text == "🚨 You are paged for INC-7 (SEV1): &lt;!channel&gt; down"
