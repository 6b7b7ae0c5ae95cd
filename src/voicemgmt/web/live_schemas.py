"""Response bodies of the live state and of operators' actions (``/api/v1/me/…``,
``/api/v1/supervision/…``, ``/api/v1/sim/…``).

The live state is what ``voicemgmt.services.live_state`` builds; a page reads it when it
(re)connects, then applies the events after ``seq``, resuming ``/vm/events`` with ``after`` and
the stream's identity ``epoch`` (``docs/events.md``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voicemgmt.domain.directory import UserType
from voicemgmt.domain.routing.model import Activity, CallState, Presence
from voicemgmt.services.events import EPOCH_PATTERN
from voicemgmt.web.responses import DATE_TIME, OutModel

StatusName = Literal["online", "busy", "break", "offline"]


class LiveOperator(OutModel):
    id_op: int
    status: Presence = Field(
        description="what a banner shows: the presence, but busy while in a call"
    )
    presence: Presence = Field(description="what the operator (or a supervisor) chose")
    activity: Activity = Field(description="what they are doing right now")
    since: str = Field(description="when the presence began", json_schema_extra=DATE_TIME)
    status_since: str = Field(
        description="when the shown status began", json_schema_extra=DATE_TIME
    )
    wrap_up_until: str | None = Field(
        description="end of the wrap-up after a call, while in it", json_schema_extra=DATE_TIME
    )
    id_call: str | None = Field(description="the call ringing for them or in progress")
    calls_taken: int = Field(description="calls answered since the routing state was built")
    groups: dict[int, int] = Field(
        description="their groups: group id (as a string key) → priority tier (1 first)"
    )


class QueueOperators(OutModel):
    offline: int
    online: int
    busy: int
    break_: int = Field(alias="break")


class LiveQueue(OutModel):
    id_group: int
    waiting: int = Field(description="calls queued or ringing in the group")
    longest_wait: int = Field(description="seconds the longest waiting call has waited")
    operators: QueueOperators = Field(description="the group's operators by shown status")


class LiveCallDisplay(OutModel):
    caller_id_num: str = Field(description="caller_id_num as people read it")
    e164: str = Field(description="e164 as people read it")


class LiveCall(OutModel):
    id_call: str
    direction: Literal["in", "out"]
    state: CallState
    caller_id_num: str = Field(description="E.164 digits of the calling party")
    e164: str = Field(description="E.164 digits of the called number")
    id_group: int | None
    id_op: int | None = Field(description="the operator on the call (answered or placing it)")
    ringing: list[int] = Field(description="operators whose phone rings for it now")
    started_at: str = Field(json_schema_extra=DATE_TIME)
    wait: int = Field(description="seconds waited so far, or waited before the answer")
    variables: dict[str, str] = Field(description="what the caller keyed in the IVR")
    ticket_id: str | None = Field(description="the CRM ticket of a click-to-call")
    display: LiveCallDisplay
    answered_at: str | None = Field(json_schema_extra=DATE_TIME)
    held: bool


class LiveSnapshot(OutModel):
    seq: int = Field(ge=0, description="the event stream's position: apply the events after it")
    epoch: str = Field(
        pattern=EPOCH_PATTERN,
        description="the event stream's identity (as in `hello`): resume with it beside `seq`",
    )
    now: str = Field(description="the server's clock", json_schema_extra=DATE_TIME)
    operators: list[LiveOperator]
    queues: list[LiveQueue]
    calls: list[LiveCall] = Field(description="live calls, oldest first")


class MyState(OutModel):
    operator: LiveOperator | None = Field(
        description="the operator's live state; null until the routing state knows them"
    )
    calls: list[LiveCall] = Field(description="their call, and calls ringing for them")
    seq: int = Field(ge=0, description="the event stream's position: apply the events after it")
    epoch: str = Field(
        pattern=EPOCH_PATTERN,
        description="the event stream's identity (as in `hello`): resume with it beside `seq`",
    )
    now: str = Field(json_schema_extra=DATE_TIME)


class DirectoryMe(OutModel):
    user_type: UserType
    id: int = Field(description="id_agent of an operator, id_admin of a supervisor")
    name: str
    email: str


class DirectoryAccount(OutModel):
    id: int
    name: str
    crm_url: str | None = Field(description="where the banner opens the customer file")
    screen_pop: Literal["presentation", "answer", "off"] = Field(
        description="when the banner opens it: as the call is presented, on answer, or never"
    )
    allowed_origins: list[str] = Field(description="CRM origins that may embed the pages")


class DirectoryGroup(OutModel):
    id_group: int
    name: str
    wrap_up: float = Field(description="seconds of wrap-up after a call")
    crm_url: str | None = Field(description="the group's own CRM URL, if it has one")


class DirectoryNumber(OutModel):
    e164: str
    label: str
    id_group: int
    display: str = Field(description="the number as people read it")


class DirectoryOperator(OutModel):
    id_op: int
    name: str
    status: Presence = Field(description="shown status now (offline if never connected)")


class MyDirectory(OutModel):
    me: DirectoryMe
    account: DirectoryAccount
    groups: list[DirectoryGroup] = Field(description="at most 1,000")
    numbers: list[DirectoryNumber] = Field(description="at most 1,000")
    operators: list[DirectoryOperator] = Field(description="at most 1,000")


class StatusSet(OutModel):
    status: StatusName


class OperatorStatusSet(OutModel):
    id_op: int
    status: StatusName


class CallActionDone(OutModel):
    id_call: str
    done: Literal["answer", "decline", "hang_up", "hold", "unhold", "transfer"]


class ClickToCallPlaced(OutModel):
    id_call: str = Field(description="the new call: its events follow on the stream")
    ticket_id: str | None


class SimulatedCallPlaced(OutModel):
    id_call: str
    from_: str = Field(alias="from", description="the caller, as E.164 digits")
    to: str = Field(description="the number called, as E.164 digits")
