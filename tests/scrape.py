"""Reading /metrics as Prometheus does: the exposition parsed by prometheus-client's parser."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BotHarness


@dataclass(frozen=True)
class Scrape:
    """The metric families of one scrape, and a way to read one sample."""

    families: dict[str, Metric]

    def value(self, sample: str, **labels: str) -> float | None:
        """The value of the sample named so (`pages_total`, `slack_ack_seconds_count`)."""
        for family in self.families.values():
            for found in family.samples:
                if found.name == sample and found.labels == labels:
                    return float(found.value)
        return None

    def kind(self, family: str) -> str:
        return self.families[family].type


async def scrape(bot: BotHarness) -> Scrape:
    """GET /metrics, checked to be Prometheus text, parsed."""
    async with bot.http.get(bot.url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return Scrape({family.name: family for family in text_string_to_metric_families(text)})
