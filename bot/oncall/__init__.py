"""Who is on call now: roles filled from PagerDuty and Opsgenie schedules.

`base` holds the interface every provider implements and the pure descriptions; one module per
provider (`pagerduty`, `opsgenie`); `lookup` picks the provider for a role and caches answers
for a minute; `staffing` fills the roles at declaration; `show` answers `/incident oncall`;
`check` lets `playbooks check` ask whether a schedule exists.
"""

from bot.oncall.base import (
    OnCallFailed,
    OnCallPerson,
    OnCallProvider,
    describe_source,
)

__all__ = ["OnCallFailed", "OnCallPerson", "OnCallProvider", "describe_source"]
