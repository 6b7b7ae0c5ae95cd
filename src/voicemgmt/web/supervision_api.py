"""What supervisors (session token, Bearer) and the account (API credentials, Basic) read.

Supervisors: ``/api/v1/supervision/...`` — live operators, calls and queues; forcing an
operator's status; the day's figures (per group, in total, per operator), charts and call
records, for the supervisor page. Account: ``/api/v1/call-records`` (JSON or CSV) and
``/api/v1/figures``. Both read the same call records through the same filters, so the
supervisor page and the account's own reports always agree.

A window is ``since`` (default: today 00:00 UTC; the supervisor page sends its own local
midnight) to ``until`` (default: now); a date without a time zone is UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from voicemgmt.bootstrap import Container
from voicemgmt.domain.directory import UserType
from voicemgmt.domain.errors import PermissionDenied
from voicemgmt.domain.phone import display_number
from voicemgmt.domain.routing.model import Outcome, Presence
from voicemgmt.services.call_records import MAX_ID, StoredCallRecord
from voicemgmt.services.record_csv import records_to_csv
from voicemgmt.services.tokens import TokenOwner
from voicemgmt.web.calls_api import OperatorId, StatusIn
from voicemgmt.web.dependencies import AccountDep, ContainerDep, TokenOwnerDep
from voicemgmt.web.json_body import StrictJsonRoute
from voicemgmt.web.live_schemas import LiveSnapshot, OperatorStatusSet
from voicemgmt.web.plain_numbers import PlainFloat, PlainInt
from voicemgmt.web.record_schemas import (
    CallRecordPage,
    ChartsOut,
    FiguresOut,
    SupervisionFiguresOut,
    SupervisionRecordPage,
)
from voicemgmt.web.responses import (
    BASIC_AUTH,
    JSON_BODY,
    PARAMS,
    SUPERVISOR_ONLY,
    errors,
)

router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute)

# The JSON page is the response model; with format=csv (or Accept: text/csv), this instead.
CSV_TOO: dict[str, Any] = {
    "description": "The records: JSON by default; CSV with format=csv or Accept: text/csv "
    "(one row per record, the JSON fields as columns; a download).",
    "content": {"text/csv": {"schema": {"type": "string"}}},
}


async def _supervisor(owner: TokenOwnerDep) -> TokenOwner:
    if owner.user.user_type is not UserType.ADMIN:
        raise PermissionDenied("this needs a supervisor's session token")
    return owner


Supervisor = Annotated[TokenOwner, Depends(_supervisor)]
Since = Annotated[datetime | None, Query(description="from (included); default today 00:00 UTC")]
Until = Annotated[datetime | None, Query(description="to (excluded); default now")]
GroupFilter = Annotated[PlainInt | None, Query(ge=1, le=MAX_ID)]
ServiceLevel = Annotated[
    PlainFloat, Query(gt=0, le=3600, description="seconds: answered within it counts as served")
]


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or datetime.now(UTC)
    since = since or until.replace(hour=0, minute=0, second=0, microsecond=0)
    return _utc(since), _utc(until)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# supervisors: live


@router.get(
    "/supervision/live",
    tags=["supervisor"],
    summary="Live operators, calls, queues",
    response_model=LiveSnapshot,
    responses=errors(SUPERVISOR_ONLY),
)
async def live(me: Supervisor, container: ContainerDep) -> dict[str, Any]:
    return await container.routing.snapshot(me.user.account_id)


@router.put(
    "/supervision/operators/{id_op}/status",
    tags=["supervisor"],
    summary="Force an operator's status",
    response_model=OperatorStatusSet,
    responses=errors(SUPERVISOR_ONLY, JSON_BODY, 404),
)
async def force_status(
    id_op: OperatorId, body: StatusIn, me: Supervisor, container: ContainerDep
) -> dict[str, Any]:
    await container.directory.operator(me.user.account_id, id_op)  # 404 if not this account's
    await container.routing.set_presence(
        me.user.account_id, id_op, Presence(body.status), "supervisor"
    )
    return {"id_op": id_op, "status": body.status}


# supervisors: the day's figures, charts and records


@router.get(
    "/supervision/figures",
    tags=["supervisor"],
    summary="Figures per group, in total and per operator",
    response_model=SupervisionFiguresOut,
    responses=errors(SUPERVISOR_ONLY, PARAMS),
)
async def supervision_figures(
    me: Supervisor,
    container: ContainerDep,
    since: Since = None,
    until: Until = None,
    service_level: ServiceLevel = 20,
) -> dict[str, Any]:
    start, end = _window(since, until)
    account_id = me.user.account_id
    found = await _figures(container, account_id, start, end, service_level)
    operators = await container.call_records.operator_figures(account_id, since=start, until=end)
    return {**found, "operators": [o.to_json() for o in operators]}


@router.get(
    "/supervision/charts",
    tags=["supervisor"],
    summary="Inbound calls per time slice by outcome, and the wait-time distribution",
    response_model=ChartsOut,
    responses=errors(SUPERVISOR_ONLY, PARAMS),
)
async def supervision_charts(
    me: Supervisor,
    container: ContainerDep,
    since: Since = None,
    until: Until = None,
    bucket: Annotated[PlainInt, Query(ge=60, le=86400, description="seconds per slice")] = 900,
    id_group: GroupFilter = None,
) -> dict[str, Any]:
    start, end = _window(since, until)
    charts = await container.call_records.charts(
        me.user.account_id, since=start, until=end, bucket_seconds=bucket, id_group=id_group
    )
    return charts.to_json()


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """What a call-records request asks: the window, the filters, the page and the format."""

    window: tuple[datetime, datetime]
    filters: dict[str, Any]
    limit: int
    offset: int
    csv: bool

    async def find(self, container: Container, account_id: int) -> list[StoredCallRecord]:
        since, until = self.window
        return await container.call_records.records(
            account_id,
            since=since,
            until=until,
            limit=self.limit,
            offset=self.offset,
            **self.filters,
        )


async def record_query(
    request: Request,
    since: Since = None,
    until: Until = None,
    id_group: GroupFilter = None,
    id_op: Annotated[PlainInt | None, Query(ge=1, le=MAX_ID)] = None,
    outcome: Annotated[Outcome | None, Query()] = None,
    direction: Annotated[Literal["in", "out"] | None, Query()] = None,
    limit: Annotated[PlainInt, Query(ge=1, le=1000)] = 100,
    offset: Annotated[PlainInt, Query(ge=0, le=10_000_000)] = 0,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> RecordQuery:
    filters = {"id_group": id_group, "id_op": id_op, "outcome": outcome, "direction": direction}
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    return RecordQuery(_window(since, until), filters, limit, offset, wants_csv)


RecordQueryDep = Annotated[RecordQuery, Depends(record_query)]


@router.get(
    "/supervision/call-records",
    tags=["supervisor"],
    summary="The account's call records, as JSON or CSV",
    response_model=SupervisionRecordPage,
    responses={**errors(SUPERVISOR_ONLY, PARAMS), 200: CSV_TOO},
)
async def supervision_call_records(
    query: RecordQueryDep, me: Supervisor, container: ContainerDep
) -> Response | dict[str, Any]:
    """As ``/call-records``, with each JSON record's numbers as people read them
    (``display``) and ``total``, how many records match the filters."""
    account_id = me.user.account_id
    found = await query.find(container, account_id)
    if query.csv:
        return _csv(found)
    since, until = query.window
    total = await container.call_records.count(
        account_id, since=since, until=until, **query.filters
    )
    items = [{**r.to_json(), "display": _display(r)} for r in found]
    return {"items": items, "limit": query.limit, "offset": query.offset, "total": total}


def _display(record: StoredCallRecord) -> dict[str, str]:
    return {
        "caller_number": display_number(record.caller_number),
        "service_number": display_number(record.service_number),
    }


# the account


@router.get(
    "/call-records",
    tags=["call records"],
    summary="Call records, as JSON or CSV",
    response_model=CallRecordPage,
    responses={**errors(BASIC_AUTH, PARAMS), 200: CSV_TOO},
)
async def call_records(
    query: RecordQueryDep, account: AccountDep, container: ContainerDep
) -> Response | dict[str, Any]:
    found = await query.find(container, account.id)
    if query.csv:
        return _csv(found)
    items = [r.to_json() for r in found]
    return {"items": items, "limit": query.limit, "offset": query.offset}


@router.get(
    "/figures",
    tags=["call records"],
    summary="Per-group figures and the total",
    response_model=FiguresOut,
    responses=errors(BASIC_AUTH, PARAMS),
)
async def figures(
    account: AccountDep,
    container: ContainerDep,
    since: Since = None,
    until: Until = None,
    service_level: ServiceLevel = 20,
) -> dict[str, Any]:
    start, end = _window(since, until)
    return await _figures(container, account.id, start, end, service_level)


# shared by both


async def _figures(
    container: Container, account_id: int, since: datetime, until: datetime, threshold: float
) -> dict[str, Any]:
    rows = await container.call_records.figures(
        account_id, since=since, until=until, service_level_seconds=threshold
    )
    return {"service_level_seconds": threshold, "groups": [r.to_json() for r in rows]}


def _csv(found: list[StoredCallRecord]) -> Response:
    return Response(
        records_to_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="call-records.csv"'},
    )
