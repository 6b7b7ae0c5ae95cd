"""``sim``: talking to the server — its refusals as messages, and the requests of one load.

A request of the set-up fails the run (``ApiError``, one line for the user); a request of the
load itself never raises: an unexpected answer is counted by kind, with its first example.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

REQUEST_TIMEOUT = 30.0
PAGE = 1000


class ApiError(Exception):
    """The server refused, or could not be reached; ``message`` is what to tell the user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def refusal(response: httpx.Response) -> ApiError:
    """The server's own ``err_msg`` when it gives one."""
    message: str | None = None
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict) and body.get("err_msg"):
            message = str(body["err_msg"])
    if message is None:
        request = response.request
        message = f"HTTP {response.status_code} from {request.method} {request.url.path}"
    return ApiError(message, response.status_code)


def unreachable(base_url: str, exc: httpx.HTTPError) -> ApiError:
    if isinstance(exc, httpx.TimeoutException):
        return ApiError(f"no answer from {base_url} within {REQUEST_TIMEOUT:.0f} s")
    reason = str(exc) or type(exc).__name__
    return ApiError(f"cannot reach {base_url} ({reason})")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LoadRequests:
    """The requests of one load over one client, at most ``concurrency`` in flight."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, concurrency: int) -> None:
        self.client = client
        self.base_url = base_url
        self.slots = asyncio.Semaphore(concurrency)
        self.errors: Counter[str] = Counter()
        self.error_examples: dict[str, str] = {}  # the first of each kind
        self.loop = asyncio.get_running_loop()

    async def send(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        expected: Iterable[int] = (200,),
        sent: list[float] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """A request of the load: unexpected answers are counted, never raised.

        ``sent`` receives the loop time at which the request left (once a slot was free).
        """
        async with self.slots:
            if sent is not None:
                sent.append(self.loop.time())
            try:
                response = await self.client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                self.errors[f"{kind}: {type(exc).__name__}"] += 1
                return None
        if response.status_code not in expected:
            problem = f"{kind}: HTTP {response.status_code}"
            self.errors[problem] += 1
            self.error_examples.setdefault(problem, refusal(response).message)
            return None
        return response

    async def setup(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request of the set-up: any failure is fatal (``ApiError``)."""
        async with self.slots:
            try:
                response = await self.client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise unreachable(self.base_url, exc) from None
        if response.status_code not in (200, 201):
            raise refusal(response)
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"unexpected answer to {method} {path}: {response.text[:200]}") from None

    async def listing(self, path: str, auth: tuple[str, str]) -> list[dict[str, Any]]:
        """Every item of a paged listing."""
        items: list[dict[str, Any]] = []
        while True:
            page = await self.setup(
                "GET", path, params={"limit": PAGE, "offset": len(items)}, auth=auth
            )
            items.extend(page["items"])
            if len(page["items"]) < PAGE:
                return items
