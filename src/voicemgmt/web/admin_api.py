"""The admin REST API: one account's directory, with the account's API credentials (Basic)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from voicemgmt.domain.directory import Membership
from voicemgmt.services.directory import UNCHANGED
from voicemgmt.web.admin_schemas import (
    AccountOut,
    AccountPatch,
    GroupIn,
    GroupOut,
    GroupPatch,
    Listing,
    MembershipIn,
    NumberIn,
    NumberOut,
    NumberPatch,
    OperatorIn,
    OperatorOut,
    OperatorPatch,
    SipDeviceIn,
    SipDeviceOut,
    SupervisorIn,
    SupervisorOut,
    SupervisorPatch,
)
from voicemgmt.web.dependencies import AccountDep, ContainerDep
from voicemgmt.web.json_body import StrictJsonRoute
from voicemgmt.web.plain_numbers import PlainInt
from voicemgmt.web.responses import BASIC_AUTH, JSON_BODY, PARAMS, errors

router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute)

Limit = Annotated[PlainInt, Query(ge=1, le=1000)]
Offset = Annotated[PlainInt, Query(ge=0, le=10_000_000)]
Id = Annotated[PlainInt, Path(ge=1, le=2**31 - 1)]
E164 = Annotated[str, Path(min_length=1, max_length=32)]


def _memberships(groups: list[MembershipIn]) -> list[Membership]:
    return [Membership(g.id_group, g.priority) for g in groups]


# the account itself


@router.get(
    "/account",
    tags=["account"],
    summary="This account's settings",
    responses=errors(BASIC_AUTH),
)
async def get_account(account: AccountDep) -> AccountOut:
    return AccountOut.of(account)


@router.patch(
    "/account",
    tags=["account"],
    summary="Change CRM URL, allowed origins, settings",
    responses=errors(BASIC_AUTH, JSON_BODY),
)
async def patch_account(
    body: AccountPatch, account: AccountDep, container: ContainerDep
) -> AccountOut:
    given = body.model_fields_set
    crm_url = None
    if "crm_url" in given:
        crm_url = body.crm_url or ""
    updated = await container.directory.update_account(
        account.id,
        name=body.name,
        crm_url=crm_url,
        allowed_origins=body.allowed_origins,
        settings=body.settings,
        password=body.password,
    )
    return AccountOut.of(updated)


# operators


@router.get(
    "/operators",
    tags=["operators"],
    responses=errors(BASIC_AUTH, PARAMS),
)
async def list_operators(
    account: AccountDep, container: ContainerDep, limit: Limit = 100, offset: Offset = 0
) -> Listing[OperatorOut]:
    found = await container.directory.operators(account.id, limit=limit, offset=offset)
    return Listing(items=[OperatorOut.of(o) for o in found], limit=limit, offset=offset)


@router.post(
    "/operators",
    tags=["operators"],
    status_code=201,
    responses=errors(BASIC_AUTH, JSON_BODY, 409),
)
async def create_operator(
    body: OperatorIn, account: AccountDep, container: ContainerDep, response: Response
) -> OperatorOut:
    operator = await container.directory.create_operator(
        account.id,
        name=body.name,
        email=body.email,
        password=body.password,
        memberships=_memberships(body.groups),
    )
    response.headers["Location"] = f"/api/v1/operators/{operator.id}"
    return OperatorOut.of(operator)


@router.get(
    "/operators/{id_agent}",
    tags=["operators"],
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def get_operator(id_agent: Id, account: AccountDep, container: ContainerDep) -> OperatorOut:
    return OperatorOut.of(await container.directory.operator(account.id, id_agent))


@router.patch(
    "/operators/{id_agent}",
    tags=["operators"],
    responses=errors(BASIC_AUTH, JSON_BODY, 404, 409),
)
async def patch_operator(
    id_agent: Id, body: OperatorPatch, account: AccountDep, container: ContainerDep
) -> OperatorOut:
    operator = await container.directory.update_operator(
        account.id,
        id_agent,
        name=body.name,
        email=body.email,
        password=body.password,
        memberships=None if body.groups is None else _memberships(body.groups),
    )
    return OperatorOut.of(operator)


@router.delete(
    "/operators/{id_agent}",
    tags=["operators"],
    status_code=204,
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def delete_operator(id_agent: Id, account: AccountDep, container: ContainerDep) -> None:
    await container.directory.delete_operator(account.id, id_agent)


@router.put(
    "/operators/{id_agent}/sip-device",
    tags=["operators"],
    summary="Set a SIP phone",
    responses=errors(BASIC_AUTH, JSON_BODY, 404, 409),
)
async def put_sip_device(
    id_agent: Id, body: SipDeviceIn, account: AccountDep, container: ContainerDep
) -> SipDeviceOut:
    device = await container.sip_devices.set_device(
        account.id,
        id_agent,
        username=body.username,
        password=body.password,
        contact=body.contact,
        media_encryption=body.media_encryption,
    )
    return SipDeviceOut.of(device)


@router.get(
    "/operators/{id_agent}/sip-device",
    tags=["operators"],
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def get_sip_device(
    id_agent: Id, account: AccountDep, container: ContainerDep
) -> SipDeviceOut:
    return SipDeviceOut.of(await container.sip_devices.device(account.id, id_agent))


@router.delete(
    "/operators/{id_agent}/sip-device",
    tags=["operators"],
    status_code=204,
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def delete_sip_device(id_agent: Id, account: AccountDep, container: ContainerDep) -> None:
    await container.sip_devices.delete_device(account.id, id_agent)


# supervisors


@router.get(
    "/supervisors",
    tags=["supervisors"],
    responses=errors(BASIC_AUTH, PARAMS),
)
async def list_supervisors(
    account: AccountDep, container: ContainerDep, limit: Limit = 100, offset: Offset = 0
) -> Listing[SupervisorOut]:
    found = await container.directory.supervisors(account.id, limit=limit, offset=offset)
    return Listing(items=[SupervisorOut.of(s) for s in found], limit=limit, offset=offset)


@router.post(
    "/supervisors",
    tags=["supervisors"],
    status_code=201,
    responses=errors(BASIC_AUTH, JSON_BODY, 409),
)
async def create_supervisor(
    body: SupervisorIn, account: AccountDep, container: ContainerDep, response: Response
) -> SupervisorOut:
    supervisor = await container.directory.create_supervisor(
        account.id, name=body.name, email=body.email, password=body.password
    )
    response.headers["Location"] = f"/api/v1/supervisors/{supervisor.id}"
    return SupervisorOut.of(supervisor)


@router.get(
    "/supervisors/{id_admin}",
    tags=["supervisors"],
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def get_supervisor(
    id_admin: Id, account: AccountDep, container: ContainerDep
) -> SupervisorOut:
    return SupervisorOut.of(await container.directory.supervisor(account.id, id_admin))


@router.patch(
    "/supervisors/{id_admin}",
    tags=["supervisors"],
    responses=errors(BASIC_AUTH, JSON_BODY, 404, 409),
)
async def patch_supervisor(
    id_admin: Id, body: SupervisorPatch, account: AccountDep, container: ContainerDep
) -> SupervisorOut:
    supervisor = await container.directory.update_supervisor(
        account.id, id_admin, name=body.name, email=body.email, password=body.password
    )
    return SupervisorOut.of(supervisor)


@router.delete(
    "/supervisors/{id_admin}",
    tags=["supervisors"],
    status_code=204,
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def delete_supervisor(id_admin: Id, account: AccountDep, container: ContainerDep) -> None:
    await container.directory.delete_supervisor(account.id, id_admin)


# groups


@router.get(
    "/groups",
    tags=["groups"],
    responses=errors(BASIC_AUTH, PARAMS),
)
async def list_groups(
    account: AccountDep, container: ContainerDep, limit: Limit = 100, offset: Offset = 0
) -> Listing[GroupOut]:
    found = await container.directory.groups(account.id, limit=limit, offset=offset)
    return Listing(items=[GroupOut.of(g) for g in found], limit=limit, offset=offset)


@router.post(
    "/groups",
    tags=["groups"],
    status_code=201,
    responses=errors(BASIC_AUTH, JSON_BODY, 409),
)
async def create_group(
    body: GroupIn, account: AccountDep, container: ContainerDep, response: Response
) -> GroupOut:
    group = await container.directory.create_group(
        account.id, name=body.name, settings=body.settings
    )
    response.headers["Location"] = f"/api/v1/groups/{group.id}"
    return GroupOut.of(group)


@router.get(
    "/groups/{id_group}",
    tags=["groups"],
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def get_group(id_group: Id, account: AccountDep, container: ContainerDep) -> GroupOut:
    return GroupOut.of(await container.directory.group(account.id, id_group))


@router.patch(
    "/groups/{id_group}",
    tags=["groups"],
    responses=errors(BASIC_AUTH, JSON_BODY, 404, 409),
)
async def patch_group(
    id_group: Id, body: GroupPatch, account: AccountDep, container: ContainerDep
) -> GroupOut:
    group = await container.directory.update_group(
        account.id, id_group, name=body.name, settings=body.settings
    )
    return GroupOut.of(group)


@router.delete(
    "/groups/{id_group}",
    tags=["groups"],
    status_code=204,
    responses=errors(BASIC_AUTH, PARAMS, 404, 409),
)
async def delete_group(id_group: Id, account: AccountDep, container: ContainerDep) -> None:
    await container.directory.delete_group(account.id, id_group)


# numbers


@router.get(
    "/numbers",
    tags=["numbers"],
    responses=errors(BASIC_AUTH, PARAMS),
)
async def list_numbers(
    account: AccountDep, container: ContainerDep, limit: Limit = 100, offset: Offset = 0
) -> Listing[NumberOut]:
    found = await container.directory.numbers(account.id, limit=limit, offset=offset)
    return Listing(items=[NumberOut.of(n) for n in found], limit=limit, offset=offset)


@router.post(
    "/numbers",
    tags=["numbers"],
    status_code=201,
    responses=errors(BASIC_AUTH, JSON_BODY, 409),
)
async def create_number(
    body: NumberIn, account: AccountDep, container: ContainerDep, response: Response
) -> NumberOut:
    number = await container.directory.create_number(
        account.id, e164=body.e164, group_id=body.id_group, label=body.label, ivr=body.ivr
    )
    response.headers["Location"] = f"/api/v1/numbers/{number.e164}"
    return NumberOut.of(number)


@router.get(
    "/numbers/{e164}",
    tags=["numbers"],
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def get_number(e164: E164, account: AccountDep, container: ContainerDep) -> NumberOut:
    return NumberOut.of(await container.directory.number(account.id, e164))


@router.patch(
    "/numbers/{e164}",
    tags=["numbers"],
    responses=errors(BASIC_AUTH, JSON_BODY, 404),
)
async def patch_number(
    e164: E164, body: NumberPatch, account: AccountDep, container: ContainerDep
) -> NumberOut:
    number = await container.directory.update_number(
        account.id,
        e164,
        group_id=body.id_group,
        label=body.label,
        ivr=body.ivr if "ivr" in body.model_fields_set else UNCHANGED,
    )
    return NumberOut.of(number)


@router.delete(
    "/numbers/{e164}",
    tags=["numbers"],
    status_code=204,
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def delete_number(e164: E164, account: AccountDep, container: ContainerDep) -> None:
    await container.directory.delete_number(account.id, e164)
