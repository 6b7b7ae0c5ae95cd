"""HTTP authentication: Basic for the account API (guide §1), Bearer tokens for pages."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from voicemgmt.domain.directory import Account
from voicemgmt.domain.errors import AuthenticationFailed, InvalidSessionToken, NoSuchToken
from voicemgmt.services.authentication import ApiAuthenticator
from voicemgmt.services.tokens import TokenOwner, TokenService

_TYPOGRAPHIC = "“”‘’«»"  # noqa: RUF001


def basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise AuthenticationFailed(
            "this API needs HTTP Basic auth with the account's API login and password"
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuthenticationFailed("the Basic credentials are not valid base64") from exc
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    login, colon, password = text.partition(":")
    if not colon:
        raise AuthenticationFailed("the Basic credentials must be login:password")
    return login, password


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authenticated_account(request: Request, authenticator: ApiAuthenticator) -> Account:
    login, password = basic_credentials(request)
    try:
        return await authenticator.authenticate(login, password, client=client_address(request))
    except AuthenticationFailed as exc:
        if any(c in login + password for c in _TYPOGRAPHIC):
            raise AuthenticationFailed(
                "wrong API login or password; they contain typographic quotes (“ ”), which a "
                'shell passes on as characters: write -u "login:pass" with straight quotes'
            ) from exc
        raise


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidSessionToken("send the session token as 'Authorization: Bearer <token>'")
    return token.strip()


async def token_owner(request: Request, tokens: TokenService) -> TokenOwner:
    try:
        return await tokens.resolve(bearer_token(request))
    except NoSuchToken as exc:
        raise InvalidSessionToken("the session token is unknown, expired or deleted") from exc
