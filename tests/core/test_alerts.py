"""The pure rules of alerts: times, routes, groups, identity, entries and storm summaries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.alerts import (
    ALERTMANAGER,
    Alert,
    AlertEntry,
    PayloadRefused,
    entry_text,
    incident_title,
    parse_time,
    read_payload,
    route_alert,
    storm_lines,
)
from bot.core.enums import EntryKind, Severity
from bot.core.playbooks import load_playbook
from bot.core.postmortem import PostmortemEntry, summarise_storms

PLAYBOOK = load_playbook(
    """
name: checkout
match: {services: [checkout]}
alerts:
  - match: {alertname: HighErrorRate, service: "checkout|payments"}
    severity: {from_label: severity, map: {critical: sev1, warning: sev3}, default: sev2}
    group_by: [alertname, service]
  - match: {alertname: "Disk.*", env: prod}
    severity: sev3
    declare: ask
""",
    filename="checkout.yaml",
)
OTHER = load_playbook(
    """
name: zzz
match: {services: [zzz]}
alerts:
  - match: {alertname: HighErrorRate}
""",
    filename="zzz.yaml",
)


def _alert(**labels: str) -> Alert:
    return Alert(
        source=ALERTMANAGER,
        status="firing",
        labels=labels,
        annotations={"summary": "Error rate above 5%"},
        starts_at=datetime(2026, 11, 25, 18, 15, tzinfo=UTC),
        ends_at=None,
        sender_group='{}:{alertname="HighErrorRate"}',
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T10:15:03Z", datetime(2026, 11, 25, 10, 15, 3, tzinfo=UTC)),
        ("2026-11-25T10:15:03.5Z", datetime(2026, 11, 25, 10, 15, 3, 500000, tzinfo=UTC)),
        (
            "2018-08-03T09:52:26.739266876+02:00",
            datetime(2018, 8, 3, 7, 52, 26, 739266, tzinfo=UTC),
        ),
        ("2026-11-25T10:15:03.123-08:00", datetime(2026, 11, 25, 18, 15, 3, 123000, tzinfo=UTC)),
        ("2026-11-25t10:15:03z", datetime(2026, 11, 25, 10, 15, 3, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_rfc3339_times_with_fractions_and_offsets(text: str, expected: datetime | None) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2026-11-25 10:15:03Z", "2026-11-25T10:15:03", "2026-11-25T10:15Z", "yesterday", ""],
)
def test_anything_else_is_not_a_time(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time(text)


def test_routes_match_exact_values_and_full_match_regexes() -> None:
    routed = route_alert([OTHER, PLAYBOOK], _alert(alertname="HighErrorRate", service="payments"))
    assert routed is not None
    assert (routed.playbook, routed.route, routed.severity) == ("checkout", 0, Severity.SEV2)
    # `checkout|payments` is a full match: `checkout-v2` is not checkout.
    other = route_alert([OTHER, PLAYBOOK], _alert(alertname="HighErrorRate", service="checkout-v2"))
    assert other is not None and other.playbook == "zzz"
    assert route_alert([PLAYBOOK], _alert(alertname="DiskFull", env="prod")) is not None
    assert route_alert([PLAYBOOK], _alert(alertname="DiskFull", env="staging")) is None
    assert route_alert([PLAYBOOK], _alert(alertname="DiskFull")) is None  # missing label: ""
    assert route_alert([PLAYBOOK], _alert(alertname="xDiskFull", env="prod")) is None


def test_severity_from_a_label_through_the_map() -> None:
    def severity(value: str) -> Severity:
        labels = {"alertname": "HighErrorRate", "service": "checkout", "severity": value}
        routed = route_alert([PLAYBOOK], _alert(**labels))
        assert routed is not None
        return routed.severity

    assert severity("critical") is Severity.SEV1
    assert severity("warning") is Severity.SEV3
    assert severity("info") is Severity.SEV2  # the default


def test_group_by_labels_or_the_senders_group() -> None:
    a = route_alert([PLAYBOOK], _alert(alertname="HighErrorRate", service="checkout", pod="a"))
    b = route_alert([PLAYBOOK], _alert(alertname="HighErrorRate", service="checkout", pod="b"))
    c = route_alert([PLAYBOOK], _alert(alertname="HighErrorRate", service="payments", pod="a"))
    assert a is not None and b is not None and c is not None
    assert a.group == b.group != c.group
    assert a.group_label == "alertname=HighErrorRate, service=checkout"
    disk = route_alert([PLAYBOOK], _alert(alertname="DiskFull", env="prod"))
    assert disk is not None and disk.group_label == "alertname=HighErrorRate"


def test_identity_is_fingerprint_else_labels_and_start() -> None:
    one = _alert(alertname="X", pod="a")
    assert one.identity == _alert(pod="a", alertname="X").identity
    assert one.identity != _alert(alertname="X", pod="b").identity
    later = Alert(**{**one.__dict__, "starts_at": one.starts_at + timedelta(seconds=1)})
    assert later.identity != one.identity
    printed = Alert(**{**one.__dict__, "fingerprint": "c6eadffa33fcdf37"})
    relabelled = Alert(**{**printed.__dict__, "labels": {"alertname": "Y"}})
    assert printed.identity == relabelled.identity


def test_an_entry_names_the_alert_what_tells_it_apart_and_its_summary() -> None:
    alert = _alert(alertname="HighErrorRate", service="checkout", instance="web-1")
    common = {"alertname": "HighErrorRate", "service": "checkout"}
    assert entry_text(alert, resolved=False, common=common) == (
        "HighErrorRate fired (instance=web-1): Error rate above 5%"
    )
    assert entry_text(alert, resolved=True, common=common).startswith("HighErrorRate resolved")
    assert incident_title(alert, "g") == "HighErrorRate: Error rate above 5%"


def test_payload_reading_refuses_with_reasons() -> None:
    body = {
        "version": "4",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "A"},
                "annotations": None,
                "startsAt": "2026-11-25T10:15:03.1+01:00",
                "endsAt": "2026-11-25T11:15:03Z",  # a time in the future while firing
            }
        ],
    }
    [alert] = read_payload(json.dumps(body).encode(), source=ALERTMANAGER)
    assert alert.ends_at is None and alert.annotations == {}
    body["alerts"][0]["labels"] = {"alertname": 5}  # type: ignore[index]
    [alert] = read_payload(json.dumps(body).encode(), source=ALERTMANAGER)
    assert alert.labels == {"alertname": "5"}
    with pytest.raises(PayloadRefused, match="alerts.0.startsAt"):
        body["alerts"][0]["startsAt"] = "soon"  # type: ignore[index]
        read_payload(json.dumps(body).encode(), source=ALERTMANAGER)


def test_storm_lines_count_per_group_and_minute() -> None:
    at = datetime(2026, 11, 25, 18, 15, 10, tzinfo=UTC)
    entries = [
        AlertEntry(at + timedelta(seconds=i), "g1", "HighErrorRate", False) for i in range(70)
    ]
    entries += [
        AlertEntry(at + timedelta(seconds=i), "g2", "DiskFull", i % 2 == 0) for i in range(4)
    ]
    lines = storm_lines(entries)
    assert [(line.group, line.fired, line.resolved) for line in lines] == [
        ("g1", 50, 0),
        ("g2", 2, 2),
        ("g1", 20, 0),
    ]
    assert lines[0].text() == "50 alerts fired in group g1 (HighErrorRate ×50)"


def test_the_postmortem_counts_storms_and_keeps_single_alerts() -> None:
    at = datetime(2026, 11, 25, 18, 15, 0, tzinfo=UTC)
    timeline = [
        PostmortemEntry(at, EntryKind.ALERT, "HighErrorRate fired (pod=a): x", group="g"),
        *(
            PostmortemEntry(
                at + timedelta(minutes=1, seconds=i),
                EntryKind.ALERT,
                f"Slow fired (p={i})",
                group="g",
            )
            for i in range(50)
        ),
        PostmortemEntry(at + timedelta(minutes=2), EntryKind.NOTE, "rolled back"),
    ]
    shown = summarise_storms(timeline)
    assert [e.text for e in shown] == [
        "HighErrorRate fired (pod=a): x",
        "50 alerts fired in group g (Slow ×50)",
        "rolled back",
    ]
    assert shown[1].occurred_at == at + timedelta(minutes=1)
