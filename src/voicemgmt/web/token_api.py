"""Guide §1: ``POST /vm/token``, ``DELETE /vm/token/<token>``; who holds a token; and the
pages' own sessions: ``POST /vm/login`` (email and password: the banner's login form and
``crm.login_credential``) and ``POST /vm/logout`` (a page's logout button, with its token)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from voicemgmt.domain.directory import Operator, Supervisor, UserRef, UserType
from voicemgmt.domain.errors import InvalidSessionToken, NoSuchToken
from voicemgmt.services.tokens import parse_owner_hint, parse_token_request
from voicemgmt.web.auth import bearer_token, client_address
from voicemgmt.web.dependencies import AccountDep, ContainerDep, TokenOwnerDep
from voicemgmt.web.json_body import StrictJsonRoute, json_body
from voicemgmt.web.responses import (
    BASIC_AUTH,
    BEARER,
    BEARER_SECURITY,
    JSON_BODY,
    NOT_JSON_BODY,
    OutModel,
    errors,
)

router = APIRouter(prefix="/vm", tags=["SSO tokens (guide §1)"])
sessions_router = APIRouter(prefix="/vm", tags=["sessions"], route_class=StrictJsonRoute)

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
    kept: bool = Field(
        default=False, description="true when keep=1 gave back the user's live token"
    )


class TokenInfo(BaseModel):
    status: int = 200
    user_type: UserType
    id_agent: int | None = None
    id_admin: int | None = None
    expires_at: datetime
    ip: str | None = Field(default=None, description="the ip given when the token was made")


class TokenDeleted(OutModel):
    status: int = 200
    deleted: bool = Field(description="always true: the token no longer works")
    user_type: UserType
    id_agent: int | None = Field(default=None, description="the owner, if an operator")
    id_admin: int | None = Field(default=None, description="the owner, if a supervisor")


class Me(BaseModel):
    user_type: UserType
    id_agent: int | None = None
    id_admin: int | None = None
    name: str
    email: str
    account: str = Field(description="the account's name")
    expires_at: datetime = Field(description="when the token ends unless used (it slides)")


def _ids(user: UserRef) -> dict[str, int]:
    key = "id_agent" if user.user_type is UserType.AGENT else "id_admin"
    return {key: user.user_id}


@router.post(
    "/token",
    response_model=TokenAnswer,
    response_model_exclude_none=True,
    openapi_extra=_TOKEN_BODY,
    summary="Get an SSO token for an operator or a supervisor",
    responses=errors(BASIC_AUTH, 400, 404, 413, 415),
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


@router.delete(
    "/token/{token}",
    summary="Invalidate an SSO token (logout)",
    response_model=TokenDeleted,
    response_model_exclude_none=True,
    responses=errors(BASIC_AUTH, 400, 404, 413, 415),
)
async def delete_token(
    token: str, request: Request, account: AccountDep, container: ContainerDep
) -> dict[str, Any]:
    hint = parse_owner_hint(await json_body(request, required=False))
    user = await container.sessions.revoke(account, token, hint)
    return {"status": 200, "deleted": True, "user_type": user.user_type, **_ids(user)}


@router.get(
    "/token/{token}",
    response_model=TokenInfo,
    response_model_exclude_none=True,
    summary="Who an SSO token of this account belongs to",
    responses=errors(BASIC_AUTH, 404),
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
    responses=errors(BEARER),
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


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    login: str = Field(min_length=1, max_length=320, examples=["ana@example.com"])
    password: str = Field(min_length=1, max_length=256)
    user_type: Literal["agent", "admin"] = "agent"


@sessions_router.post(
    "/login",
    response_model=TokenAnswer,
    response_model_exclude_none=True,
    summary="Log in with an operator's (or supervisor's) email and password",
    responses=errors(401, 429, JSON_BODY),
)
async def log_in(body: LoginIn, request: Request, container: ContainerDep) -> TokenAnswer:
    address = client_address(request)
    issued = await container.sessions.log_in(
        body.login, body.password, UserType(body.user_type), client=address, ip=address
    )
    return TokenAnswer(
        token=issued.token,
        expires_at=issued.expires_at,
        user_type=issued.user.user_type,
        kept=False,
        **_ids(issued.user),
    )


@sessions_router.post(
    "/logout",
    summary="End the session whose token is sent as Bearer",
    openapi_extra=BEARER_SECURITY,
    response_model=TokenDeleted,
    response_model_exclude_none=True,
    responses=errors(BEARER, NOT_JSON_BODY),
)
async def log_out(request: Request, container: ContainerDep) -> dict[str, Any]:
    token = bearer_token(request)
    try:
        user = await container.sessions.log_out(token)
    except NoSuchToken as exc:
        raise InvalidSessionToken("the session token is unknown, expired or deleted") from exc
    return {"status": 200, "deleted": True, "user_type": user.user_type, **_ids(user)}
