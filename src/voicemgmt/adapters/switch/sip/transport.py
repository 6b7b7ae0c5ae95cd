"""The SIP transport: UDP, TCP and TLS, the transaction layer, and one timer for all its
transactions.

Messages from every transport (``udp``, ``stream``) are parsed (a malformed one is counted and
dropped: answering junk would make the platform a reflector; nothing malformed reaches the
driver), matched to transactions, and what is new goes to the ``SipHandler``. Requests the
driver sends get their responses and their timeout through the callback given with them; a
request that no connection could carry gets a 503 made here (RFC 3261 §8.1.3.1).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Protocol

from voicemgmt.adapters.switch.sip.message import (
    MAX_MESSAGE,
    Request,
    Response,
    parse,
    response_to,
)
from voicemgmt.adapters.switch.sip.stream import StreamLimits, StreamTransports
from voicemgmt.adapters.switch.sip.transaction import (
    UDP,
    Address,
    ClientTransaction,
    Send,
    ServerTransaction,
)
from voicemgmt.adapters.switch.sip.transaction_layer import (
    ClientTimeout,
    Event,
    IncomingRequest,
    IncomingResponse,
    ServerTimeout,
    TransactionLayer,
)
from voicemgmt.adapters.switch.sip.udp import UdpEndpoint
from voicemgmt.adapters.switch.sip.uri import SipSyntaxError

log = logging.getLogger(__name__)

ResponseCallback = Callable[[Response | None], None]  # None: the transaction timed out


class SipHandler(Protocol):
    def request_received(self, incoming: IncomingRequest) -> None: ...

    def server_timed_out(self, transaction: ServerTransaction) -> None: ...


class SipObserver(Protocol):
    """Told of transactions started and responses sent or received (metrics)."""

    def sip_transaction(self, role: str, method: str) -> None: ...

    def sip_response(self, direction: str, method: str, status: int) -> None: ...


class _Unobserved:
    def sip_transaction(self, role: str, method: str) -> None:
        pass

    def sip_response(self, direction: str, method: str, status: int) -> None:
        pass


class SipTransport:
    def __init__(
        self,
        handler: SipHandler,
        clock: Callable[[], float] = time.monotonic,
        observer: SipObserver | None = None,
        *,
        limits: StreamLimits | None = None,
        client_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.observer: SipObserver = observer or _Unobserved()
        self.layer = TransactionLayer()
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._callbacks: dict[int, ResponseCallback] = {}
        self.malformed = 0
        self.udp = UdpEndpoint(self)
        self.streams = StreamTransports(self, limits, client_tls)
        self.ports: dict[str, int] = {}  # where each transport listens

    @property
    def address(self) -> Address:
        """Where SIP over UDP is received."""
        return self.udp.address

    async def listen(self, host: str, port: int) -> None:
        """SIP over UDP."""
        self.ports[UDP] = (await self.udp.listen(host, port))[1]

    async def listen_stream(
        self, transport: str, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> Address:
        """SIP over TCP (``tls`` None) or TLS."""
        address = await self.streams.listen(transport, host, port, tls)
        self.ports[transport] = address[1]
        return address

    def port_of(self, transport: str) -> int:
        """Our port for ``transport`` (what Via and Contact name); UDP's if it has none."""
        return self.ports.get(transport) or self.address[1]

    def keep_open(self, transport: str, address: Address, seconds: float) -> None:
        """A phone registered over this connection: hold it open that long (if a stream)."""
        if transport != UDP:
            loop = asyncio.get_running_loop()
            self.streams.keep_open(transport, address, loop.time() + seconds)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.udp.close()

    async def aclose(self) -> None:
        self.close()
        await self.streams.close()

    # sending -------------------------------------------------------------------------------

    def send_request(
        self,
        request: Request,
        address: Address,
        callback: ResponseCallback,
        transport: str = UDP,
    ) -> ClientTransaction:
        transaction, sends = self.layer.send_request(request, address, self._clock(), transport)
        self.observer.sip_transaction("client", request.method)
        self._callbacks[id(transaction)] = callback
        self._put(sends, lambda: self._transport_failed(transaction))
        self._rearm()
        return transaction

    def respond(self, transaction: ServerTransaction, response: Response) -> None:
        self._put(self.layer.respond(transaction, response, self._clock()))
        self.observer.sip_response("sent", response.cseq[1], response.status)
        self._rearm()

    def send_stateless(
        self, message: Request | Response, address: Address, transport: str = UDP
    ) -> None:
        """An ACK for a 2xx, or a response outside any transaction."""
        self._put([Send(message, address, transport)])
        if isinstance(message, Response):
            self.observer.sip_response("sent", message.cseq[1], message.status)

    def _transport_failed(self, transaction: ClientTransaction) -> None:
        if transaction.terminated:
            return
        self.layer.fail(transaction)
        callback = self._callbacks.pop(id(transaction), None)
        if callback is not None:
            callback(response_to(transaction.request, 503, "Service Unavailable (no connection)"))

    # receiving -----------------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, transport: str) -> None:
        """One message from ``source`` (for a stream, the connection's far end)."""
        try:
            message = parse(data)
        except SipSyntaxError as exc:
            self.malformed += 1
            log.debug("malformed SIP from %s over %s: %s", source, transport, exc)
            return
        try:
            events = self.layer.receive(message, source, self._clock(), transport)
            self._dispatch(events)
        except Exception:
            log.exception("SIP message from %s could not be handled", source)
        self._rearm()

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Send):
                self._put([event])
            elif isinstance(event, IncomingRequest):
                if event.transaction is not None:
                    self.observer.sip_transaction("server", event.request.method)
                self.handler.request_received(event)
            elif isinstance(event, IncomingResponse):
                callback = self._callbacks.get(id(event.transaction))
                status = event.response.status
                self.observer.sip_response("received", event.response.cseq[1], status)
                if status >= 300 or (status >= 200 and not event.transaction.invite):
                    self._callbacks.pop(id(event.transaction), None)
                if callback is not None:
                    callback(event.response)
            elif isinstance(event, ClientTimeout):
                callback = self._callbacks.pop(id(event.transaction), None)
                if callback is not None:
                    callback(None)
            elif isinstance(event, ServerTimeout):
                self.handler.server_timed_out(event.transaction)

    def _put(self, sends: list[Send], failed: Callable[[], None] | None = None) -> None:
        for send in sends:
            data = send.message.serialize()
            if len(data) > MAX_MESSAGE:
                log.warning("not sending an oversized SIP message")
                continue
            if send.transport == UDP:
                self.udp.send(data, send.address)
            else:
                connect = not isinstance(send.message, Response)
                self.streams.send(send.transport, send.address, data, failed, connect=connect)

    # timers --------------------------------------------------------------------------------

    def _rearm(self) -> None:
        deadline = self.layer.deadline
        if deadline is None or deadline == self._armed_for:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, deadline - self._clock())
        self._armed_for = deadline
        self._timer = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer, self._armed_for = None, None
        try:
            events = self.layer.on_timer(self._clock())
            self._dispatch(events)
            self._forget_finished()
        except Exception:
            log.exception("SIP timer handling failed")
        self._rearm()

    def _forget_finished(self) -> None:
        if len(self._callbacks) > 1000 and len(self._callbacks) > 2 * len(self.layer):
            live = {id(t) for t in self.layer._clients.values()}
            self._callbacks = {k: v for k, v in self._callbacks.items() if k in live}
