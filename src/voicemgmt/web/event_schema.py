"""The event catalogue as code: every frame the event stream sends, and its JSON Schema.

One model per frame kind — ``hello``, ``ping`` and each event kind — with every field's type
and meaning. They are the source of ``GET /events.schema.json`` (JSON Schema draft 2020-12,
one ``oneOf`` branch per ``kind``, unknown fields refused; served by ``event_schema_api``) and
of ``docs/events.md``'s reference; the test suite checks every frame it produces against that
schema, and the document against the docs, so the three cannot drift apart.

Webhooks carry the same event objects as the stream (``{"seq", "kind", "at", "data"}``).
``session.revoked`` is published on the bus for the connections themselves and never sent:
its frame's model (:data:`INTERNAL_EVENTS`) is kept here, out of the served document.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic.json_schema import GenerateJsonSchema

from voicemgmt.domain.routing.model import Activity, Outcome, Presence, Side
from voicemgmt.services.events import EPOCH_PATTERN

SCHEMA_PATH = "/events.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# ISO 8601 in UTC with a Z, as ``Event.to_json`` and call records write dates.
UTC_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"


class OfferEndReason(StrEnum):
    """Why an offer ended without this operator taking the call."""

    DECLINED = "declined"  # the operator declined it
    TIMEOUT = "timeout"  # the group's ring_timeout passed
    TAKEN_BY_OTHER = "taken_by_other"  # ring-all: a colleague answered first
    CALLER_HUNG_UP = "caller_hung_up"
    ENDED = "ended"  # the call left the queue (max wait, overflow) or the platform ended it
    STATUS_CHANGED = "status_changed"  # the operator left 'online' (or was deleted)
    TAKEN_OVER = "taken_over"  # another node took the account over and decides again


class StatusReason(StrEnum):
    """Why an operator's status changed."""

    OPERATOR = "operator"  # the operator chose it (banner, cnx.js, PUT /api/v1/me/status)
    SUPERVISOR = "supervisor"  # a supervisor forced it
    LOGOUT = "logout"  # their last session ended: offline
    DELETED = "deleted"  # the operator was deleted: offline
    RESTORED = "restored"  # the status they had before the server restarted
    NO_ANSWER = "no_answer"  # max_no_answer offers in a row unanswered: break
    CALL = "call"  # a call rang, was answered, or ended
    WRAP_UP = "wrap_up"  # the wrap-up after a call is over
    DECLINED = "declined"  # as in OfferEndReason: the offer they had ended
    TIMEOUT = "timeout"
    TAKEN_BY_OTHER = "taken_by_other"
    CALLER_HUNG_UP = "caller_hung_up"
    ENDED = "ended"
    STATUS_CHANGED = "status_changed"
    TAKEN_OVER = "taken_over"


class Direction(StrEnum):
    IN = "in"  # a customer called the account's number
    OUT = "out"  # click-to-call: the operator called a customer


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


CallId = Annotated[str, Field(min_length=1, description="The call's id (`id_call`).")]
OperatorId = Annotated[int, Field(ge=1, description="An operator's id (`id_agent`).")]
GroupId = Annotated[int, Field(ge=1, description="A group's id (`id_group`).")]
Digits = Annotated[str, Field(description="A phone number in E.164 digits, no '+'.")]
CallerId = Annotated[
    str,
    Field(
        description="The caller's number in E.164 digits; '' when withheld, or what the "
        "network gave if it is not a number."
    ),
]
Variables = Annotated[
    dict[str, str],
    Field(description="What the IVR collected (e.g. `order_number`), by name; {} without."),
]
Seconds = Annotated[float, Field(ge=0, description="Seconds, to the millisecond.")]


class DisplayIn(_Closed):
    """The numbers of an inbound call as people read them ('+33 6 12 34 56 78')."""

    caller_id_num: str = Field(description="The caller's, or as it came if not a number.")
    e164_in: str = Field(description="The account's number that was called.")


class DisplayOut(_Closed):
    """The numbers of a click-to-call as people read them."""

    caller_id_num: str = Field(description="The account's number the customer will see.")
    e164_out: str = Field(description="The customer's number.")


# the events' data


class CallArrivedData(_Closed):
    id_call: CallId
    caller_id_num: CallerId
    e164_in: Digits = Field(description="The account's number that was called.")
    display: DisplayIn


class CallIvrVariableData(_Closed):
    id_call: CallId
    name: str = Field(description="The variable's name, as the IVR script names it.")
    value: str = Field(description="What the caller keyed in.")


class CallQueuedData(_Closed):
    id_call: CallId
    id_group: GroupId = Field(description="The group whose queue the call joined.")
    variables: Variables


class CallOfferedData(_Closed):
    id_call: CallId
    id_op: OperatorId = Field(description="The operator the call rings for.")
    id_group: GroupId = Field(description="The group the call came through.")
    caller_id_num: CallerId
    e164_in: Digits = Field(description="The account's number that was called.")
    wait: int = Field(ge=0, description="Whole seconds the call has waited in the queue.")
    variables: Variables
    display: DisplayIn


class CallOfferWithdrawnData(_Closed):
    id_call: CallId
    id_op: OperatorId = Field(description="The operator whose offer ended.")
    reason: OfferEndReason


class CallAnsweredData(_Closed):
    id_call: CallId
    id_op: OperatorId = Field(description="The operator now talking to the customer.")
    id_group: GroupId | None = Field(description="The call's group; null for a click-to-call.")
    direction: Direction


class CallOutboundData(_Closed):
    id_call: CallId
    id_op: OperatorId = Field(description="The operator calling; their own phone rings first.")
    e164_out: Digits = Field(description="The customer's number being called.")
    caller_id_num: Digits = Field(description="The account's number the customer will see.")
    ticket_id: str | None = Field(description="The CRM's ticket given with the call, or null.")
    display: DisplayOut


class CallHeldData(_Closed):
    id_call: CallId
    id_op: OperatorId = Field(description="The operator who put the customer on hold.")


class CallResumedData(_Closed):
    id_call: CallId
    id_op: OperatorId = Field(description="The operator who took the customer off hold.")


class CallTransferredData(_Closed):
    id_call: CallId
    from_op: OperatorId = Field(description="The operator who transferred the call.")
    to_op: OperatorId | None = Field(description="The colleague it now rings for, or null.")
    to_group: GroupId | None = Field(description="The group whose queue it joins, or null.")


class CallOverflowedData(_Closed):
    id_call: CallId
    from_group: GroupId = Field(description="The group the call waited in.")
    to_group: GroupId | None = Field(description="The overflow group it joins, or null.")
    to_number: Digits | None = Field(description="The number it is forwarded to, or null.")


class CallRecord(_Closed):
    """What a finished call leaves behind, as `GET /api/v1/call-records` returns it."""

    id_call: CallId
    id_appel: str = Field(description="`id_call` under the platform API's name.")
    date: str = Field(pattern=UTC_TIME, description="When the call started (UTC).")
    date_end: str = Field(pattern=UTC_TIME, description="When it ended (UTC).")
    direction: Direction
    caller_number: str = Field(description="Who called: the customer inbound, the account out.")
    service_number: str = Field(description="Who was called: the account's number inbound.")
    id_group: GroupId | None = Field(description="The group it ended in; null for click-to-call.")
    id_op: OperatorId | None = Field(
        description="The operator who answered last (click-to-call: who placed it), or null."
    )
    outcome: Outcome
    ended_by: Side
    disconnect_reason: str = Field(
        description="Why it ended: 'normal', 'max_wait', 'nobody_logged_in', "
        "'operator_no_answer', 'group_gone', an IVR's reason, the phone network's, "
        "'media_timeout', 'platform_shutdown' or 'node_died' (docs/events.md)."
    )
    duration: Seconds
    duration_ring: Seconds
    duration_svi: Seconds
    duration_wait: Seconds
    duration_comm: Seconds
    duration_hold: Seconds
    post_appel: Seconds = Field(
        description="The wrap-up the operator was given after the call (seconds; 0 unanswered)."
    )
    operators_offered: list[OperatorId] = Field(description="Every offer, in order (repeats).")
    overflowed_from: list[GroupId] = Field(description="The groups it overflowed from, in order.")
    ticket_id: str | None = Field(description="The CRM's ticket of a click-to-call, or null.")
    variables: Variables


class CallEndedData(_Closed):
    record: CallRecord


class OperatorStatusData(_Closed):
    id_op: OperatorId
    status: Presence = Field(description="What the banner shows: busy while in a call.")
    presence: Presence = Field(description="What was chosen (by them, a supervisor, the system).")
    activity: Activity
    reason: StatusReason


class WebhookDisabledData(_Closed):
    """A webhook was disabled because every delivery failed for the documented period."""

    id_webhook: int = Field(ge=1, description="The webhook subscription's id.")
    url: str = Field(description="The subscription's URL.")
    reason: Literal["failing"] = Field(
        description="Why: every delivery failed for VM_WEBHOOK_DISABLE_AFTER_SECONDS."
    )
    failing_since: str | None = Field(
        description="When its deliveries started failing, ISO 8601 (null if unknown)."
    )


class SessionRevokedData(_Closed):
    """Internal: a session token was deleted; its connections close (code 4401)."""

    token: str = Field(description="A fingerprint of the token, never the token.")
    user_type: Literal["agent", "admin"]
    id_agent: int | None = Field(default=None, ge=1)
    id_admin: int | None = Field(default=None, ge=1)


# the frames


class Hello(_Closed):
    """The first frame of every connection."""

    kind: Literal["hello"]
    seq: int = Field(ge=0, description="The account's latest sequence number (0: none yet).")
    epoch: str = Field(
        pattern=EPOCH_PATTERN,
        description=(
            "The stream's identity: sequence numbers only mean something within one epoch. It"
            " changes when the numbering restarts (a restart of a single node, Redis losing the"
            " stream). Resume with `after` and this `epoch`; a different one is closed with 4410."
        ),
    )


class Ping(_Closed):
    """Sent after 15 s without any other frame, so a client can tell a dead connection."""

    kind: Literal["ping"]


class _Event(_Closed):
    seq: int = Field(ge=1, description="The event's number in the account's stream: 1, 2, 3…")
    at: str = Field(pattern=UTC_TIME, description="When it happened, ISO 8601 in UTC.")


def _frame(kind: str, data: type[_Closed], doc: str) -> type[_Event]:
    fields: dict[str, Any] = {"kind": (Literal[kind], ...), "data": (data, ...)}
    name = "".join(part.capitalize() for part in kind.replace(".", "_").split("_")) + "Frame"
    frame: type[_Event] = create_model(
        name, __base__=_Event, __doc__=doc, __module__=__name__, **fields
    )
    return frame


# kind → (data model, when it is sent); the order of a call's life
EVENTS: dict[str, tuple[type[_Closed], str]] = {
    "call.arrived": (CallArrivedData, "A call reached one of the account's numbers."),
    "call.ivr_variable": (CallIvrVariableData, "The IVR collected a variable from the caller."),
    "call.queued": (CallQueuedData, "The call joined a group's queue."),
    "call.offered": (CallOfferedData, "The call rings for an operator."),
    "call.offer_withdrawn": (CallOfferWithdrawnData, "An offer ended without that operator."),
    "call.outbound": (CallOutboundData, "An operator started a click-to-call."),
    "call.answered": (CallAnsweredData, "The operator and the customer are connected."),
    "call.held": (CallHeldData, "The customer was put on hold."),
    "call.resumed": (CallResumedData, "The customer was taken off hold."),
    "call.transferred": (CallTransferredData, "The operator transferred the call."),
    "call.overflowed": (CallOverflowedData, "The call left its group's queue for another."),
    "call.ended": (CallEndedData, "The call ended; its record is stored."),
    "operator.status": (OperatorStatusData, "An operator's status or activity changed."),
    "webhook.disabled": (WebhookDisabledData, "A failing webhook was disabled."),
}
INTERNAL_EVENTS: dict[str, type[_Closed]] = {
    "session.revoked": _frame("session.revoked", SessionRevokedData, "A session ended.")
}

FRAMES: dict[str, type[_Closed]] = {
    "hello": Hello,
    "ping": Ping,
    **{kind: _frame(kind, data, when) for kind, (data, when) in EVENTS.items()},
}


class _NoTitles(GenerateJsonSchema):
    """Titles repeat the field names; descriptions carry the meaning."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


@cache
def event_schema() -> dict[str, Any]:
    """The served document: JSON Schema draft 2020-12 of every frame, one branch per kind."""
    frames: Any = Annotated[_union(tuple(FRAMES.values())), Field(discriminator="kind")]
    adapter: TypeAdapter[Any] = TypeAdapter(frames)
    body = adapter.json_schema(ref_template="#/$defs/{model}", schema_generator=_NoTitles)
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_PATH,
        "title": "Voice Management event stream frames",
        "description": "Each frame of /vm/events (and each webhook's event): one of these, "
        "chosen by its `kind`. See docs/events.md.",
        **body,
    }


def _union(frames: tuple[type[_Closed], ...]) -> Any:
    union: Any = frames[0]
    for frame in frames[1:]:
        union = union | frame
    return union


def internal_event_schema(kind: str) -> dict[str, Any]:
    """The schema of an internal event as published (never sent to clients)."""
    schema: dict[str, Any] = INTERNAL_EVENTS[kind].model_json_schema(
        ref_template="#/$defs/{model}", schema_generator=_NoTitles
    )
    return {"$schema": DRAFT, **schema}
