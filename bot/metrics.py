"""Counters, gauges and histograms, served at GET /metrics in Prometheus' exposition format.

One `Metrics` (one prometheus-client registry) per `Services`, so tests can build many. Call
sites name a metric and its labels (`metrics.inc("pages_total", provider="pagerduty",
outcome="sent")`): the metrics below are declared with help text; any other name gets a counter
(`inc`), gauge (`set`) or histogram (`observe`) made on first use with the label names given.
A metric used with the wrong labels or kind is a programming mistake, but never worth a failed
request: it is logged once as a warning and the value is recorded as well as it can be.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

Kind = Literal["counter", "gauge", "histogram"]
Metric = Counter | Gauge | Histogram

# Slack wants an answer within 3 s; the interesting part is well below that.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
# From the first page to the first acknowledgement: minutes, sometimes hours.
TTA_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0)


@dataclass(frozen=True)
class Spec:
    """A metric declared up front: its kind, help text and label names."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


DECLARED: tuple[Spec, ...] = (
    Spec("incidents_open", "gauge", "Incidents not resolved, by severity.", ("severity",)),
    Spec(
        "incidents_declared_total",
        "counter",
        "Incidents declared, by where (command, form, shortcut, alert).",
        ("source",),
    ),
    Spec("pages_total", "counter", "Pages sent or failed, by provider.", ("provider", "outcome")),
    Spec(
        "pages_acknowledged_total",
        "counter",
        "Pages acknowledged, by the provider of the page.",
        ("provider",),
    ),
    Spec(
        "time_to_acknowledge_seconds",
        "histogram",
        "From an incident's first page to its acknowledgement.",
        buckets=TTA_BUCKETS,
    ),
    Spec("slack_api_calls_total", "counter", "Slack Web API calls, by method.", ("method",)),
    Spec(
        "slack_api_errors_total",
        "counter",
        "Slack Web API calls that failed, by method and Slack's error (or `connection`).",
        ("method", "error"),
    ),
    Spec(
        "slack_ack_seconds",
        "histogram",
        "Time to answer a request at /slack/events (Slack gives up after 3 s).",
        buckets=ACK_BUCKETS,
    ),
    Spec(
        "webhook_requests_total",
        "counter",
        "Webhook requests, by endpoint and outcome.",
        ("endpoint", "outcome"),
    ),
    Spec("alerts_received_total", "counter", "Alerts received, by source.", ("source",)),
    Spec(
        "alerts_deduplicated_total",
        "counter",
        "Alerts already seen (re-sent or from a second sender), by source.",
        ("source",),
    ),
    Spec("alerts_unrouted_total", "counter", "Alerts no playbook route matched.", ("source",)),
    Spec(
        "tracker_calls_total",
        "counter",
        "Calls to follow-up trackers, by tracker and outcome.",
        ("tracker", "outcome"),
    ),
    Spec(
        "oncall_lookups_total",
        "counter",
        "Who-is-on-call lookups, by provider and outcome.",
        ("provider", "outcome"),
    ),
    Spec("timers_pending", "gauge", "Timers scheduled and not yet run."),
    Spec("timers_fired_total", "counter", "Timers that fired, by kind.", ("kind",)),
    Spec(
        "side_effects_total",
        "counter",
        "Side effects run from the outbox, by kind and outcome (done, retry, failed).",
        ("kind", "outcome"),
    ),
    Spec(
        "http_requests_total", "counter", "HTTP requests, by route and status.", ("path", "status")
    ),
    Spec(
        "http_request_milliseconds_total",
        "counter",
        "Milliseconds spent answering HTTP requests, by route.",
        ("path",),
    ),
)


class Metrics:
    """The process's metrics in their own registry; made by the wiring and passed down."""

    def __init__(self, declared: Iterable[Spec] = DECLARED) -> None:
        self.registry = CollectorRegistry()
        # By name without `_total`: `inc("x")` and `inc("x_total")` are the same counter.
        self._metrics: dict[str, tuple[Kind, Metric | None, tuple[str, ...]]] = {}
        self._warned: set[tuple[str, str]] = set()
        for spec in declared:
            self._create(spec)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add to a counter (or a gauge)."""
        child = self._child(name, "counter", labels, accepts=(Counter, Gauge), what="inc()")
        if isinstance(child, Counter) and amount < 0:
            self._warn(name, "a counter cannot go down")
        elif isinstance(child, Counter | Gauge):
            child.inc(amount)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record a value in a histogram."""
        child = self._child(name, "histogram", labels, accepts=(Histogram,), what="observe()")
        if isinstance(child, Histogram):
            child.observe(value)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        child = self._child(name, "gauge", labels, accepts=(Gauge,), what="set()")
        if isinstance(child, Gauge):
            child.set(value)

    def value(self, name: str, **labels: str) -> float | None:
        """The current value of one sample (`pages_total`, `slack_ack_seconds_count`), or None."""
        return self.registry.get_sample_value(name, labels)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (OpenMetrics when the scraper asks for it) and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    # -- internals ----------------------------------------------------------------------------

    def _create(self, spec: Spec) -> None:
        key = spec.name.removesuffix("_total")
        documentation = spec.help or spec.name.replace("_", " ")
        metric: Metric
        # prometheus-client names a counter without its `_total` and adds it back on exposing.
        if spec.kind == "counter":
            metric = Counter(key, documentation, spec.labels, registry=self.registry)
        elif spec.kind == "gauge":
            metric = Gauge(spec.name, documentation, spec.labels, registry=self.registry)
        else:
            metric = Histogram(
                spec.name,
                documentation,
                spec.labels,
                registry=self.registry,
                buckets=spec.buckets or Histogram.DEFAULT_BUCKETS,
            )
        self._metrics[key] = (spec.kind, metric, spec.labels)

    def _child(
        self,
        name: str,
        kind: Kind,
        labels: Mapping[str, str],
        *,
        accepts: tuple[type[Metric], ...],
        what: str,
    ) -> Metric | None:
        """The labelled child of metric `name` (made as a `kind` on first use), if it fits."""
        key = name.removesuffix("_total")
        if key not in self._metrics:
            try:
                self._create(Spec(name, kind, "", tuple(sorted(labels))))
            except ValueError as exc:  # a name prometheus refuses, or one clashing with another
                self._warn(name, f"cannot be registered ({exc})")
                self._metrics[key] = (kind, None, ())
        found_kind, metric, expected = self._metrics[key]
        if metric is None:
            return None
        if not isinstance(metric, accepts):
            self._warn(name, f"{what} on a {found_kind}")
            return None
        if set(labels) != set(expected):
            self._warn(name, f"labels {sorted(labels)} instead of {list(expected)}")
        if not expected:
            return metric
        return metric.labels(*(str(labels.get(label, "")) for label in expected))

    def _warn(self, name: str, problem: str) -> None:
        if (name, problem) not in self._warned:
            self._warned.add((name, problem))
            log.warning("metric %s: %s", name, problem)
