"""SIP over UDP: one socket, the transaction layer, and one timer for all its transactions.

Datagrams are parsed (a malformed one is counted and dropped: answering junk would make the
platform a reflector; nothing malformed reaches the driver), matched to transactions, and what
is new goes to the ``SipHandler``. Requests the driver sends get their responses and their
timeout through the callback given with them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol, cast

from voicemgmt.adapters.switch.sip.message import MAX_MESSAGE, Request, Response, parse
from voicemgmt.adapters.switch.sip.transaction import (
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


class SipTransport(asyncio.DatagramProtocol):
    def __init__(
        self,
        handler: SipHandler,
        clock: Callable[[], float] = time.monotonic,
        observer: SipObserver | None = None,
    ) -> None:
        self.handler = handler
        self.observer: SipObserver = observer or _Unobserved()
        self.layer = TransactionLayer()
        self._clock = clock
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._callbacks: dict[int, ResponseCallback] = {}
        self.malformed = 0
        self.address: Address = ("127.0.0.1", 5060)

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        assert self._transport is not None
        sockname = self._transport.get_extra_info("sockname")
        self.address = (sockname[0], sockname[1])

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()

    # sending -------------------------------------------------------------------------------

    def send_request(
        self, request: Request, address: Address, callback: ResponseCallback
    ) -> ClientTransaction:
        transaction, sends = self.layer.send_request(request, address, self._clock())
        self.observer.sip_transaction("client", request.method)
        self._callbacks[id(transaction)] = callback
        self._put(sends)
        self._rearm()
        return transaction

    def respond(self, transaction: ServerTransaction, response: Response) -> None:
        self._put(self.layer.respond(transaction, response, self._clock()))
        self.observer.sip_response("sent", response.cseq[1], response.status)
        self._rearm()

    def send_stateless(self, message: Request | Response, address: Address) -> None:
        """An ACK for a 2xx, or a response outside any transaction."""
        if self._transport is not None:
            self._transport.sendto(message.serialize(), address)
            if isinstance(message, Response):
                self.observer.sip_response("sent", message.cseq[1], message.status)

    # receiving -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: 3.11's selector transport and uvloop's are not subclasses.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) <= 4 and not data.strip():
            return  # CRLF keep-alives (RFC 5626)
        try:
            message = parse(data)
        except SipSyntaxError as exc:
            self.malformed += 1
            log.debug("malformed SIP from %s: %s", addr, exc)
            return
        try:
            events = self.layer.receive(message, (addr[0], addr[1]), self._clock())
            self._dispatch(events)
        except Exception:
            log.exception("SIP message from %s could not be handled", addr)
        self._rearm()

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP socket error: %s", exc)

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

    def _put(self, sends: list[Send]) -> None:
        if self._transport is None:
            return
        for send in sends:
            data = send.message.serialize()
            if len(data) > MAX_MESSAGE:
                log.warning("not sending an oversized SIP message")
                continue
            self._transport.sendto(data, send.address)

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
