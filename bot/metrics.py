"""A few counters and gauges, served at GET /metrics in Prometheus' text format."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    """In-process counters; one instance is made by the wiring and passed down."""

    counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=Counter)
    help: dict[str, str] = field(default_factory=dict)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add to a counter."""
        self.counters[(name, tuple(sorted(labels.items())))] += int(amount)

    def describe(self, name: str, text: str) -> None:
        self.help[name] = text

    def render(self) -> str:
        """The exposition text."""
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in sorted(self.counters.items()):
            if name not in seen:
                seen.add(name)
                if name in self.help:
                    lines.append(f"# HELP {name} {self.help[name]}")
                lines.append(f"# TYPE {name} counter")
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
