"""The live state pages load before following the event stream, as ``/openapi.json`` shows it:
``GET /api/v1/me/state`` (an operator's) and ``GET /api/v1/supervision/live`` (the account's).

Both give the stream position they reflect (``seq``) and the stream's identity (``epoch``):
a client applies the events after ``seq``, resuming ``/vm/events`` with ``after`` and
``epoch`` (``docs/events.md``). The fields are those of ``voicemgmt.services.live_state``;
unknown ones are refused, so that a field added there without its description here fails the
tests rather than reaching clients undocumented.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from voicemgmt.domain.routing.model import Activity, CallState, Presence
from voicemgmt.services.events import EPOCH_PATTERN

_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LiveOperator(_Closed):
    id_op: int = Field(ge=1, description="The operator (`id_agent`).")
    status: Presence = Field(description="What their banner shows: `busy` while in a call.")
    presence: Presence = Field(description="The status they (or a supervisor) chose.")
    activity: Activity = Field(description="What they are doing right now.")
    since: str = Field(pattern=_UTC, description="When their presence last changed (UTC).")
    status_since: str = Field(pattern=_UTC, description="Since when `status` is shown (UTC).")
    wrap_up_until: str | None = Field(
        pattern=_UTC, description="The end of their wrap-up after a call (UTC), or null."
    )
    id_call: str | None = Field(description="The call they are in or offered, or null.")
    calls_taken: int = Field(ge=0, description="Calls answered today (`fewest_calls`).")
    groups: dict[int, int] = Field(description="Their groups: group id → priority tier (1 first).")


class CallDisplay(_Closed):
    caller_id_num: str = Field(description="The caller's number as people read it.")
    e164: str = Field(description="The number called as people read it.")


class LiveCall(_Closed):
    id_call: str
    direction: Literal["in", "out"] = Field(description="`out`: a click-to-call.")
    state: CallState
    caller_id_num: str = Field(description="The caller's number (empty when withheld).")
    e164: str = Field(description="The number called.")
    id_group: int | None = Field(description="The group it is in, or null (IVR, click-to-call).")
    id_op: int | None = Field(description="The operator connected to it, or null.")
    ringing: list[int] = Field(description="The operators it rings for now.")
    started_at: str = Field(pattern=_UTC)
    wait: int = Field(ge=0, description="Seconds waiting so far, or waited before the answer.")
    variables: dict[str, str] = Field(description="What the IVR collected.")
    ticket_id: str | None = Field(description="The CRM ticket of a click-to-call, or null.")
    display: CallDisplay
    answered_at: str | None = Field(pattern=_UTC)
    held: bool = Field(description="The customer is on hold.")


class QueueOperators(_Closed):
    """How many of the group's operators show each status."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    offline: int = Field(ge=0)
    online: int = Field(ge=0)
    busy: int = Field(ge=0)
    break_: int = Field(ge=0, alias="break")


class LiveQueue(_Closed):
    id_group: int = Field(ge=1)
    waiting: int = Field(ge=0, description="Calls queued or ringing in the group.")
    longest_wait: int = Field(ge=0, description="The longest of their waits so far, seconds.")
    operators: QueueOperators


class _Position(_Closed):
    seq: int = Field(
        ge=0, description="The event stream position this state reflects: resume after it."
    )
    epoch: str = Field(
        pattern=EPOCH_PATTERN,
        description="The event stream's identity (as in `hello`): resume with it beside `seq`.",
    )
    now: str = Field(pattern=_UTC, description="The server's time (UTC).")


class MyState(_Position):
    """An operator's own status and the calls they are in or offered."""

    operator: LiveOperator | None
    calls: list[LiveCall]


class LiveState(_Position):
    """The account's operators, queues and calls in progress."""

    operators: list[LiveOperator]
    queues: list[LiveQueue]
    calls: list[LiveCall]
