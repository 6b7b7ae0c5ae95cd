"""Bodies of the platform API (SPEC §6), and how it reads dates.

Names are the platform's (``id_appel``, ``realname``, ``service_number``, ``post_appel``...).
Inputs are strict: no unknown field, no ``"12"`` for 12. Numbers go out as E.164 digits without
'+'; on input a '+' and the usual separators are accepted (``normalize_e164``).

Dates are ISO 8601 or one of the common variants: ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM``,
``YYYY-MM-DD HH:MM:SS``, ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]``, each with an optional zone (``Z``,
``+01:00``). A date without a zone is read as **UTC**. Dates go out in UTC, to the
millisecond, with a ``Z``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from voicemgmt.domain.directory import Number, Operator
from voicemgmt.domain.errors import InvalidInput
from voicemgmt.services.call_records import MAX_IDS, MAX_PAGE, StoredCallRecord

MAX_DATE_TEXT = 40
MAX_OFFSET = 10_000_000


def parse_date(text: str, field: str, *, end: bool = False) -> datetime:
    """An aware UTC datetime from one of the accepted forms.

    A bare day (``2026-12-07``) is its first instant, or with ``end`` the first instant of
    the next day: as an end it counts the whole day in.
    """
    value = text.strip()
    problem = f"{field} must be a date like 2026-12-07, 2026-12-07 08:30 or 2026-12-07T08:30:00Z"
    if not value or len(value) > MAX_DATE_TEXT or not value[:4].isdigit():
        raise InvalidInput(problem, field=field)
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(problem, field=field) from None
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if end:
            try:
                return moment + timedelta(days=1)
            except OverflowError:
                raise InvalidInput(problem, field=field) from None
        return moment
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(problem, field=field) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC time
        raise InvalidInput(problem, field=field) from None


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# call history


class CallsIn(StrictIn):
    date: str = Field(max_length=MAX_DATE_TEXT, examples=["2026-12-01 08:00"])
    date_end: str = Field(
        max_length=MAX_DATE_TEXT,
        examples=["2026-12-07"],
        description="after date, at most 31 days after it; a bare day counts in whole",
    )
    service_number: str | None = Field(
        default=None, max_length=32, description="the account's number", examples=["33170200200"]
    )
    caller_number: str | None = Field(
        default=None, max_length=32, description="the customer's number", examples=["33612345678"]
    )
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class CallOut(BaseModel):
    id_appel: str = Field(description="the call's id (id_call elsewhere in the product)")
    date: str = Field(description="when the call began, ISO 8601 UTC")
    date_end: str = Field(description="when it ended, ISO 8601 UTC")
    service_number: str = Field(description="the account's number (called, or presented)")
    caller_number: str = Field(description="the customer's number (calling, or called)")
    id_group: int | None
    id_op: int | None = Field(description="the operator who last answered, if any")
    outcome: Literal["answered", "abandoned", "missed", "overflowed", "failed"]
    duration: float = Field(ge=0, description="total, from arrival to the end")
    duration_ring: float = Field(ge=0, description="operators' phones ringing")
    duration_svi: float = Field(ge=0, description="in the IVR before a queue")
    duration_wait: float = Field(ge=0, description="in the queue (ringing included)")
    duration_comm: float = Field(ge=0, description="talking with an operator")
    duration_hold: float = Field(ge=0, description="on hold")
    post_appel: float = Field(ge=0, description="wrap-up given to id_op after the call")

    @classmethod
    def of(cls, record: StoredCallRecord) -> CallOut:
        inbound = record.direction == "in"
        row = record.to_json()
        return cls(
            id_appel=record.id_call,
            date=row["date"],
            date_end=row["date_end"],
            # Stored from the switch's point of view: an outbound call's "caller" is the
            # account's number. Here both directions keep the account's number in one field.
            service_number=record.service_number if inbound else record.caller_number,
            caller_number=record.caller_number if inbound else record.service_number,
            id_group=record.id_group,
            id_op=record.id_op,
            outcome=row["outcome"],
            duration=row["duration"],
            duration_ring=row["duration_ring"],
            duration_svi=row["duration_svi"],
            duration_wait=row["duration_wait"],
            duration_comm=row["duration_comm"],
            duration_hold=row["duration_hold"],
            post_appel=row["post_appel"],
        )


class CallsOut(BaseModel):
    calls: list[CallOut] = Field(description="newest first")
    total: int = Field(description="calls matching the request, all pages together")
    limit: int
    offset: int


# operators


class PlatformOperatorOut(BaseModel):
    id: int = Field(description="the operator's id_agent")
    email: str
    realname: str
    login: str = Field(description="what the operator logs in with: their email")

    @classmethod
    def of(cls, operator: Operator) -> PlatformOperatorOut:
        return cls(
            id=operator.id, email=operator.email, realname=operator.name, login=operator.email
        )


class OperatorsOut(BaseModel):
    operators: list[PlatformOperatorOut] = Field(description="by id")
    limit: int
    offset: int


class OperatorFilterIn(StrictIn):
    email: str | None = Field(default=None, min_length=1, max_length=320)
    login: str | None = Field(default=None, min_length=1, max_length=320)


class OperatorStatusOut(BaseModel):
    id: int
    status: Literal["online", "busy", "break", "offline"] = Field(
        description="as the banner shows it: busy while on a call or in wrap-up"
    )
    presence: Literal["online", "busy", "break", "offline"] = Field(
        description="the status the operator (or a supervisor) chose"
    )
    activity: Literal["idle", "ringing", "in_call", "wrap_up"]
    status_since: str = Field(description="since when `status` holds, ISO 8601 UTC")
    id_appel: str | None = Field(description="the call ringing for them or in progress")


class OperatorStatusesOut(BaseModel):
    operators: list[OperatorStatusOut]
    date: str = Field(description="when the state was read, ISO 8601 UTC")


# service numbers


class ServiceNumberOut(BaseModel):
    service_number: str = Field(examples=["33170200200"])
    state: Literal["active", "suspended"]
    record: bool = Field(description="the recording flag (stored; recordings are to come)")
    id_group: int
    label: str

    @classmethod
    def of(cls, number: Number) -> ServiceNumberOut:
        return cls(
            service_number=number.e164,
            state=number.state.value,
            record=number.record,
            id_group=number.group_id,
            label=number.label,
        )


class ServiceNumbersOut(BaseModel):
    service_numbers: list[ServiceNumberOut] = Field(description="by number")
    limit: int
    offset: int


class ServiceNumberIn(StrictIn):
    service_number: str = Field(min_length=1, max_length=32, examples=["33170200300"])
    id_group: int = Field(ge=1, le=2**31 - 1)
    label: str = Field(default="", max_length=200)
    state: Literal["active", "suspended"] = "active"
    record: bool = False


class ServiceNumberPut(StrictIn):
    service_number: str = Field(min_length=1, max_length=32, examples=["33170200200"])
    id_group: int | None = Field(default=None, ge=1, le=2**31 - 1)
    label: str | None = Field(default=None, max_length=200)
    state: Literal["active", "suspended"] | None = None
    record: bool | None = None


# IVR variables


class CallIdsIn(StrictIn):
    call_ids: list[str] = Field(min_length=1, max_length=MAX_IDS)


class CallVariablesOut(BaseModel):
    id_appel: str
    variables: dict[str, str] = Field(description="what the IVR collected, by variable name")
    live: bool = Field(description="the call is still in progress")


class VariablesOut(BaseModel):
    calls: list[CallVariablesOut] = Field(description="in the order the ids were given")
