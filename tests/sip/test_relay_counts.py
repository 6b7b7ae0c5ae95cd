"""The relay counts what peers send it, and what never arrived (gaps in sequence numbers),
over real UDP on loopback: what ``voicemgmt_rtp_packets_*_total`` report."""

from __future__ import annotations

import asyncio
import socket

from tests.sip.peers import free_udp_port
from voicemgmt.adapters.switch.sip.media.relay import RtpRelay
from voicemgmt.adapters.switch.sip.rtp import packet
from voicemgmt.observability.collectors import RelayCollector
from voicemgmt.observability.metrics import Metrics

SILENCE = b"\xff" * 160


async def _send(relay: RtpRelay, sequences: list[int], ssrc: int = 7) -> None:
    """Send one packet per sequence number to the relay's only leg; wait until all arrived."""
    (leg,) = relay._legs
    before = leg.received
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        for n, sequence in enumerate(sequences):
            peer.sendto(packet(0, sequence, n * 160, ssrc, SILENCE), leg.local_address)
    for _ in range(200):
        if leg.received == before + len(sequences):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{leg.received - before} of {len(sequences)} packets arrived")


def test_packets_and_losses_are_counted_across_gaps_late_packets_wraps_and_new_streams() -> None:
    metrics = Metrics()

    async def main() -> tuple[tuple[int, int, int], ...]:
        port = free_udp_port(pairs=4)
        relay = RtpRelay("127.0.0.1", range(port, port + 8))
        metrics.add(RelayCollector("relay", relay))
        leg = await relay.open_leg("call-1", "caller")
        seen = []
        try:
            await _send(relay, [100, 101, 102, 105, 106, 107, 108, 109])  # 103, 104 missing
            seen.append(relay.packet_counts())
            await _send(relay, [103])  # late, not lost after all: still counted once lost
            seen.append(relay.packet_counts())
            await _send(relay, [40_000, 40_001, 40_003])  # a new stream; 40_002 missing
            await _send(relay, [65_534, 65_535, 0, 2], ssrc=8)  # wraps; 1 missing
            seen.append(relay.packet_counts())
            await relay.close_leg(leg)
            seen.append(relay.packet_counts())  # a closed leg's counts are kept
        finally:
            await relay.close()
        return tuple(seen)

    gaps, late, streams, closed = asyncio.run(main())
    assert gaps == (8, 0, 2)
    assert late == (9, 0, 2)
    assert streams == (16, 0, 3)  # 103 arrived; 40_002 and 1 are missing
    assert closed == streams
    text = metrics.exposition().decode()
    assert 'voicemgmt_rtp_packets_total{backend="relay",direction="received"} 16.0' in text
    assert 'voicemgmt_rtp_packets_total{backend="relay",direction="sent"} 0.0' in text
    assert 'voicemgmt_rtp_packets_lost_total{backend="relay"} 3.0' in text
