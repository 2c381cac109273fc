"""Alerts, pure: the senders' payloads, routes, groups, identity and what an entry says.

Alertmanager (payload version 4) and Grafana Alerting's webhook contact point send the same
shape: a group of alerts with labels, annotations and RFC 3339 times. Each alert is read into
an `Alert`; a playbook's route (bot.core.playbooks.AlertRoute) takes it, and the route's
`group_by` (or the sender's own groupKey) names the group whose one incident it belongs to.

Decisions the module follows:
- The first route that matches wins, playbooks taken by name (routes claimed twice are a
  `playbooks check` error, so the order only matters for overlapping regexes).
- An alert is the same alert when its fingerprint (else its sorted labels) and its startsAt
  are the same: `identity`.
- While firing, `endsAt` is the zero time or a time in the future: only a resolved alert has
  an end.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bot.core.enums import Severity
from bot.core.playbooks import AlertRoute, Playbook

ALERTMANAGER = "alertmanager"
GRAFANA = "grafana"
SOURCE_NAMES = {ALERTMANAGER: "Alertmanager", GRAFANA: "Grafana"}

FIRING = "firing"
RESOLVED = "resolved"

MAX_LABELS_SHOWN = 6
MAX_VALUE_SHOWN = 80
MAX_SUMMARY_SHOWN = 300

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time (sub-second precision, `Z` or an offset) in UTC; None for the zero time."""
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 time as a string")
    found = _RFC3339.match(value.strip())
    if found is None:
        raise ValueError(f"{value[:40]!r} is not an RFC 3339 time (e.g. 2026-11-25T10:15:03.5Z)")
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    if (year, month, day) == ("0001", "01", "01") and (hour, minute, second) == ("00", "00", "00"):
        return None  # Go's zero time: "no end yet"
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        naive = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro
        )
    except ValueError as exc:
        raise ValueError(f"{value[:40]!r} is not a valid time ({exc})") from None
    return (naive - offset).replace(tzinfo=UTC)


def _time(value: object) -> datetime | None:
    return parse_time(value)


def _text_map(value: object) -> object:
    # Labels and annotations are string maps; `null` (Grafana sends it) is an empty one.
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {
            _clean(str(k)): _clean(v if isinstance(v, str) else json.dumps(v))
            for k, v in value.items()
        }
    return value


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; nobody means one in a label.
    return text.replace("\x00", "")


Time = Annotated[datetime | None, BeforeValidator(_time)]
TextMap = Annotated[dict[str, str], BeforeValidator(_text_map)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class AlertIn(_Payload):
    """One alert as Alertmanager or Grafana sends it."""

    status: Literal["firing", "resolved"]
    labels: TextMap
    annotations: TextMap = Field(default_factory=dict)
    starts_at: Time = Field(alias="startsAt")
    ends_at: Time = Field(default=None, alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL")
    fingerprint: str | None = None
    # Grafana only.
    dashboard_url: str | None = Field(default=None, alias="dashboardURL")
    panel_url: str | None = Field(default=None, alias="panelURL")
    silence_url: str | None = Field(default=None, alias="silenceURL")


class PayloadIn(_Payload):
    """A webhook delivery: Alertmanager's version 4, or Grafana's contact point (version 1)."""

    version: str | None = None
    group_key: str | None = Field(default=None, alias="groupKey")
    status: Literal["firing", "resolved"] | None = None
    receiver: str | None = None
    group_labels: TextMap = Field(default_factory=dict, alias="groupLabels")
    common_labels: TextMap = Field(default_factory=dict, alias="commonLabels")
    external_url: str | None = Field(default=None, alias="externalURL")
    alerts: list[AlertIn]


class PayloadRefused(ValueError):
    """A payload that is not what the sender documents; the message says why."""


def read_payload(body: bytes, *, source: str) -> list[Alert]:
    """The alerts of a delivery, or PayloadRefused naming the first thing that is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PayloadRefused("the body is not JSON") from None
    if not isinstance(data, dict):
        raise PayloadRefused("the body is not a JSON object")
    if source == ALERTMANAGER and data.get("version") not in ("4", None):
        raise PayloadRefused(f"payload version {data.get('version')!r} is not 4")
    try:
        payload = PayloadIn.model_validate(data)
    except ValidationError as exc:
        raise PayloadRefused(_reason(exc)) from None
    alerts = []
    for index, one in enumerate(payload.alerts):
        if one.starts_at is None:
            raise PayloadRefused(f"alerts[{index}].startsAt is the zero time")
        if one.status == RESOLVED and one.ends_at is None:
            raise PayloadRefused(f"alerts[{index}] is resolved but has no endsAt")
        alerts.append(
            Alert(
                source=source,
                status=one.status,
                labels=dict(one.labels),
                annotations=dict(one.annotations),
                starts_at=one.starts_at,
                ends_at=one.ends_at if one.status == RESOLVED else None,
                fingerprint=one.fingerprint or None,
                sender_group=payload.group_key or _labels_key(payload.group_labels),
                links=_links(one),
            )
        )
    return alerts


def _reason(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _links(one: AlertIn) -> dict[str, str]:
    found = {
        "Source": one.generator_url,
        "Dashboard": one.dashboard_url,
        "Panel": one.panel_url,
        "Silence": one.silence_url,
    }
    return {
        name: url for name, url in found.items() if url and url.startswith(("http://", "https://"))
    }


def _labels_key(labels: Mapping[str, str]) -> str:
    return json.dumps(sorted(labels.items()), separators=(",", ":"))


@dataclass(frozen=True)
class Alert:
    """One alert as the bot keeps it (times in UTC)."""

    source: str
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str | None = None
    sender_group: str = ""
    links: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.labels.get("alertname") or "Alert"

    @property
    def summary(self) -> str:
        return (
            self.annotations.get("summary")
            or self.annotations.get("description")
            or self.annotations.get("message")
            or ""
        )

    @property
    def identity(self) -> str:
        """The same alert re-sent, re-templated or from a second sender has the same identity."""
        who = self.fingerprint or _labels_key(self.labels)
        return hashlib.sha256(f"{who}|{self.starts_at.isoformat()}".encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "fingerprint": self.fingerprint,
            "sender_group": self.sender_group,
            "links": dict(self.links),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        ends = data.get("ends_at")
        return cls(
            source=str(data["source"]),
            status=str(data["status"]),
            labels=dict(data["labels"]),
            annotations=dict(data["annotations"]),
            starts_at=datetime.fromisoformat(data["starts_at"]),
            ends_at=datetime.fromisoformat(ends) if ends else None,
            fingerprint=data.get("fingerprint"),
            sender_group=str(data.get("sender_group", "")),
            links=dict(data.get("links") or {}),
        )


# --- routes and groups ------------------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    """An alert and the route that took it."""

    alert: Alert
    playbook: str
    route: int
    severity: Severity
    declare: str
    group: str  # the group's key
    group_label: str  # the group as people read it


def route_alert(playbooks: Sequence[Playbook], alert: Alert) -> Routed | None:
    """The first route (playbooks by name) whose matchers the alert's labels meet."""
    for playbook in sorted(playbooks, key=lambda p: p.name):
        for index, route in enumerate(playbook.alerts):
            if route.matches(alert.labels):
                key, label = group_of(route, alert, playbook=playbook.name, index=index)
                return Routed(
                    alert=alert,
                    playbook=playbook.name,
                    route=index,
                    severity=route.severity.for_labels(alert.labels),
                    declare=route.declare,
                    group=key,
                    group_label=label,
                )
    return None


def group_of(route: AlertRoute, alert: Alert, *, playbook: str, index: int) -> tuple[str, str]:
    """The group's key (hashed, stable) and label: `group_by` labels, else the sender's group."""
    if route.group_by is not None:
        values = [(name, alert.labels.get(name, "")) for name in route.group_by]
        label = ", ".join(f"{name}={value}" for name, value in values) or "all alerts"
        raw = f"{playbook}/{index}|{_labels_key(dict(values))}"
    else:
        label = _sender_group_label(alert.sender_group) or alert.name
        raw = f"{playbook}/{index}|{alert.source}|{alert.sender_group}"
    return hashlib.sha256(raw.encode()).hexdigest(), label[:200]


_GROUP_KEY_PART = re.compile(r"\{([^{}]*)\}$")


def _sender_group_label(group_key: str) -> str:
    """`{}/{severity="critical"}:{alertname="X"}` → `alertname=X` (the group's own labels)."""
    found = _GROUP_KEY_PART.search(group_key)
    if found is None:
        return group_key
    return ", ".join(part.replace('"', "").strip() for part in found.group(1).split(","))


def distinguishing_labels(
    alert: Alert, group_label_names: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """The labels that tell the alert apart within its group (not alertname, not grouped on)."""
    left_out = {"alertname", *group_label_names}
    return [(name, value) for name, value in sorted(alert.labels.items()) if name not in left_out]


def _shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def entry_text(alert: Alert, *, resolved: bool, common: Mapping[str, str] | None = None) -> str:
    """`HighErrorRate fired (instance=web-1, pod=a): Error rate above 5%` for the timeline.

    `common` are labels every alert of the group shares; they do not tell it apart.
    """
    shared = {name for name, value in (common or {}).items() if alert.labels.get(name) == value}
    labels = distinguishing_labels(alert, shared)
    shown = [f"{name}={_shorten(value, MAX_VALUE_SHOWN)}" for name, value in labels]
    if len(shown) > MAX_LABELS_SHOWN:
        shown = [*shown[:MAX_LABELS_SHOWN], f"+{len(shown) - MAX_LABELS_SHOWN} more"]
    text = f"{_shorten(alert.name, MAX_VALUE_SHOWN)} {'resolved' if resolved else 'fired'}"
    if shown:
        text += f" ({', '.join(shown)})"
    summary = _shorten(alert.summary, MAX_SUMMARY_SHOWN)
    return f"{text}: {summary}" if summary else text


def incident_title(alert: Alert, group_label: str) -> str:
    """The title of an incident an alert declares."""
    summary = _shorten(alert.summary, 150)
    title = f"{alert.name}: {summary}" if summary else f"{alert.name} ({group_label})"
    return _shorten(title, 200)


# --- storms in the postmortem -----------------------------------------------------------------


@dataclass(frozen=True)
class StormLine:
    """Alerts of one group within one minute, counted."""

    at: datetime  # the first of them
    group: str
    fired: int
    resolved: int
    names: tuple[tuple[str, int], ...]  # alertname and how many, most first

    def text(self) -> str:
        counts = []
        if self.fired:
            counts.append(f"{self.fired:,} alert{'s' if self.fired != 1 else ''} fired")
        if self.resolved:
            counts.append(f"{self.resolved:,} resolved")
        names = ", ".join(f"{name} ×{count:,}" for name, count in self.names[:5])
        if len(self.names) > 5:
            names += f", {len(self.names) - 5} more"
        return f"{' and '.join(counts)} in group {self.group} ({names})"


@dataclass(frozen=True)
class AlertEntry:
    """An alert's timeline entry, for the summary."""

    occurred_at: datetime
    group: str
    name: str
    resolved: bool


def storm_lines(entries: Iterable[AlertEntry]) -> list[StormLine]:
    """One line per group and minute, with counts, in time order."""
    buckets: dict[tuple[str, datetime], list[AlertEntry]] = {}
    for entry in entries:
        minute = entry.occurred_at.astimezone(UTC).replace(second=0, microsecond=0)
        buckets.setdefault((entry.group, minute), []).append(entry)
    lines = []
    for (group, _minute), bucket in buckets.items():
        names = Counter(entry.name for entry in bucket)
        lines.append(
            StormLine(
                at=min(entry.occurred_at for entry in bucket),
                group=group,
                fired=sum(1 for entry in bucket if not entry.resolved),
                resolved=sum(1 for entry in bucket if entry.resolved),
                names=tuple(sorted(names.items(), key=lambda item: (-item[1], item[0]))),
            )
        )
    return sorted(lines, key=lambda line: (line.at, line.group))
