"""Simulated calls for the embedded simulated switch: ``POST /api/v1/sim/calls``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from voicemgmt.adapters.switch.simulated import SimulatedSwitch
from voicemgmt.adapters.switch.simulation import SimulatedCall
from voicemgmt.domain.errors import NoSuchNumber, PermissionDenied
from voicemgmt.domain.phone import normalize_e164
from voicemgmt.web.dependencies import AccountDep, ContainerDep
from voicemgmt.web.json_body import StrictJsonRoute
from voicemgmt.web.live_schemas import SimulatedCallPlaced
from voicemgmt.web.responses import BASIC_AUTH, JSON_BODY, errors

router = APIRouter(prefix="/api/v1/sim", route_class=StrictJsonRoute, tags=["simulation"])


class SimCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    from_: str = Field(alias="from", min_length=1, max_length=32, examples=["33612345678"])
    to: str = Field(min_length=1, max_length=32, examples=["33170200200"])
    dtmf: str = Field(default="", max_length=64, pattern=r"^[0-9*#]*$")
    hangup_after: float | None = Field(default=None, gt=0, le=86_400)


@router.post(
    "/calls",
    status_code=201,
    summary="Place a simulated inbound call",
    response_model=SimulatedCallPlaced,
    responses=errors(BASIC_AUTH, JSON_BODY, 403, 404),
)
async def place_call(
    body: SimCallIn, account: AccountDep, container: ContainerDep
) -> dict[str, Any]:
    switch = container.switch
    if not isinstance(switch, SimulatedSwitch):
        raise PermissionDenied("simulated calls need the simulated switch (VM_SWITCH=simulated)")
    caller, called = normalize_e164(body.from_), normalize_e164(body.to)
    number = await container.routing.number(called)
    if number is None or number.account_id != account.id:
        raise NoSuchNumber(f"no number {called} in this account")
    call_id = await switch.place_call(
        SimulatedCall(caller, called, dtmf=body.dtmf, hangup_after=body.hangup_after)
    )
    return {"id_call": call_id, "from": caller, "to": called}
