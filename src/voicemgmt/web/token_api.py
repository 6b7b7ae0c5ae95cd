"""Guide §1: ``POST /vm/token``, ``DELETE /vm/token/<token>``; and who holds a token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from voicemgmt.domain.directory import Operator, Supervisor, UserRef, UserType
from voicemgmt.services.tokens import parse_owner_hint, parse_token_request
from voicemgmt.web.dependencies import AccountDep, ContainerDep, TokenOwnerDep
from voicemgmt.web.events_ws import SESSION_REVOKED, token_fingerprint
from voicemgmt.web.json_body import json_body

router = APIRouter(prefix="/vm", tags=["SSO tokens (guide §1)"])

_TOKEN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "id_agent": {"type": "integer", "minimum": 1},
                        "id_admin": {"type": "integer", "minimum": 1},
                        "email": {"type": "string"},
                        "user_type": {"type": "string", "enum": ["agent", "admin"]},
                        "ip": {"type": "string"},
                        "keep": {"type": "integer", "enum": [0, 1]},
                    },
                    "additionalProperties": False,
                },
                "examples": {
                    "operator": {"value": {"id_agent": 12}},
                    "operator (legacy)": {"value": {"ip": "203.0.113.7", "id_agent": 12}},
                    "operator by email": {
                        "value": {"email": "ana@example.com", "user_type": "agent"}
                    },
                    "keep the live token": {"value": {"id_agent": 12, "keep": 1}},
                    "supervisor": {"value": {"ip": "203.0.113.7", "id_admin": 3}},
                    "supervisor by email": {
                        "value": {"email": "sam@example.com", "user_type": "admin"}
                    },
                },
            }
        },
    }
}


class TokenAnswer(BaseModel):
    status: int = 200
    token: str
    expires_at: datetime
    user_type: UserType
    id_agent: int | None = None
    id_admin: int | None = None
    kept: bool = False


class TokenInfo(BaseModel):
    status: int = 200
    user_type: UserType
    id_agent: int | None = None
    id_admin: int | None = None
    expires_at: datetime
    ip: str | None = None


class Me(BaseModel):
    user_type: UserType
    id_agent: int | None = None
    id_admin: int | None = None
    name: str
    email: str
    account: str
    expires_at: datetime


def _ids(user: UserRef) -> dict[str, int]:
    key = "id_agent" if user.user_type is UserType.AGENT else "id_admin"
    return {key: user.user_id}


@router.post(
    "/token",
    response_model=TokenAnswer,
    response_model_exclude_none=True,
    openapi_extra=_TOKEN_BODY,
    summary="Get an SSO token for an operator or a supervisor",
)
async def create_token(
    request: Request, account: AccountDep, container: ContainerDep
) -> TokenAnswer:
    token_request = parse_token_request(await json_body(request, required=True))
    issued = await container.tokens.issue(account, token_request)
    return TokenAnswer(
        token=issued.token,
        expires_at=issued.expires_at,
        user_type=issued.user.user_type,
        kept=issued.kept,
        **_ids(issued.user),
    )


@router.delete("/token/{token}", summary="Invalidate an SSO token (logout)")
async def delete_token(
    token: str, request: Request, account: AccountDep, container: ContainerDep
) -> dict[str, Any]:
    hint = parse_owner_hint(await json_body(request, required=False))
    user = await container.tokens.revoke(account, token, hint)
    # Pages bound to this token close at once (they compare the fingerprint, not the token).
    await container.bus.publish(
        account.id,
        SESSION_REVOKED,
        {"token": token_fingerprint(token), "user_type": user.user_type.value, **_ids(user)},
        datetime.now(UTC),
    )
    return {"status": 200, "deleted": True, "user_type": user.user_type, **_ids(user)}


@router.get(
    "/token/{token}",
    response_model=TokenInfo,
    response_model_exclude_none=True,
    summary="Who an SSO token of this account belongs to",
)
async def describe_token(token: str, account: AccountDep, container: ContainerDep) -> TokenInfo:
    owner = await container.tokens.describe(account, token)
    return TokenInfo(
        user_type=owner.user.user_type, expires_at=owner.expires_at, ip=owner.ip, **_ids(owner.user)
    )


@router.get(
    "/me",
    response_model=Me,
    response_model_exclude_none=True,
    summary="Who holds the session token sent as 'Authorization: Bearer <token>'",
)
async def who_am_i(owner: TokenOwnerDep, container: ContainerDep) -> Me:
    user = owner.user
    account = await container.directory.account(user.account_id)
    person: Operator | Supervisor = (
        await container.directory.operator(user.account_id, user.user_id)
        if user.user_type is UserType.AGENT
        else await container.directory.supervisor(user.account_id, user.user_id)
    )
    return Me(
        user_type=user.user_type,
        name=person.name,
        email=person.email,
        account=account.name,
        expires_at=owner.expires_at,
        **_ids(user),
    )
