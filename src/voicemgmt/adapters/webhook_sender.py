"""Sends one webhook request over HTTP (httpx), guarded against SSRF and slow receivers.

The target's name is resolved at each attempt and every address it resolves to is checked
(a name that once resolved to a public address may now point inside: DNS rebinding); the
request then goes to the checked address itself, with the original ``Host`` header and, for
HTTPS, the original name for SNI and certificate verification. Redirects are not followed
(a 3xx is a failure), the response body is read up to a small cap and dropped, and the whole
attempt is bounded in time whatever the receiver does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from voicemgmt.domain.errors import WebhookTargetRefused
from voicemgmt.domain.webhooks import check_url, refuse_non_public
from voicemgmt.services.webhook_delivery import SendResult

MAX_RESPONSE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class SendTimeouts:
    connect: float = 5.0
    read: float = 10.0
    total: float = 15.0


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (itself when it is a literal)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


class WebhookSender:
    """Attempts go through several small httpx clients (``CONNECTIONS_PER_CLIENT`` each),
    the least busy first: an httpx pool spends time on each request in proportion to its
    connections, so one pool of a hundred would cost several times more CPU per request."""

    CONNECTIONS_PER_CLIENT = 2

    def __init__(self, timeouts: SendTimeouts | None = None, *, max_connections: int = 100) -> None:
        self.timeouts = timeouts or SendTimeouts()
        per_client = self.CONNECTIONS_PER_CLIENT
        tls = httpx.create_ssl_context()  # one for all: loading the CA bundle is slow
        self._clients = [
            httpx.AsyncClient(
                verify=tls,
                follow_redirects=False,
                trust_env=False,  # never through a proxy from the environment
                timeout=httpx.Timeout(
                    connect=self.timeouts.connect,
                    read=self.timeouts.read,
                    write=self.timeouts.read,
                    pool=self.timeouts.total,
                ),
                limits=httpx.Limits(
                    max_connections=per_client, max_keepalive_connections=per_client
                ),
            )
            for _ in range(max(1, -(-max_connections // per_client)))
        ]
        self._busy = [0] * len(self._clients)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def send(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        allow_http: bool,
        allow_private: bool,
    ) -> SendResult:
        started = time.perf_counter()

        def result(ok: bool, code: int | None, error: str | None, kind: str) -> SendResult:
            latency = round((time.perf_counter() - started) * 1000)
            return SendResult(ok, latency, code, error, kind)

        try:
            target = check_url(url, allow_http=allow_http)
        except WebhookTargetRefused as exc:
            return result(False, None, exc.message, "refused")
        except Exception as exc:
            return result(False, None, str(exc), "refused")
        try:
            async with asyncio.timeout(self.timeouts.total):
                try:
                    addresses = await resolve(target.host, target.port)
                except OSError as exc:
                    return result(
                        False, None, f"cannot resolve {target.host}: {exc}", "connection_error"
                    )
                if not addresses:
                    return result(
                        False, None, f"{target.host} resolves to no address", "connection_error"
                    )
                if not allow_private:
                    try:
                        refuse_non_public(target.host, addresses)
                    except WebhookTargetRefused as exc:
                        return result(False, None, exc.message, "refused")
                return await self._post(url, target.host, addresses[0], body, headers, result)
        except TimeoutError:
            return result(
                False, None, f"no complete answer within {self.timeouts.total:g} s", "timeout"
            )

    async def _post(
        self,
        url: str,
        host: str,
        address: Address,
        body: bytes,
        headers: Mapping[str, str],
        result: Callable[[bool, int | None, str | None, str], SendResult],
    ) -> SendResult:
        original = httpx.URL(url)
        literal = f"[{address}]" if address.version == 6 else str(address)
        pinned = original.copy_with(host=literal.strip("[]"))
        request_headers = dict(headers)
        default_port = 443 if original.scheme == "https" else 80
        request_headers["Host"] = (
            original.host
            if original.port in (None, default_port)
            else f"{original.host}:{original.port}"
        )
        extensions = {"sni_hostname": host} if original.scheme == "https" else {}
        index = min(range(len(self._busy)), key=self._busy.__getitem__)
        client = self._clients[index]
        request = client.build_request(
            "POST", pinned, content=body, headers=request_headers, extensions=extensions
        )
        self._busy[index] += 1
        try:
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                return result(False, None, f"timed out ({type(exc).__name__})", "timeout")
            except httpx.HTTPError as exc:
                return result(False, None, f"{type(exc).__name__}: {exc}"[:500], "connection_error")
            try:
                received = 0
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received >= MAX_RESPONSE_BYTES:
                        break  # the rest is not read: closing drops the connection
            except httpx.HTTPError:
                pass  # the status is what counts
            finally:
                await response.aclose()
        finally:
            self._busy[index] -= 1
        code = response.status_code
        if 200 <= code < 300:
            return result(True, code, None, "success")
        if 300 <= code < 400:
            where = response.headers.get("location", "")[:200]
            return result(False, code, f"redirect to {where!r} not followed", "http_error")
        return result(False, code, f"HTTP {code}", "http_error")
