"""What ``voicemgmt_rtp_packets_*_total`` report, over real UDP on loopback: the relay counts
what peers send it and what never arrived (gaps in sequence numbers); rtpengine, the packets
of each call, read before the call is deleted."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.sip.peers import free_udp_port, rtpengine
from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.media.relay import RtpRelay
from voicemgmt.adapters.switch.sip.media.rtpengine import RtpengineMedia
from voicemgmt.adapters.switch.sip.rtp import packet
from voicemgmt.observability.collectors import MediaCollector
from voicemgmt.observability.metrics import Metrics

pytestmark = pytest.mark.sip
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

    async def main() -> tuple[tuple[int, int | None, int | None], ...]:
        port = free_udp_port(pairs=4)
        relay = RtpRelay("127.0.0.1", range(port, port + 8))
        metrics.add(MediaCollector("relay", relay))
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


def test_rtpengine_packets_are_counted_when_the_call_ends(tmp_path: Path) -> None:
    metrics = Metrics()

    async def main() -> tuple[tuple[int, int | None, int | None], ...]:
        with rtpengine(tmp_path) as daemon:
            media = RtpengineMedia(
                ("127.0.0.1", daemon.ng_port),
                "127.0.0.1",
                ("127.0.0.1", daemon.dtmf_port),
                tmp_path / "media",
            )
            metrics.add(MediaCollector("rtpengine", media))
            await media.start()
            with _udp() as caller, _udp() as phone:
                remote = await media.open_leg("call-1", "caller", _session(caller))
                ops = await media.open_leg("call-1", "operator", None)
                ops.connect(_session(phone))
                media.bridge(remote, ops)
                await asyncio.sleep(0.3)  # the bridge's commands reach rtpengine
                for n in range(20):
                    caller.sendto(packet(0, n, n * 160, 5, SILENCE), remote.local_address)
                    phone.sendto(packet(0, n, n * 160, 6, SILENCE), ops.local_address)
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.3)
                during = media.packet_counts()
                await media.close_leg(ops)
                await media.close_leg(remote)
                for _ in range(100):
                    if media.packet_counts()[0]:
                        break
                    await asyncio.sleep(0.02)
                after = media.packet_counts()
            await media.close()
        return during, after

    during, after = asyncio.run(main())
    assert during == (0, None, None)  # read when the call ends
    assert after == (40, None, None)
    text = metrics.exposition().decode()
    assert 'voicemgmt_rtp_packets_total{backend="rtpengine",direction="received"} 40.0' in text
    assert 'direction="sent"' not in text
    assert 'voicemgmt_rtp_packets_lost_total{backend="rtpengine"}' not in text


@contextmanager
def _udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


def _session(sock: socket.socket) -> sdp.Session:
    port = sock.getsockname()[1]
    return sdp.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\n".encode()
    )
