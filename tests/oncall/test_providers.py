"""What only one provider does: PagerDuty's pagination and policies, Opsgenie's names and ids."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.core.playbooks import OnCallSource
from bot.oncall.opsgenie import OpsgenieOnCall, identifier_type
from bot.oncall.pagerduty import PagerDutyOnCall
from bot.pagers.retry import RetryPolicy
from tests.oncall.conftest import GENIE_KEY, PD_TOKEN
from tests.oncall.fakes import FakeOpsgenieOnCall, FakePagerDutyREST
from tests.pagers.conftest import RecordingSleep


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def retry() -> RetryPolicy:
    return RetryPolicy(attempts=3, sleep=RecordingSleep())


def pagerduty(
    fake: FakePagerDutyREST, http: httpx.AsyncClient, retry: RetryPolicy
) -> PagerDutyOnCall:
    return PagerDutyOnCall(api_url=fake.base_url, token=PD_TOKEN, http=http, retry=retry)


async def test_pagerduty_asks_for_users_with_emails_and_sends_its_token_header(
    pd_rest: FakePagerDutyREST, http: httpx.AsyncClient, retry: RetryPolicy
) -> None:
    pd_rest.add_user("ann", email="ann@example.com", name="Ann Avery")
    pd_rest.add_schedule("PABC123", layers=[["ann"]])

    (person,) = await pagerduty(pd_rest, http, retry).on_call(
        OnCallSource(pagerduty_schedule="PABC123")
    )

    assert (person.email, person.name) == ("ann@example.com", "Ann Avery")
    (request,) = pd_rest.oncall_requests()
    assert request.headers["Authorization"] == f"Token token={PD_TOKEN}"
    assert request.query["schedule_ids[]"] == "PABC123"
    assert request.query["include[]"] == "users"


async def test_pagerduty_follows_every_page_and_names_each_person_once(
    pd_rest: FakePagerDutyREST, http: httpx.AsyncClient, retry: RetryPolicy
) -> None:
    people = [f"user{i}" for i in range(7)]
    for key in people:
        pd_rest.add_user(key, email=f"{key}@example.com")
    # Used by two policies: PagerDuty lists each on-call once per policy that uses it.
    pd_rest.add_schedule("PBIG001", layers=[people], policies=("PPOL001", "PPOL002"))
    pd_rest.max_limit = 3

    found = await pagerduty(pd_rest, http, retry).on_call(
        OnCallSource(pagerduty_schedule="PBIG001")
    )

    assert [p.email for p in found] == [f"{key}@example.com" for key in people]
    offsets = [int(r.query["offset"]) for r in pd_rest.oncall_requests()]
    assert offsets == [0, 3, 6, 9, 12]  # 14 entries, 3 a page


async def test_an_escalation_policy_gives_its_first_level_only(
    pd_rest: FakePagerDutyREST, http: httpx.AsyncClient, retry: RetryPolicy
) -> None:
    for key in ("ann", "bob", "cat"):
        pd_rest.add_user(key, email=f"{key}@example.com")
    pd_rest.add_schedule("PFIRST1", layers=[["ann", "bob"]], policies=("PXYZ789",))
    pd_rest.policies["PXYZ789"].append(["cat"])  # level 2: the manager

    found = await pagerduty(pd_rest, http, retry).on_call(
        OnCallSource(pagerduty_escalation_policy="PXYZ789")
    )

    assert [p.email for p in found] == ["ann@example.com", "bob@example.com"]
    assert pd_rest.oncall_requests()[0].query["escalation_policy_ids[]"] == "PXYZ789"
    unknown = OnCallSource(pagerduty_escalation_policy="PNOPE12")
    assert await pagerduty(pd_rest, http, retry).exists(unknown) is False


async def test_opsgenie_asks_by_name_or_by_id_flat(
    og_oncall: FakeOpsgenieOnCall, http: httpx.AsyncClient, retry: RetryPolicy
) -> None:
    rota = og_oncall.add_schedule("dba-schedule", layers=[["ann@example.com"]])
    provider = OpsgenieOnCall(api_url=og_oncall.base_url, api_key=GENIE_KEY, http=http, retry=retry)

    by_name = await provider.on_call(OnCallSource(opsgenie_schedule="dba-schedule"))
    by_id = await provider.on_call(OnCallSource(opsgenie_schedule=rota.id))

    assert [p.email for p in by_name] == [p.email for p in by_id] == ["ann@example.com"]
    first, second = og_oncall.received
    assert first.path == "/v2/schedules/dba-schedule/on-calls"
    assert first.query == {"scheduleIdentifierType": "name", "flat": "true"}
    assert second.query["scheduleIdentifierType"] == "id"
    assert first.headers["Authorization"] == f"GenieKey {GENIE_KEY}"
    assert identifier_type("Platform Primary") == "name"
