"""What the routing core reports (past-tense events) and asks of the phone system (commands).

Events go to the account's event stream; commands go to the ``Switch`` port, which reports
back through the core's inputs (``answered``, ``hung_up``, ``digit``, ...).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

from voicemgmt.domain.routing.model import Activity, CallRecord, Presence, immutable


@immutable
class RoutingEvent:
    kind: ClassVar[str] = "event"

    def data(self) -> dict[str, Any]:
        return asdict(self)


@immutable
class CallArrived(RoutingEvent):
    kind: ClassVar[str] = "call.arrived"
    id_call: str
    caller_id_num: str
    e164_in: str


@immutable
class IvrVariableCollected(RoutingEvent):
    kind: ClassVar[str] = "call.ivr_variable"
    id_call: str
    name: str
    value: str


@immutable
class CallQueued(RoutingEvent):
    kind: ClassVar[str] = "call.queued"
    id_call: str
    id_group: int
    variables: dict[str, str]


@immutable
class CallOffered(RoutingEvent):
    kind: ClassVar[str] = "call.offered"
    id_call: str
    id_op: int
    id_group: int
    caller_id_num: str
    e164_in: str
    wait: int
    variables: dict[str, str]


@immutable
class OfferWithdrawn(RoutingEvent):
    """An offer ended without this operator taking the call."""

    kind: ClassVar[str] = "call.offer_withdrawn"
    id_call: str
    id_op: int
    reason: str  # declined, timeout, taken_by_other, caller_hung_up, ended


@immutable
class CallAnswered(RoutingEvent):
    kind: ClassVar[str] = "call.answered"
    id_call: str
    id_op: int
    id_group: int | None
    direction: str


@immutable
class OutboundStarted(RoutingEvent):
    kind: ClassVar[str] = "call.outbound"
    id_call: str
    id_op: int
    e164_out: str
    caller_id_num: str
    ticket_id: str | None


@immutable
class CallHeld(RoutingEvent):
    kind: ClassVar[str] = "call.held"
    id_call: str
    id_op: int


@immutable
class CallResumed(RoutingEvent):
    kind: ClassVar[str] = "call.resumed"
    id_call: str
    id_op: int


@immutable
class CallTransferred(RoutingEvent):
    kind: ClassVar[str] = "call.transferred"
    id_call: str
    from_op: int
    to_op: int | None
    to_group: int | None


@immutable
class CallOverflowed(RoutingEvent):
    kind: ClassVar[str] = "call.overflowed"
    id_call: str
    from_group: int
    to_group: int | None
    to_number: str | None


@immutable
class CallEnded(RoutingEvent):
    kind: ClassVar[str] = "call.ended"
    record: CallRecord


@immutable
class OperatorStatusChanged(RoutingEvent):
    kind: ClassVar[str] = "operator.status"
    id_op: int
    status: Presence  # what the banner shows
    presence: Presence
    activity: Activity
    reason: str  # operator, supervisor, crm, no_answer, call, wrap_up, system


# Commands to the phone system (the Switch port)


@immutable
class SwitchCommand:
    call_id: str


@immutable
class AnswerCaller(SwitchCommand):
    """Take the inbound leg off-hook (before an IVR or the queue's music)."""


@immutable
class PlayPrompt(SwitchCommand):
    prompt: dict[str, str]  # {"text": ...} or {"audio": ...}
    interruptible: bool


@immutable
class StopPrompt(SwitchCommand):
    pass


@immutable
class PlayQueueMusic(SwitchCommand):
    pass


@immutable
class RingOperator(SwitchCommand):
    operator_id: int
    # the number the phone shows: a click-to-call's customer (inbound calls show the caller,
    # which the switch knows already)
    shown: str = ""


@immutable
class CancelRing(SwitchCommand):
    operator_id: int


@immutable
class Bridge(SwitchCommand):
    operator_id: int


@immutable
class Hold(SwitchCommand):
    pass


@immutable
class Unhold(SwitchCommand):
    pass


@immutable
class DialCustomer(SwitchCommand):
    number: str
    caller_id: str


@immutable
class Forward(SwitchCommand):
    number: str


@immutable
class HangUp(SwitchCommand):
    reason: str
