"""SIP over TCP and TLS: listeners, connections, and the limits that keep strangers in check.

Built on asyncio streams and the standard ``ssl`` module. A connection is known by its
transport and its far end (``("TLS", (host, port))``): requests and responses to that peer go
back over it, which is how a phone behind NAT that registered over TLS is reached (RFC 5626's
flow reuse); when none is open, one is made (to a trunk, or a static contact). Limits, each
counted in ``refused`` / ``closed`` (metrics) and logged at debug level:

- connections at once, in all and per client address: one more is closed at once, before any
  TLS handshake is spent on it;
- a TLS handshake must end within ``handshake_timeout``;
- a message, once begun, must end within ``message_timeout`` (slowloris);
- a connection with no traffic for ``idle_timeout`` is closed, unless a phone registered over
  it (then it is held until the registration could have expired);
- a message larger than ``message.MAX_MESSAGE`` gets 413 (when its head is readable) and the
  connection is closed; one that cannot be framed closes it;
- a peer that does not read what we send (``max_buffered`` bytes waiting) is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from voicemgmt.adapters.switch.sip.framing import Broken, Frame, Ping, StreamFramer
from voicemgmt.adapters.switch.sip.message import Request, parse, response_to
from voicemgmt.adapters.switch.sip.transaction import TLS, Address
from voicemgmt.adapters.switch.sip.uri import SipSyntaxError

log = logging.getLogger(__name__)
_LENGTH_LINE = re.compile(rb"^(content-length|l)([ \t]*:)[^\r\n]*", re.IGNORECASE | re.MULTILINE)
Failed = Callable[[], None]


@dataclass(frozen=True, slots=True)
class StreamLimits:
    max_connections: int = 10_000
    max_per_address: int = 100
    idle_timeout: float = 120.0
    message_timeout: float = 10.0
    handshake_timeout: float = 5.0
    connect_timeout: float = 5.0
    max_buffered: int = 256 * 1024


class StreamSink(Protocol):
    def receive(self, data: bytes, source: Address, transport: str) -> None: ...


class Connection:
    def __init__(
        self,
        streams: StreamTransports,
        transport: str,
        peer: Address,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.streams = streams
        self.transport = transport
        self.peer = peer
        self.reader, self.writer = reader, writer
        loop = asyncio.get_running_loop()
        self.idle_until = loop.time() + streams.limits.idle_timeout
        self.closed = False

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > self.streams.limits.max_buffered:
            self.close("peer_not_reading")

    def keep_open_until(self, until: float) -> None:
        self.idle_until = max(self.idle_until, until)

    def close(self, reason: str | None = None, *, graceful: bool | None = None) -> None:
        """Close: after what was written is sent (``graceful``, the default without a
        ``reason``), or dropping the socket at once; a ``reason`` (a limit, bad input) is
        counted."""
        if self.closed:
            return
        self.closed = True
        if reason is not None:
            self.streams.closed[reason] += 1
            log.debug(
                "closing SIP %s connection from %s:%s: %s", self.transport, *self.peer, reason
            )
        if graceful if graceful is not None else reason is None:
            self.writer.close()
        else:
            self.writer.transport.abort()

    async def serve(self) -> None:
        """Read messages until the peer leaves or a limit closes the connection."""
        limits = self.streams.limits
        loop = asyncio.get_running_loop()
        framer = StreamFramer()
        began: float | None = None  # when the partial message being read began
        try:
            while not self.closed:
                now = loop.time()
                deadline = began + limits.message_timeout if began is not None else self.idle_until
                try:
                    data = await asyncio.wait_for(self.reader.read(65536), max(0.0, deadline - now))
                except TimeoutError:
                    self.close("message_timeout" if began is not None else "idle")
                    return
                if not data:
                    return
                now = loop.time()
                self.idle_until = max(self.idle_until, now + limits.idle_timeout)
                completed = False
                for item in framer.feed(data):
                    if isinstance(item, Frame):
                        completed = True
                        self.streams.sink.receive(item.data, self.peer, self.transport)
                    elif isinstance(item, Ping):
                        self.send(b"\r\n")
                    elif isinstance(item, Broken):
                        answered = item.reason == "too_large" and self._refuse_too_large(item.head)
                        self.close(item.reason, graceful=answered)  # the 413 goes out first
                        return
                began = (
                    (began if began is not None and not completed else now)
                    if framer.partial
                    else None
                )
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.debug("SIP %s connection from %s:%s: %s", self.transport, *self.peer, exc)
        finally:
            self.close()

    def _refuse_too_large(self, head: bytes) -> bool:
        """413 to a request whose head we read (its body we will not); whether one was sent."""
        if not head:
            return False
        try:
            request = parse(_LENGTH_LINE.sub(rb"\1\2 0", head))
        except SipSyntaxError:
            return False
        if not isinstance(request, Request) or request.method == "ACK":
            return False
        self.send(response_to(request, 413).serialize())
        return True


class StreamTransports:
    """Every TCP and TLS connection of the SIP transport, and the listeners."""

    def __init__(
        self,
        sink: StreamSink,
        limits: StreamLimits | None = None,
        client_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.sink = sink
        self.limits = limits or StreamLimits()
        self.client_tls = client_tls
        self.connections: dict[tuple[str, Address], Connection] = {}
        self._per_address: Counter[str] = Counter()
        self._open = 0
        self._pending: dict[tuple[str, Address], list[tuple[bytes, Failed | None]]] = {}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.refused: Counter[str] = Counter()  # connections refused, by limit
        self.closed: Counter[str] = Counter()  # connections closed by a limit or bad input

    async def listen(
        self, transport: str, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> Address:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._accepted(transport, tls, reader, writer)

        server = await asyncio.start_server(accepted, host, port, limit=65536)
        self._servers.append(server)
        sockname = server.sockets[0].getsockname()
        return (sockname[0], sockname[1])

    async def _accepted(
        self,
        transport: str,
        tls: ssl.SSLContext | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        peername = writer.get_extra_info("peername")
        peer: Address = (peername[0], peername[1])
        if self._open >= self.limits.max_connections:
            self.refused["max_connections"] += 1
            writer.transport.abort()
            return
        if self._per_address[peer[0]] >= self.limits.max_per_address:
            self.refused["max_per_address"] += 1
            writer.transport.abort()
            return
        self._count(peer[0], 1)
        try:
            if tls is not None:
                try:
                    await writer.start_tls(tls, ssl_handshake_timeout=self.limits.handshake_timeout)
                except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
                    self.closed["handshake_failed"] += 1
                    log.debug("TLS handshake with %s:%s failed: %s", *peer, exc)
                    writer.transport.abort()
                    return
            connection = Connection(self, transport, peer, reader, writer)
            self.connections[(transport, peer)] = connection
            try:
                await connection.serve()
            finally:
                if self.connections.get((transport, peer)) is connection:
                    del self.connections[(transport, peer)]
        finally:
            self._count(peer[0], -1)

    def _count(self, host: str, step: int) -> None:
        self._open += step
        self._per_address[host] += step
        if self._per_address[host] <= 0:
            del self._per_address[host]

    @property
    def open_connections(self) -> int:
        return self._open

    def keep_open(self, transport: str, address: Address, until: float) -> None:
        connection = self.connections.get((transport, address))
        if connection is not None:
            connection.keep_open_until(until)

    def send(
        self,
        transport: str,
        address: Address,
        data: bytes,
        failed: Failed | None,
        *,
        connect: bool = True,
    ) -> None:
        """Over the open connection to ``address``, or a new one (unless ``connect`` is False:
        a response whose connection has closed is dropped rather than sent back to a client's
        ephemeral port); ``failed`` if none can be."""
        key = (transport, address)
        connection = self.connections.get(key)
        if connection is not None and not connection.closed:
            connection.send(data)
            return
        if not connect:
            log.debug("no %s connection to %s:%s any more: response dropped", transport, *address)
            return
        pending = self._pending.get(key)
        if pending is not None:
            pending.append((data, failed))
            return
        self._pending[key] = [(data, failed)]
        self._spawn(self._connect(transport, address))

    async def _connect(self, transport: str, address: Address) -> None:
        key = (transport, address)
        host, port = address
        tls = self.client_tls if transport == TLS else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                    ssl_handshake_timeout=self.limits.handshake_timeout if tls else None,
                    limit=65536,
                ),
                self.limits.connect_timeout + self.limits.handshake_timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError, ConnectionError) as exc:
            log.warning("could not connect to %s:%s over %s: %s", host, port, transport, exc)
            for _, failed in self._pending.pop(key, []):
                if failed is not None:
                    failed()
            return
        connection = Connection(self, transport, address, reader, writer)
        self.connections[key] = connection
        self._count(host, 1)
        for data, _ in self._pending.pop(key, []):
            connection.send(data)
        try:
            await connection.serve()
        finally:
            if self.connections.get(key) is connection:
                del self.connections[key]
            self._count(host, -1)

    def _spawn(self, coroutine: object) -> None:
        assert asyncio.iscoroutine(coroutine)
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for connection in list(self.connections.values()):
            connection.close(graceful=False)  # a TLS goodbye would outlive the event loop
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.sleep(0.01)  # the aborted transports close their sockets
