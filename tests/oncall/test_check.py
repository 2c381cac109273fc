"""`playbooks check` and `oncall:`: shapes always; with a key set, schedules that do not exist."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import Settings
from bot.wiring import check_playbooks
from tests.oncall.conftest import GENIE_KEY, PD_TOKEN
from tests.oncall.fakes import FakeOpsgenieOnCall, FakePagerDutyREST

PLAYBOOK = """name: rota
match: {default: true}
roles:
  ops: {oncall: {pagerduty_schedule: PABC123}}
  gone: {oncall: {pagerduty_schedule: PGONE99}}
  lead: {oncall: {pagerduty_escalation_policy: PNOPOL1}}
  dba: {oncall: {opsgenie_schedule: dba-schedule}}
  dbx: {oncall: {opsgenie_schedule: no-such-schedule}}
"""

MISSING = [
    "rota.yaml:5: roles.gone.oncall.pagerduty_schedule: PagerDuty has no schedule `PGONE99` — "
    "copy the id from the schedule's address in PagerDuty (…/schedules/PABC123)",
    "rota.yaml:6: roles.lead.oncall.pagerduty_escalation_policy: PagerDuty has no escalation "
    "policy `PNOPOL1` — copy the id from the escalation policy's address in PagerDuty "
    "(…/escalation_policies/PABC123)",
    "rota.yaml:8: roles.dbx.oncall.opsgenie_schedule: Opsgenie has no schedule "
    "`no-such-schedule` — write the schedule's name or id as Opsgenie shows it",
]


def settings(pd: FakePagerDutyREST, og: FakeOpsgenieOnCall, *, token: str | None) -> Settings:
    values = {"PAGERDUTY_API_URL": pd.base_url, "OPSGENIE_API_URL": og.base_url}
    if token is not None:
        values["PAGERDUTY_API_TOKEN"] = token
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rota.yaml").write_text(PLAYBOOK)
    return Path(".")


@pytest.fixture
def rotas(pd_rest: FakePagerDutyREST, og_oncall: FakeOpsgenieOnCall) -> None:
    pd_rest.add_user("ann", email="ann@example.com")
    pd_rest.add_schedule("PABC123", layers=[["ann"]])
    og_oncall.add_schedule("dba-schedule", layers=[["ann@example.com"]])


@pytest.mark.usefixtures("rotas")
async def test_with_keys_set_schedules_that_do_not_exist_are_problems(
    directory: Path,
    pd_rest: FakePagerDutyREST,
    og_oncall: FakeOpsgenieOnCall,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSGENIE_API_KEY", GENIE_KEY)

    problems = await check_playbooks(settings(pd_rest, og_oncall, token=PD_TOKEN), str(directory))

    assert [p.removeprefix("./") for p in problems] == MISSING


@pytest.mark.usefixtures("rotas")
async def test_without_keys_nothing_is_asked(
    directory: Path,
    pd_rest: FakePagerDutyREST,
    og_oncall: FakeOpsgenieOnCall,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPSGENIE_API_KEY", raising=False)
    monkeypatch.delenv("PAGERDUTY_API_TOKEN", raising=False)

    assert await check_playbooks(settings(pd_rest, og_oncall, token=None), str(directory)) == []
    assert pd_rest.received == [] and og_oncall.received == []


@pytest.mark.usefixtures("rotas")
async def test_a_provider_that_cannot_be_asked_is_logged_not_reported(
    directory: Path,
    pd_rest: FakePagerDutyREST,
    og_oncall: FakeOpsgenieOnCall,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("OPSGENIE_API_KEY", raising=False)
    caplog.set_level(logging.WARNING)

    problems = await check_playbooks(settings(pd_rest, og_oncall, token="wrong"), str(directory))

    assert problems == []
    assert len(pd_rest.received) == 1  # refused once, then its schedules are left unchecked
    (record,) = [r for r in caplog.records if "schedules not checked" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "PagerDuty refused the API key (HTTP 401)" in record.getMessage()


async def test_ids_of_the_wrong_shape_are_problems_without_any_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(
        "match: {default: true}\n"
        "roles:\n"
        "  ops: {oncall: {pagerduty_schedule: platform-primary}}\n"
        "  dba: {oncall: {pagerduty_schedule: PABC123, opsgenie_schedule: dba}}\n"
        "  sre: {oncall: {schedule: PABC123}}\n"
    )
    problems = await check_playbooks(Settings(_env_file=None), ".")  # type: ignore[call-arg]

    assert [p.removeprefix("./") for p in problems] == [
        "bad.yaml:3: roles.ops.oncall.pagerduty_schedule: `platform-primary` is not a PagerDuty "
        "id — write the id from its address in PagerDuty (…/schedules/PABC123), e.g. `PABC123`",
        "bad.yaml:4: roles.dba.oncall: `oncall:` names exactly one of `pagerduty_schedule`, "
        "`pagerduty_escalation_policy`, `opsgenie_schedule` — e.g. `oncall: "
        "{pagerduty_schedule: PABC123}` or `oncall: {opsgenie_schedule: dba-schedule}`",
        "bad.yaml:5: roles.sre.oncall.schedule: unknown key `schedule` — did you mean "
        "`pagerduty_schedule`?",
    ]
