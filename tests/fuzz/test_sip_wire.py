"""The SIP transport on a real UDP socket, under uvloop (what ``voicemgmt serve`` runs on):
whatever datagrams arrive, the next valid request is still handled.

Before the fixes fuzzing brought, non-ASCII digits in a status code or Content-Length raised
``ValueError`` out of ``datagram_received`` (to the event loop's handler, not counted as
malformed; the socket survived), and in Max-Forwards or CSeq were accepted: the hostile corpus
test below failed on both. The socket must carry on after every hostile case and mutation.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import uvloop
from hypothesis import HealthCheck, given, settings

from tests.fuzz.mutations import mutated
from voicemgmt.adapters.switch.sip.message import MAX_MESSAGE
from voicemgmt.adapters.switch.sip.transaction import ServerTransaction
from voicemgmt.adapters.switch.sip.transaction_layer import IncomingRequest
from voicemgmt.adapters.switch.sip.transport import SipTransport

CORPUS = Path(__file__).parent.parent / "sip" / "corpus"
VALID = [p.read_bytes() for p in sorted((CORPUS / "valid").glob("*.sip"))]
INVALID = [p.read_bytes() for p in sorted((CORPUS / "invalid").glob("*.sip"))]
PROBE_CALL_ID = "probe-after-the-fuzz@example"
# a request no mutation makes (its own Call-ID and branch): handled, never taken for a resend
OPTIONS = (
    next(case for case in VALID if case.startswith(b"OPTIONS"))
    .replace(b"i: compact-forms@example", f"i: {PROBE_CALL_ID}".encode())
    .replace(b"branch=z9hG4bKcompact1", b"branch=z9hG4bKprobe")
)


class Recorder:
    def __init__(self) -> None:
        self.call_ids: list[str] = []

    def request_received(self, incoming: IncomingRequest) -> None:
        self.call_ids.append(incoming.request.call_id)

    def server_timed_out(self, transaction: ServerTransaction) -> None:
        pass


async def _deliver(datagrams: list[bytes]) -> tuple[list[str], int]:
    """Send ``datagrams`` then a valid OPTIONS; the Call-IDs handled and the malformed count."""
    recorder = Recorder()
    transport = SipTransport(recorder)
    await transport.listen("127.0.0.1", 0)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    try:
        for data in datagrams:
            peer.sendto(data, transport.address)
        peer.sendto(OPTIONS, transport.address)
        for _ in range(200):
            await asyncio.sleep(0.005)
            if recorder.call_ids[-1:] == [PROBE_CALL_ID]:
                break
        return recorder.call_ids, transport.malformed
    finally:
        peer.close()
        transport.close()


def test_every_hostile_corpus_case_is_dropped_and_the_socket_carries_on() -> None:
    hostile = [case for case in INVALID if len(case) <= MAX_MESSAGE]
    handled, malformed = uvloop.run(_deliver(hostile))
    assert handled == [PROBE_CALL_ID]
    keep_alives = [case for case in hostile if len(case) <= 4 and not case.strip()]
    assert malformed == len(hostile) - len(keep_alives)


@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated(VALID + INVALID))
def test_after_any_datagram_the_next_request_is_handled(data: bytes) -> None:
    handled, _malformed = uvloop.run(_deliver([data[:60_000]]))
    assert handled[-1:] == [PROBE_CALL_ID]
