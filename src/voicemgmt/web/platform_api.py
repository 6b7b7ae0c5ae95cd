"""The platform API (SPEC §6): call history, operators, service numbers, IVR variables.

The shapes teams moving from the platform the guide belongs to expect, over this product's
directory, routing state and call records. HTTP Basic auth with the account's API login and
password, as ``/vm/token``; JSON; errors ``{status, err_code, err_msg, details}``. Another
account's operator, number or call is answered as unknown (404). See ``docs/platform-api.md``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query

from voicemgmt.bootstrap import Container
from voicemgmt.domain.errors import InvalidInput, NoSuchCall
from voicemgmt.domain.phone import normalize_e164
from voicemgmt.services.call_records import MAX_CALL_ID, MAX_IDS, MAX_WINDOW
from voicemgmt.web.dependencies import AccountDep, ContainerDep
from voicemgmt.web.errors import ErrorBody
from voicemgmt.web.json_body import StrictJsonRoute
from voicemgmt.web.plain_numbers import PlainInt
from voicemgmt.web.platform_schemas import (
    MAX_OFFSET,
    CallIdsIn,
    CallOut,
    CallsIn,
    CallsOut,
    CallVariablesOut,
    OperatorFilterIn,
    OperatorsOut,
    OperatorStatusesOut,
    OperatorStatusOut,
    PlatformOperatorOut,
    ServiceNumberIn,
    ServiceNumberOut,
    ServiceNumberPut,
    ServiceNumbersOut,
    VariablesOut,
    parse_date,
)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        400: "Malformed request: bad JSON, unknown field, wrong type, bad date or number",
        401: "Missing or wrong Basic credentials",
        404: "No such operator, number or call in this account",
        409: "The number is already in service",
        413: "The body is too large",
        415: "The body is not JSON",
        429: "Too many failed logins; retry after Retry-After seconds",
    }
    return {
        s: {"model": ErrorBody, "description": meaning[s]} for s in sorted({401, 429, *statuses})
    }


router = APIRouter(route_class=StrictJsonRoute, tags=["platform API"])

Id = Annotated[PlainInt, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[PlainInt, Query(ge=1, le=1000)]
Offset = Annotated[PlainInt, Query(ge=0, le=MAX_OFFSET)]


# call history


def _window(body: CallsIn) -> tuple[datetime, datetime]:
    since = parse_date(body.date, "date")
    until = parse_date(body.date_end, "date_end", end=True)
    if until <= since:
        raise InvalidInput("date_end must be after date", field="date_end")
    if until - since > MAX_WINDOW:
        raise InvalidInput(
            f"date_end must be at most {MAX_WINDOW.days} days after date", field="date_end"
        )
    return since, until


def _number_filter(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return normalize_e164(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc.message}", field=field) from None


async def _calls(container: Container, account_id: int, body: CallsIn, direction: str) -> CallsOut:
    since, until = _window(body)
    ours = _number_filter(body.service_number, "service_number")
    theirs = _number_filter(body.caller_number, "caller_number")
    # Records keep numbers as the switch saw them: an outbound call's caller is the account.
    called, calling = (ours, theirs) if direction == "in" else (theirs, ours)
    service = container.call_records
    found = await service.records(
        account_id,
        since=since,
        until=until,
        direction=direction,
        service_number=called,
        caller_number=calling,
        limit=body.limit,
        offset=body.offset,
    )
    total = await service.count(
        account_id,
        since=since,
        until=until,
        direction=direction,
        service_number=called,
        caller_number=calling,
    )
    return CallsOut(
        calls=[CallOut.of(r) for r in found], total=total, limit=body.limit, offset=body.offset
    )


@router.post(
    "/vm/calls/in",
    summary="Incoming calls of a period (at most 31 days)",
    responses=_errors(400, 413, 415),
)
async def calls_in(body: CallsIn, account: AccountDep, container: ContainerDep) -> CallsOut:
    return await _calls(container, account.id, body, "in")


@router.post(
    "/vm/calls/out",
    summary="Outgoing (click-to-call) calls of a period (at most 31 days)",
    responses=_errors(400, 413, 415),
)
async def calls_out(body: CallsIn, account: AccountDep, container: ContainerDep) -> CallsOut:
    return await _calls(container, account.id, body, "out")


# operators


@router.get("/vm/operators", summary="The account's operators, by id", responses=_errors(400))
async def operators(
    account: AccountDep, container: ContainerDep, limit: Limit = 100, offset: Offset = 0
) -> OperatorsOut:
    found = await container.directory.operators(account.id, limit=limit, offset=offset)
    return OperatorsOut(
        operators=[PlatformOperatorOut.of(o) for o in found], limit=limit, offset=offset
    )


@router.post(
    "/vm/operators",
    summary="The account's operators with this email and/or login",
    responses=_errors(400, 413, 415),
)
async def find_operators(
    body: OperatorFilterIn, account: AccountDep, container: ContainerDep
) -> OperatorsOut:
    """An operator's login is their email, so both filters name the same person: given
    together, they must agree. Without a filter, the first page of operators."""
    if body.email is None and body.login is None:
        found = await container.directory.operators(account.id, limit=100, offset=0)
        return OperatorsOut(
            operators=[PlatformOperatorOut.of(o) for o in found], limit=100, offset=0
        )
    wanted = {v.strip().lower() for v in (body.email, body.login) if v is not None}
    match = None
    if len(wanted) == 1:
        match = await container.directory.operator_by_email(account.id, wanted.pop())
    return OperatorsOut(
        operators=[] if match is None else [PlatformOperatorOut.of(match)], limit=100, offset=0
    )


@router.get("/vm/operators/{id}", summary="One operator", responses=_errors(400, 404))
async def operator(id: Id, account: AccountDep, container: ContainerDep) -> PlatformOperatorOut:
    return PlatformOperatorOut.of(await container.directory.operator(account.id, id))


@router.get(
    "/vm/operators_init",
    summary="Every operator's current status, from the live routing state",
    responses=_errors(),
)
async def operators_init(account: AccountDep, container: ContainerDep) -> OperatorStatusesOut:
    live = await container.routing.snapshot(account.id)
    return OperatorStatusesOut(
        operators=[
            OperatorStatusOut(
                id=o["id_op"],
                status=o["status"],
                presence=o["presence"],
                activity=o["activity"],
                status_since=o["status_since"],
                id_appel=o["id_call"],
            )
            for o in live["operators"]
        ],
        date=live["now"],
    )


# service numbers


@router.get("/vm/service_numbers", summary="The account's numbers", responses=_errors(400))
async def service_numbers(
    account: AccountDep, container: ContainerDep, limit: Limit = 100, offset: Offset = 0
) -> ServiceNumbersOut:
    found = await container.directory.numbers(account.id, limit=limit, offset=offset)
    return ServiceNumbersOut(
        service_numbers=[ServiceNumberOut.of(n) for n in found], limit=limit, offset=offset
    )


@router.post(
    "/vm/service_numbers",
    status_code=201,
    summary="Add a number, routed to a group",
    responses=_errors(400, 409, 413, 415),
)
async def add_service_number(
    body: ServiceNumberIn, account: AccountDep, container: ContainerDep
) -> ServiceNumberOut:
    number = await container.directory.create_number(
        account.id,
        e164=body.service_number,
        group_id=body.id_group,
        label=body.label,
        state=body.state,
        record=body.record,
    )
    return ServiceNumberOut.of(number)


@router.put(
    "/vm/service_numbers",
    summary="Change a number: state (active / suspended), record flag, group, label",
    responses=_errors(400, 404, 413, 415),
)
async def change_service_number(
    body: ServiceNumberPut, account: AccountDep, container: ContainerDep
) -> ServiceNumberOut:
    """A suspended number takes no new call from then on (calls in progress go on)."""
    number = await container.directory.update_number(
        account.id,
        body.service_number,
        group_id=body.id_group,
        label=body.label,
        state=body.state,
        record=body.record,
    )
    return ServiceNumberOut.of(number)


# IVR variables


def _split_ids(raw: list[str]) -> list[str]:
    ids = [part.strip() for text in raw for part in text.split(",") if part.strip()]
    if not ids:
        raise InvalidInput("call_ids must name at least one call", field="call_ids")
    if len(ids) > MAX_IDS:
        raise InvalidInput(f"at most {MAX_IDS} call ids at a time", field="call_ids")
    return ids


async def _variables(container: Container, account_id: int, ids: list[str]) -> VariablesOut:
    if any(not 1 <= len(i) <= MAX_CALL_ID for i in ids):
        raise InvalidInput(f"a call id has 1 to {MAX_CALL_ID} characters", field="call_ids")
    wanted = list(dict.fromkeys(ids))
    live = {c["id_call"]: c for c in (await container.routing.snapshot(account_id))["calls"]}
    found = {
        i: CallVariablesOut(id_appel=i, variables=dict(live[i]["variables"]), live=True)
        for i in wanted
        if i in live
    }
    rest = [i for i in wanted if i not in found]
    for record in await container.call_records.by_ids(account_id, rest) if rest else []:
        found[record.id_call] = CallVariablesOut(
            id_appel=record.id_call, variables=dict(record.variables), live=False
        )
    unknown = [i for i in wanted if i not in found]
    if unknown:
        raise NoSuchCall(f"no call {unknown[0]} in this account", unknown=unknown)
    return VariablesOut(calls=[found[i] for i in wanted])


@router.get(
    "/voice-management/variables",
    summary="The IVR variables of calls, live or ended",
    responses=_errors(400, 404),
)
async def variables(
    account: AccountDep,
    container: ContainerDep,
    call_ids: Annotated[
        list[str], Query(description="ids separated by commas, or the parameter repeated")
    ],
) -> VariablesOut:
    if len(call_ids) > MAX_IDS or sum(len(t) for t in call_ids) > MAX_IDS * (MAX_CALL_ID + 1):
        raise InvalidInput("call_ids is too long", field="call_ids")
    return await _variables(container, account.id, _split_ids(call_ids))


@router.post(
    "/voice-management/variables",
    summary="The IVR variables of calls, live or ended (ids in the body)",
    responses=_errors(400, 404, 413, 415),
)
async def variables_of(
    body: Annotated[
        list[str] | CallIdsIn, Body(description='a JSON list of call ids, or {"call_ids": [...]}')
    ],
    account: AccountDep,
    container: ContainerDep,
) -> VariablesOut:
    ids = body.call_ids if isinstance(body, CallIdsIn) else body
    if not ids or len(ids) > MAX_IDS:
        raise InvalidInput(f"give 1 to {MAX_IDS} call ids", field="call_ids")
    return await _variables(container, account.id, ids)
