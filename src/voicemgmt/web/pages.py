"""The pages the product serves: the operator banner, the supervisor page, ``cnx.js``, the
example CRM, assets.

- ``/operateurs/index.htm`` (guide §1.1) and ``/superviseur/index.htm`` (§1.3) are static
  HTML; all they show comes from the API and the event stream, with the token of
  ``?token_session=``. Each answer carries a
  Content-Security-Policy: scripts and styles from the product only, no inline code, and
  ``frame-ancestors`` limited to the origins the token's account allows (the CRM pages that
  may embed it), plus the product itself.
- Without a valid token (the login form, which the guide's ``crm.login_credential`` fills
  inside the CRM's iframe), the account is not known yet, and the policy names no tenant:
  ``frame-ancestors`` is ``'self'`` plus, only when the request's ``Referer`` (the embedding
  page; browsers send its origin by default) is an origin some account allows, that one
  origin. Nobody learns the list of customers; a visitor can only test one origin at a time,
  the way loading the page from it would. Once logged in, the page itself checks its embedder
  against its own account's origins.
- ``/static/…`` holds the scripts, styles and sounds, served as files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from voicemgmt.bootstrap import Container
from voicemgmt.domain.errors import NoSuchAccount, NoSuchToken
from voicemgmt.services.directory import DirectoryChange
from voicemgmt.web.dependencies import ContainerDep
from voicemgmt.web.responses import media

STATIC_DIR = Path(__file__).parent / "static"
ANY_ACCOUNT_ORIGINS_SECONDS = 5.0
HTML = "text/html; charset=utf-8"

router = APIRouter(tags=["pages"])
_PAGE = media(HTML, "The page (static HTML; everything it shows comes from the API)")


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string"}, "description": description}


_TOKEN_SESSION = _query("token_session", "the SSO token of POST /vm/token; else a login form")
_BANNER_QUERY = {
    "parameters": [
        _TOKEN_SESSION,
        _query("fiche_num", "a number to pre-fill for a call (guide §2), E.164 digits"),
    ]
}
_SUPERVISOR_QUERY = {
    "parameters": [_TOKEN_SESSION, _query("lang", "en or fr; else the browser's language")]
}


def content_security_policy(frame_ancestors: list[str], *, frames: bool = False) -> str:
    ancestors = " ".join(["'self'", *frame_ancestors])
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self'",
            "font-src 'self'",
            "connect-src 'self'",
            "frame-src 'self'" if frames else "frame-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {ancestors}",
        )
    )


class AnyAccountOrigins:
    """Every account's allowed origins, as a set to test one origin against (never listed),
    recomputed at most every few seconds, and at once after an account changed in this
    process (an origin just allowed works right away)."""

    def __init__(self) -> None:
        self._value: frozenset[str] = frozenset()
        self._at = -1e9

    async def directory_changed(self, change: DirectoryChange) -> None:
        if change.kind == "account":
            self._at = -1e9

    async def allows(self, container: Container, origin: str) -> bool:
        if time.monotonic() - self._at > ANY_ACCOUNT_ORIGINS_SECONDS:
            accounts = await container.directory.accounts()
            self._value = frozenset(o for a in accounts for o in a.allowed_origins)
            self._at = time.monotonic()
        return origin in self._value


def _referring_origin(request: Request) -> str | None:
    try:
        parts = urlsplit(request.headers.get("referer", ""))
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


async def _frame_ancestors(request: Request, container: Container) -> list[str]:
    token = request.query_params.get("token_session", "")
    if token:
        try:
            owner = await container.tokens.resolve(token)
            account = await container.directory.account(owner.user.account_id)
        except (NoSuchToken, NoSuchAccount):
            pass
        else:
            return list(account.allowed_origins)
    origin = _referring_origin(request)
    cache: AnyAccountOrigins = request.app.state.any_account_origins
    if origin is not None and await cache.allows(container, origin):
        return [origin]
    return []


async def _page(request: Request, container: Container, name: str) -> Response:
    response = FileResponse(STATIC_DIR / name, media_type=HTML)
    response.headers["Content-Security-Policy"] = content_security_policy(
        await _frame_ancestors(request, container)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(
    "/operateurs/index.htm",
    summary="The operator banner (guide §1.1), for the CRM's iframe",
    responses=_PAGE,
    response_class=Response,
    openapi_extra=_BANNER_QUERY,
)
async def operator_banner(request: Request, container: ContainerDep) -> Response:
    return await _page(request, container, "operateurs/index.html")


@router.get(
    "/superviseur/index.htm",
    summary="The supervisor page (guide §1.3)",
    responses=_PAGE,
    response_class=Response,
    openapi_extra=_SUPERVISOR_QUERY,
)
async def supervisor_page(request: Request, container: ContainerDep) -> Response:
    """The supervisor page (guide §1.3), with a supervisor's ``?token_session=``."""
    return await _page(request, container, "superviseur/index.html")


@router.get(
    "/example/index.htm",
    summary="An example CRM page using cnx.js beside the banner",
    responses=_PAGE,
    response_class=Response,
)
async def example_crm() -> Response:
    """An example CRM page using ``cnx.js`` beside the banner (guide §4)."""
    response = FileResponse(STATIC_DIR / "example/index.html", media_type=HTML)
    response.headers["Content-Security-Policy"] = content_security_policy([], frames=True)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(
    "/cnx.js",
    summary="cnx.js, the CRM-side SDK (guide §4)",
    responses=media("text/javascript; charset=utf-8", "The script"),
    response_class=Response,
)
async def cnx_script() -> Response:
    """The CRM-side SDK (guide §4), included by the CRM's pages from this server."""
    return FileResponse(
        STATIC_DIR / "cnx.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
    )


@router.get(
    "/cnx.d.ts",
    summary="cnx.js's TypeScript declarations",
    responses=media("application/typescript; charset=utf-8", "TypeScript declarations"),
    response_class=Response,
)
async def cnx_declarations() -> Response:
    """The TypeScript declarations of ``cnx.js``, for CRMs written in TypeScript."""
    return FileResponse(
        STATIC_DIR / "cnx.d.ts",
        media_type="application/typescript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
    )


@router.get("/example/", include_in_schema=False)
@router.get("/example", include_in_schema=False)
async def example_crm_index(request: Request) -> Response:
    return RedirectResponse(_same_query("/example/index.htm", request))


@router.get("/operateurs/", include_in_schema=False)
@router.get("/operateurs", include_in_schema=False)
async def operator_banner_index(request: Request) -> Response:
    return RedirectResponse(_same_query("/operateurs/index.htm", request))


@router.get("/superviseur/", include_in_schema=False)
@router.get("/superviseur", include_in_schema=False)
async def supervisor_page_index(request: Request) -> Response:
    return RedirectResponse(_same_query("/superviseur/index.htm", request))


def _same_query(path: str, request: Request) -> str:
    query = request.url.query
    return f"{path}?{query}" if query else path
