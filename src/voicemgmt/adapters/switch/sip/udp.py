"""SIP over UDP: one socket, each datagram one message (RFC 3261 §18.3)."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from voicemgmt.adapters.switch.sip.stream import StreamSink
from voicemgmt.adapters.switch.sip.transaction import UDP, Address

log = logging.getLogger(__name__)


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, sink: StreamSink) -> None:
        self.sink = sink
        self.transport: asyncio.DatagramTransport | None = None
        self.address: Address = ("127.0.0.1", 5060)

    async def listen(self, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname")
        self.address = (sockname[0], sockname[1])
        return self.address

    def send(self, data: bytes, address: Address) -> None:
        if self.transport is not None:
            self.transport.sendto(data, address)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: 3.11's selector transport and uvloop's are not subclasses.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) <= 4 and not data.strip():
            return  # CRLF keep-alives (RFC 5626)
        self.sink.receive(data, (addr[0], addr[1]), UDP)

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP socket error: %s", exc)
