"""`playbooks check` on alert routes: bad regexes, unknown severities, routes claimed twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.playbook_check import check_directory, format_problem

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


async def test_every_alert_route_mistake_is_reported_with_file_line_and_fix() -> None:
    problems = await check_directory(Path("tests/playbooks_alerts_broken"), lookup_user=None)
    assert [format_problem(p) for p in problems] == [
        "tests/playbooks_alerts_broken/b_web.yaml:4: alerts[0].match: this route's matchers "
        "are already claimed by tests/playbooks_alerts_broken/a_api.yaml (alerts[0]) — keep "
        "the route in one playbook, or make the matchers differ",
        "tests/playbooks_alerts_broken/c_bad.yaml:4: alerts[0].match.alertname: `Disk(Full` is "
        "not a valid regular expression (missing ), unterminated subpattern) — fix the "
        "expression, or escape `|.*+?[(` with `\\` to match them literally",
        "tests/playbooks_alerts_broken/c_bad.yaml:6: alerts[1].severity.map.warning: `sev9` is "
        "not a severity — use sev1, sev2, sev3 or sev4 (sev1 is the most severe)",
        "tests/playbooks_alerts_broken/c_bad.yaml:8: alerts[2].severity.fixed: `sev7` is not a "
        "severity — use sev1, sev2, sev3 or sev4 (sev1 is the most severe)",
        "tests/playbooks_alerts_broken/c_bad.yaml:9: alerts[2].declare: `maybe` is not a way to "
        "declare — use one of auto, ask",
    ]


async def test_the_shipped_playbooks_still_check_clean() -> None:
    assert await check_directory(Path("playbooks"), lookup_user=None) == []
