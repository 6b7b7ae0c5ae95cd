"""Response bodies of what the call records tell: records, figures, charts.

The fields are those of ``voicemgmt.services.call_records`` (its docstring defines each
figure); here they are named and described for ``/openapi.json``. Dates are ISO 8601 in UTC
with milliseconds and a ``Z``; durations are seconds to the millisecond.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voicemgmt.domain.routing.model import Outcome, Side
from voicemgmt.web.responses import DATE_TIME, OutModel

Seconds = float


class CallRecordOut(OutModel):
    """What a finished call leaves behind, named after the platform API's fields (SPEC §6)."""

    id_call: str = Field(description="the call's id, as in the events and the CRM screen pop")
    id_appel: str = Field(description="the same id under the platform API's name")
    date: str = Field(description="when the call started", json_schema_extra=DATE_TIME)
    date_end: str = Field(description="when it ended", json_schema_extra=DATE_TIME)
    direction: Literal["in", "out"] = Field(
        description="in: a customer called a number; out: click-to-call"
    )
    caller_number: str = Field(
        description="E.164 digits without '+': who called (in), or the caller id shown (out)"
    )
    service_number: str = Field(
        description="E.164 digits: the number called (in), or the number dialled (out)"
    )
    id_group: int | None = Field(
        description="the group the call ended in (after overflows); null if it never reached "
        "one (ended in the IVR) and for outbound calls"
    )
    id_op: int | None = Field(description="the operator who answered or placed it; else null")
    outcome: Outcome = Field(
        description="answered; abandoned (the caller hung up before an answer); missed (no "
        "operator answered before the end: max wait, nobody available, refused); overflowed "
        "(sent to an outside number); failed (a technical failure)"
    )
    ended_by: Side = Field(description="who ended the call")
    disconnect_reason: str = Field(
        description="why it ended, as a short code (e.g. normal, caller_hung_up, max_wait)"
    )
    duration: Seconds = Field(description="start to end, in seconds")
    duration_ring: Seconds = Field(description="ringing an operator before the answer")
    duration_svi: Seconds = Field(description="in the IVR, before reaching a queue")
    duration_wait: Seconds = Field(
        description="in queue (ringing included) until answered or ended; 0 if never queued"
    )
    duration_comm: Seconds = Field(description="talking: answer to end, holds excluded")
    duration_hold: Seconds = Field(description="on hold, in total")
    post_appel: Seconds = Field(
        description="the wrap-up its operator was given after the call (the platform API's "
        "name); 0 when none, e.g. the call was not answered"
    )
    operators_offered: list[int] = Field(
        description="ids of the operators the call was offered to (their phone rang), one "
        "entry per offer in the order made: an operator offered it twice appears twice. Empty when "
        "it never rang an operator. The banner's "
        "missed calls include the unanswered calls that rang for the operator."
    )
    overflowed_from: list[int] = Field(
        description="ids of the groups the call overflowed from, in order; id_group is the "
        "last group"
    )
    ticket_id: str | None = Field(description="the CRM ticket given with click-to-call, else null")
    variables: dict[str, str] = Field(
        description="what the caller keyed in the IVR, by the script's variable names"
    )


class RecordDisplay(OutModel):
    caller_number: str = Field(description="caller_number as people read it (+33 1 70 …)")
    service_number: str = Field(description="service_number as people read it")


class DisplayedCallRecord(CallRecordOut):
    display: RecordDisplay


class CallRecordPage(OutModel):
    items: list[CallRecordOut] = Field(description="newest first")
    limit: int
    offset: int


class SupervisionRecordPage(OutModel):
    items: list[DisplayedCallRecord] = Field(description="newest first")
    limit: int
    offset: int
    total: int = Field(description="how many records match the filters, all pages together")


class MyCalls(OutModel):
    items: list[DisplayedCallRecord] = Field(
        description="the last 7 days, newest first: the operator's own calls (recent), or the "
        "abandoned and missed calls of their groups or that rang for them (missed)"
    )


class GroupFiguresOut(OutModel):
    """One group's inbound calls over the window, or the total (``id_group`` null)."""

    id_group: int | None = Field(description="the group; null on the total row (the last)")
    offered: int = Field(description="inbound calls that reached the group")
    answered: int
    abandoned: int
    missed: int
    overflowed: int
    failed: int = Field(description="the five outcomes add up to offered")
    answered_within: int = Field(description="answered within service_level_seconds of wait")
    average_wait: Seconds | None = Field(
        description="mean wait of the calls that queued; null if none did"
    )
    longest_wait: Seconds | None
    average_talk: Seconds | None = Field(description="mean talk of answered calls")
    service_level: float | None = Field(
        description="answered_within / offered, 0 to 1; null if nothing was offered"
    )


class FiguresOut(OutModel):
    service_level_seconds: float = Field(description="the threshold the figures used")
    groups: list[GroupFiguresOut] = Field(
        description="one row per group that had calls, then the total row"
    )


class OperatorFiguresOut(OutModel):
    id_op: int
    answered: int = Field(description="calls the operator answered, both directions")
    talk: Seconds = Field(description="their talk time in total")


class SupervisionFiguresOut(FiguresOut):
    operators: list[OperatorFiguresOut]


class ChartBucket(OutModel):
    start: str = Field(json_schema_extra=DATE_TIME)
    answered: int
    abandoned: int
    missed: int
    overflowed: int
    failed: int


class WaitBin(OutModel):
    from_: int = Field(alias="from", description="seconds waited, included")
    to: int | None = Field(description="seconds waited, excluded; null for the last bin")
    calls: int


class ChartsOut(OutModel):
    since: str = Field(json_schema_extra=DATE_TIME)
    until: str = Field(json_schema_extra=DATE_TIME)
    bucket_seconds: int
    buckets: list[ChartBucket] = Field(
        description="inbound calls by the slice they started in, by outcome"
    )
    wait: list[WaitBin] = Field(description="the calls that queued, by how long they waited")
