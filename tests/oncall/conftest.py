"""The on-call fakes started on real ports, with a client and a recording retry policy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.oncall.fakes import FakeOpsgenieOnCall, FakePagerDutyREST

PD_TOKEN = "y_NbAkKc66ryYTWUXYEu"  # the shape of a PagerDuty REST API key
GENIE_KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"


@pytest.fixture
async def pd_rest() -> AsyncIterator[FakePagerDutyREST]:
    fake = FakePagerDutyREST(token=PD_TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def og_oncall() -> AsyncIterator[FakeOpsgenieOnCall]:
    fake = FakeOpsgenieOnCall(api_key=GENIE_KEY)
    await fake.start()
    yield fake
    await fake.stop()
