"""Call control: operators act with their session token (Bearer).

Operators: ``/api/v1/me/...`` — status, answer, decline, hang up, hold, transfer, click-to-call,
recent and missed calls; ``/api/v1/me/directory`` (the names a page shows) serves supervisors
too. What supervisors and the account read is in ``supervision_api``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from voicemgmt.domain import directory as dir_model
from voicemgmt.domain.directory import (
    Group,
    Operator,
    UserType,
    screen_pop_mode,
)
from voicemgmt.domain.errors import InvalidInput, PermissionDenied
from voicemgmt.domain.phone import display_number
from voicemgmt.domain.routing.model import GroupPolicy, Outcome, Presence
from voicemgmt.services.tokens import TokenOwner
from voicemgmt.web.dependencies import ContainerDep, TokenOwnerDep
from voicemgmt.web.errors import ErrorBody
from voicemgmt.web.json_body import StrictJsonRoute
from voicemgmt.web.live_schemas import (
    CallActionDone,
    ClickToCallPlaced,
    MyDirectory,
    MyState,
    StatusSet,
)
from voicemgmt.web.plain_numbers import PlainInt
from voicemgmt.web.record_schemas import MyCalls
from voicemgmt.web.responses import (
    BEARER,
    JSON_BODY,
    NOT_JSON_BODY,
    OPERATOR_ONLY,
    PARAMS,
    errors,
)

router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute)

CallId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
OperatorId = Annotated[PlainInt, Path(ge=1, le=2**31 - 1)]
MAX_ID = 2**31 - 1
MAX_LISTED = 1000


async def _agent(owner: TokenOwnerDep) -> TokenOwner:
    if owner.user.user_type is not UserType.AGENT:
        raise PermissionDenied("this needs an operator's session token")
    return owner


Agent = Annotated[TokenOwner, Depends(_agent)]


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StatusIn(StrictIn):
    status: Literal["online", "busy", "break", "offline"]


class TransferIn(StrictIn):
    id_op: int | None = Field(default=None, ge=1, le=MAX_ID)
    id_group: int | None = Field(default=None, ge=1, le=MAX_ID)


class ClickToCallIn(StrictIn):
    to: str = Field(min_length=1, max_length=32, examples=["33618220000"])
    ticket_id: str | None = Field(default=None, min_length=1, max_length=64)


# operators


@router.put(
    "/me/status",
    tags=["operator"],
    summary="Set my status",
    response_model=StatusSet,
    responses=errors(OPERATOR_ONLY, JSON_BODY),
)
async def set_my_status(body: StatusIn, me: Agent, container: ContainerDep) -> dict[str, str]:
    await container.routing.set_presence(
        me.user.account_id, me.user.user_id, Presence(body.status), "operator"
    )
    return {"status": body.status}


@router.get(
    "/me/state",
    tags=["operator"],
    summary="My status and my current call",
    response_model=MyState,
    responses=errors(OPERATOR_ONLY),
)
async def my_state(me: Agent, container: ContainerDep) -> dict[str, Any]:
    snapshot = await container.routing.snapshot(me.user.account_id)
    mine = next((o for o in snapshot["operators"] if o["id_op"] == me.user.user_id), None)
    calls = [
        c
        for c in snapshot["calls"]
        if c["id_op"] == me.user.user_id or me.user.user_id in c["ringing"]
    ]
    return {
        "operator": mine,
        "calls": calls,
        "seq": snapshot["seq"],
        "epoch": snapshot["epoch"],
        "now": snapshot["now"],
    }


@router.get(
    "/me/directory",
    tags=["operator", "supervisor"],
    summary="Names a page shows: groups, numbers and their labels, colleagues and their status",
    response_model=MyDirectory,
    responses=errors(BEARER),
)
async def my_directory(me: TokenOwnerDep, container: ContainerDep) -> dict[str, Any]:
    account_id = me.user.account_id
    directory = container.directory
    account = await directory.account(account_id)
    if me.user.user_type is UserType.AGENT:
        person: Operator | dir_model.Supervisor = await directory.operator(
            account_id, me.user.user_id
        )
    else:
        person = await directory.supervisor(account_id, me.user.user_id)
    groups = await directory.groups(account_id, limit=MAX_LISTED)
    numbers = await directory.numbers(account_id, limit=MAX_LISTED)
    operators = await directory.operators(account_id, limit=MAX_LISTED)
    live = await container.routing.snapshot(account_id)
    status = {o["id_op"]: o["status"] for o in live["operators"]}
    return {
        "me": {
            "user_type": me.user.user_type.value,
            "id": person.id,
            "name": person.name,
            "email": person.email,
        },
        "account": {
            "id": account.id,
            "name": account.name,
            "crm_url": account.crm_url,
            "screen_pop": screen_pop_mode(account),
            "allowed_origins": list(account.allowed_origins),
        },
        "groups": [
            {
                "id_group": g.id,
                "name": g.name,
                "wrap_up": _wrap_up(g),
                "crm_url": g.settings.get("crm_url"),
            }
            for g in groups
        ],
        "numbers": [
            {
                "e164": n.e164,
                "label": n.label,
                "id_group": n.group_id,
                "display": display_number(n.e164),
            }
            for n in numbers
        ],
        "operators": [
            {"id_op": o.id, "name": o.name, "status": status.get(o.id, "offline")}
            for o in operators
        ],
    }


def _wrap_up(group: Group) -> float:
    try:
        return GroupPolicy.from_settings(group.id, group.settings).wrap_up
    except (TypeError, ValueError, InvalidInput):  # unusable settings route with the defaults
        return GroupPolicy(group.id).wrap_up


def _call_action(name: str) -> Any:
    async def act(id_call: CallId, me: Agent, container: ContainerDep) -> dict[str, Any]:
        method = getattr(container.routing, name)
        await method(me.user.account_id, me.user.user_id, id_call)
        return {"id_call": id_call, "done": name}

    act.__name__ = f"{name}_call"
    return act


for _action in ("answer", "decline", "hang_up", "hold", "unhold"):
    router.add_api_route(
        f"/me/calls/{{id_call}}/{_action.replace('_', '')}",
        _call_action(_action),
        methods=["POST"],
        tags=["operator"],
        summary=f"{_action.replace('_', ' ').capitalize()} a call",
        response_model=CallActionDone,
        responses=errors(OPERATOR_ONLY, PARAMS, NOT_JSON_BODY, 404, 409),
    )


@router.post(
    "/me/calls/{id_call}/transfer",
    tags=["operator"],
    summary="Blind transfer",
    response_model=CallActionDone,
    responses=errors(OPERATOR_ONLY, JSON_BODY, 404, 409),
)
async def transfer_call(
    id_call: CallId, body: TransferIn, me: Agent, container: ContainerDep
) -> dict[str, Any]:
    if (body.id_op is None) == (body.id_group is None):
        raise InvalidInput("give exactly one of id_op or id_group")
    await container.routing.transfer(
        me.user.account_id,
        me.user.user_id,
        id_call,
        to_operator=body.id_op,
        to_group=body.id_group,
    )
    return {"id_call": id_call, "done": "transfer"}


@router.post(
    "/me/calls",
    tags=["operator"],
    status_code=201,
    summary="Click-to-call",
    response_model=ClickToCallPlaced,
    responses={
        **errors(OPERATOR_ONLY, JSON_BODY, 409),
        403: {
            "model": ErrorBody,
            "description": "Not an operator's token (`forbidden`), or the account's dial-out "
            "rules refuse the number (`number_not_allowed`, `details.reason`: "
            "`premium_not_allowed`, `international_not_allowed`, `prefix_not_allowed`, "
            "`invalid_number`, `dial_out_disabled`, `no_trunk`); no phone rang",
            "content": {
                "application/json": {
                    "example": {
                        "status": 403,
                        "err_code": "number_not_allowed",
                        "err_msg": "this number may not be dialled (premium_not_allowed)",
                        "details": {"reason": "premium_not_allowed"},
                    }
                }
            },
        },
    },
)
async def click_to_call(body: ClickToCallIn, me: Agent, container: ContainerDep) -> dict[str, Any]:
    account = await container.directory.account(me.user.account_id)
    caller_id = str(account.settings.get("caller_id", ""))
    call_id = await container.routing.click_to_call(
        me.user.account_id, me.user.user_id, body.to, caller_id, body.ticket_id
    )
    return {"id_call": call_id, "ticket_id": body.ticket_id}


@router.get(
    "/me/calls",
    tags=["operator"],
    summary="My recent calls, or missed calls",
    response_model=MyCalls,
    responses=errors(OPERATOR_ONLY, PARAMS),
)
async def my_calls(
    me: Agent,
    container: ContainerDep,
    kind: Annotated[Literal["recent", "missed"], Query()] = "recent",
    limit: Annotated[PlainInt, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    until = datetime.now(UTC)
    since = until - timedelta(days=7)
    account_id, operator_id = me.user.account_id, me.user.user_id
    if kind == "recent":
        found = await container.call_records.records(
            account_id, since=since, until=until, id_op=operator_id, limit=limit
        )
    else:
        operator = await container.directory.operator(account_id, operator_id)
        groups = {m.group_id for m in operator.memberships}
        candidates = await container.call_records.records(
            account_id, since=since, until=until, direction="in", limit=1000
        )
        found = [
            r
            for r in candidates
            if r.outcome in (Outcome.MISSED, Outcome.ABANDONED)
            and (r.id_group in groups or operator_id in r.operators_offered)
        ][:limit]
    return {"items": [_with_display(r.to_json()) for r in found]}


def _with_display(record: dict[str, Any]) -> dict[str, Any]:
    record["display"] = {
        "caller_number": display_number(record["caller_number"]),
        "service_number": display_number(record["service_number"]),
    }
    return record
