"""The in-process RTP relay: one UDP socket per leg, forwarding between bridged legs.

Each leg sends its peer one continuous RTP stream: one SSRC, sequence numbers and timestamps
that run on across prompts, music and bridged audio (forwarded packets are re-stamped), so
that the peer's jitter buffer never sees a jump. The payload is forwarded as received when
both legs use the same codec, else G.711 transcoded byte for byte. Packets come from the
address the peer's SDP announced, or the first address RTP
arrives from once connected (symmetric RTP, for peers behind NAT). Prompts and music are
sent by one 20 ms clock for all legs, so the cost is one timer whatever the number of calls.
Fast under uvloop (the loop ``uvicorn`` picks when it is installed). A leg keyed by SDES
(``encrypt``) speaks SRTP with its peer through libsrtp (``pylibsrtp``): packets that do not
authenticate are dropped, what is forwarded or played is protected on the way out; the
bridged leg may be plain. DTLS-SRTP is not terminated here (``dtls`` False).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import struct
import time
from collections.abc import Callable
from typing import cast

import pylibsrtp

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.media import g711
from voicemgmt.adapters.switch.sip.media.base import (
    FRAME_SAMPLES,
    Audio,
    MediaLeg,
    MediaUnavailable,
)
from voicemgmt.adapters.switch.sip.rtp import DtmfReceiver, RtpError, RtpHeader, packet
from voicemgmt.adapters.switch.sip.sdes import Crypto

log = logging.getLogger(__name__)
FRAME_SECONDS = FRAME_SAMPLES / 8000
MAX_PACKET = 1500
# RFC 3550 A.1: a sequence number this far ahead is a gap; further, a new stream. Behind by
# less than MAX_MISORDER: late or duplicated.
MAX_DROPOUT = 3000
MAX_MISORDER = 100
_HEADER = struct.Struct("!BBHII")
SRTP_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


def _srtp(crypto: Crypto, ssrc_type: int) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=crypto.key, ssrc_type=ssrc_type, srtp_profile=SRTP_PROFILES[crypto.suite]
    )
    return pylibsrtp.Session(policy=policy)


class RelayLeg(asyncio.DatagramProtocol):
    def __init__(self, relay: RtpRelay, call_id: str, leg_id: str, port: int) -> None:
        self.relay = relay
        self.call_id, self.leg_id = call_id, leg_id
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None
        self.codec = g711.PCMU
        self.dtmf_pt: int | None = None
        self.peer: RelayLeg | None = None
        self.muted = False  # the peer holds us: send nothing
        self.playing = False  # a prompt or music: what the bridged leg says is not forwarded
        self._digit: Callable[[str], None] | None = None
        self._dtmf = DtmfReceiver()
        self._latched = False
        # our own stream (prompts, music)
        self._ssrc = secrets.randbits(32)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._audio: bytes = b""
        self._position = 0
        self._loop_audio = False
        self._done: Callable[[], None] | None = None
        self._first_frame = True
        self._source: int | None = None  # the SSRC being forwarded to our peer
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_sent = 0.0
        self.received = self.sent = 0
        # loss of what the peer sends (RFC 3550 A.3): the stream's first and highest sequence
        # numbers (extended), packets received since its first, losses of earlier streams
        self._first_seq = self._highest_seq = -1
        self._stream_received = 0
        self._earlier_lost = 0
        self._lost_reported = 0
        # SRTP (SDES): the keys in use, and libsrtp's sessions for them
        self._keys: tuple[Crypto, Crypto] | None = None
        self._srtp_in: pylibsrtp.Session | None = None
        self._srtp_out: pylibsrtp.Session | None = None
        self.unauthenticated = 0  # SRTP packets dropped: wrong key, replayed, forged

    @property
    def local_address(self) -> tuple[str, int]:
        return (self.relay.host, self.port)

    # MediaLeg ------------------------------------------------------------------------------

    def connect(self, remote: sdp.Session) -> None:
        self.remote = (remote.host, remote.port) if remote.port else None
        self.codec = remote.codec if remote.codecs else g711.PCMU
        self.dtmf_pt = remote.dtmf_pt
        self.muted = remote.on_hold
        self._latched = False

    def encrypt(self, send: Crypto, receive: Crypto) -> None:
        if self._keys == (send, receive):
            return
        self._keys = (send, receive)
        self._srtp_out = _srtp(send, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._srtp_in = _srtp(receive, pylibsrtp.Policy.SSRC_ANY_INBOUND)

    def sdes_key(self) -> Crypto | None:
        return None

    def dtls_attributes(self) -> tuple[str, ...]:
        return ()

    def on_digit(self, callback: Callable[[str], None] | None) -> None:
        self._digit = callback

    def play(self, audio: Audio, *, loop: bool, done: Callable[[], None] | None) -> None:
        self._audio = audio.encoded(self.codec)
        self._position = 0
        self._loop_audio = loop
        self._done = done
        self._first_frame = True
        self._source = None
        self._skip_gap()
        self.playing = True
        self.relay._playing.add(self)
        self.relay._ensure_clock()

    def stop(self) -> None:
        self._audio, self._done = b"", None
        self.playing = False
        self.relay._playing.discard(self)

    # asyncio -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: 3.11's selector transport and uvloop's are not subclasses.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # The hot path: one call per packet, kept short on purpose.
        if len(data) < 12 or len(data) > MAX_PACKET or data[0] & 0xC0 != 0x80:
            return
        payload_type = data[1] & 0x7F
        if 72 <= payload_type <= 76:
            return  # RTCP multiplexed on the RTP port (RFC 5761)
        if self._srtp_in is not None:
            try:
                data = self._srtp_in.unprotect(data)
            except pylibsrtp.Error:
                self.unauthenticated += 1
                return
        if not self._latched:
            if self.remote is not None and addr != self.remote:
                self.remote = addr  # symmetric RTP: answer where the peer really is
            self._latched = True
        self.received += 1
        self._stream_received += 1
        sequence, highest = (data[2] << 8) | data[3], self._highest_seq
        ahead = (sequence - highest) & 0xFFFF
        if highest >= 0 and 0 < ahead < MAX_DROPOUT:
            self._highest_seq = highest + ahead
        elif highest < 0 or (ahead and ahead <= 0x10000 - MAX_MISORDER):
            self._new_stream(sequence)
        if payload_type == self.dtmf_pt:
            self._on_dtmf(data)
        peer = self.peer
        if peer is None or peer.playing or peer.remote is None or peer.muted:
            return
        if payload_type == self.codec:
            out_type, audio = peer.codec, True
        elif payload_type == self.dtmf_pt and peer.dtmf_pt is not None:
            out_type, audio = peer.dtmf_pt, False
        else:
            return  # comfort noise and codecs we did not negotiate
        if data[0] == 0x80:
            packet_out = bytearray(data)
        else:  # CSRCs, an extension or padding: keep the payload only
            try:
                header = RtpHeader.parse(data)
            except RtpError:
                return
            packet_out = bytearray(data[:12]) + data[header.payload_offset : header.payload_end]
        if audio and out_type != self.codec:
            packet_out[12:] = g711.transcode(bytes(packet_out[12:]), self.codec, out_type)
        peer._forward(packet_out, out_type, audio)

    def _new_stream(self, sequence: int) -> None:
        """The peer's first packet, or a jump in its sequence numbers (a new source)."""
        if self._first_seq >= 0:
            self._earlier_lost += self._stream_lost(received=self._stream_received - 1)
        self._first_seq = self._highest_seq = sequence
        self._stream_received = 1

    def _stream_lost(self, received: int) -> int:
        expected = self._highest_seq - self._first_seq + 1 if self._first_seq >= 0 else 0
        return max(0, expected - received)

    @property
    def lost(self) -> int:
        """Packets the peer sent that never arrived (never decreasing, though a late packet
        may turn out not to have been lost)."""
        lost = self._earlier_lost + self._stream_lost(self._stream_received)
        self._lost_reported = max(self._lost_reported, lost)
        return self._lost_reported

    def _forward(self, packet_out: bytearray, payload_type: int, audio: bool) -> None:
        """Send a packet from the bridged leg as part of our own stream (re-stamped in place)."""
        _, second, sequence_in, timestamp_in, ssrc_in = _HEADER.unpack_from(packet_out)
        marker = second & 0x80
        if ssrc_in != self._source:
            self._source = ssrc_in
            self._skip_gap()
            self._seq_offset = (self._sequence - sequence_in) & 0xFFFF
            self._ts_offset = (self._timestamp - timestamp_in) & 0xFFFFFFFF
            marker = 0x80
        sequence = (sequence_in + self._seq_offset) & 0xFFFF
        timestamp = (timestamp_in + self._ts_offset) & 0xFFFFFFFF
        _HEADER.pack_into(
            packet_out, 0, 0x80, marker | payload_type, sequence, timestamp, self._ssrc
        )
        transport = self.transport
        if transport is None:
            return
        if self._srtp_out is not None:
            transport.sendto(self._srtp_out.protect(bytes(packet_out)), self.remote)
        else:
            transport.sendto(packet_out, self.remote)
        self.sent += 1
        if (sequence - self._sequence) & 0xFFFF < 0x8000:
            self._sequence = (sequence + 1) & 0xFFFF
        if audio:
            self._timestamp = (timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        self._last_sent = time.monotonic()

    def _skip_gap(self) -> None:
        """Advance our timestamp over the time nothing was sent (a silent stretch)."""
        if self._last_sent:
            frames = int((time.monotonic() - self._last_sent) / FRAME_SECONDS)
            if frames > 1:
                self._timestamp = (self._timestamp + (frames - 1) * FRAME_SAMPLES) & 0xFFFFFFFF

    def _on_dtmf(self, data: bytes) -> None:
        try:
            header = RtpHeader.parse(data)
        except RtpError:
            return
        digit = self._dtmf.receive(header, data[header.payload_offset : header.payload_end])
        if digit is not None and self._digit is not None:
            try:
                self._digit(digit)
            except Exception:
                log.exception("digit handler failed for call %s", self.call_id)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable from a peer that went away: the signalling will tell

    # the playout clock ---------------------------------------------------------------------

    def _send_frame(self) -> None:
        if self.transport is None or self.remote is None or self.muted:
            return
        frame = self._audio[self._position : self._position + FRAME_SAMPLES]
        self._position += FRAME_SAMPLES
        if len(frame) < FRAME_SAMPLES:
            if self._loop_audio and self._audio:
                self._position = FRAME_SAMPLES - len(frame)
                frame += self._audio[: self._position]
            else:
                frame += bytes([g711.silence(self.codec)]) * (FRAME_SAMPLES - len(frame))
        data = packet(
            self.codec, self._sequence, self._timestamp, self._ssrc, frame, marker=self._first_frame
        )
        if self._srtp_out is not None:
            data = self._srtp_out.protect(data)
        self.transport.sendto(data, self.remote)
        self.sent += 1
        self._last_sent = time.monotonic()
        self._first_frame = False
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF

    def _finished(self) -> bool:
        return not self._loop_audio and self._position >= len(self._audio)


class RtpRelay:
    """A :class:`~voicemgmt.adapters.switch.sip.media.base.MediaBackend` in this process."""

    sdes = sdes_offers = True
    dtls = False

    def __init__(self, host: str, ports: range) -> None:
        if ports.start % 2:
            ports = range(ports.start + 1, ports.stop)
        self.host = host
        self._free = list(range(ports.start, ports.stop, 2))
        self._legs: set[RelayLeg] = set()
        self._playing: set[RelayLeg] = set()
        self._clock: asyncio.Handle | None = None
        self._next_tick = 0.0
        self._closed_received = self._closed_sent = self._closed_lost = 0  # of closed legs

    async def start(self) -> None:
        pass

    async def open_leg(
        self, call_id: str, leg_id: str, offer: sdp.Session | None = None
    ) -> RelayLeg:
        loop = asyncio.get_running_loop()
        for _ in range(min(len(self._free), 50)):
            port = self._free.pop(0)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                self._free.append(port)  # taken by someone else: try it again later
                continue
            sock.setblocking(False)
            leg = RelayLeg(self, call_id, leg_id, port)
            await loop.create_datagram_endpoint(lambda leg=leg: leg, sock=sock)  # type: ignore[misc]
            self._legs.add(leg)
            return leg
        raise MediaUnavailable("no free RTP port")

    def bridge(self, first: MediaLeg, second: MediaLeg) -> None:
        a, b = _relay_leg(first), _relay_leg(second)
        for leg in (a, b):
            leg.stop()
            if leg.peer is not None and leg.peer not in (a, b):
                leg.peer.peer = None
        a.peer, b.peer = b, a

    def unbridge(self, media: MediaLeg) -> None:
        leg = _relay_leg(media)
        if leg.peer is not None:
            leg.peer.peer = None
        leg.peer = None

    async def close_leg(self, media: MediaLeg) -> None:
        leg = _relay_leg(media)
        leg.stop()
        self.unbridge(leg)
        if leg in self._legs:
            self._legs.discard(leg)
            self._closed_received += leg.received
            self._closed_sent += leg.sent
            self._closed_lost += leg.lost
            if leg.transport is not None:
                leg.transport.close()
            self._free.append(leg.port)

    async def packets_received(self, media: MediaLeg) -> int | None:
        return _relay_leg(media).received

    async def close(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
        for leg in list(self._legs):
            await self.close_leg(leg)

    @property
    def legs(self) -> int:
        return len(self._legs)

    def packet_counts(self) -> tuple[int, int | None, int | None]:
        """RTP packets received from, sent to and lost by peers since the relay started."""
        received = self._closed_received + sum(leg.received for leg in self._legs)
        sent = self._closed_sent + sum(leg.sent for leg in self._legs)
        lost = self._closed_lost + sum(leg.lost for leg in self._legs)
        return received, sent, lost

    def _ensure_clock(self) -> None:
        if self._clock is None:
            loop = asyncio.get_running_loop()
            self._next_tick = loop.time()
            self._clock = loop.call_soon(self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        finished: list[tuple[RelayLeg, Callable[[], None] | None]] = []
        for leg in list(self._playing):
            if leg._finished():
                self._playing.discard(leg)
                leg.playing = False
                finished.append((leg, leg._done))
                leg._done = None
                continue
            leg._send_frame()
        for _leg, done in finished:
            if done is not None:
                try:
                    done()
                except Exception:
                    log.exception("prompt completion handler failed")
        if not self._playing:
            self._clock = None
            return
        self._next_tick += FRAME_SECONDS
        now = loop.time()
        if self._next_tick < now - 0.2:
            self._next_tick = now  # the loop stalled: do not burst to catch up
        self._clock = loop.call_at(self._next_tick, self._tick)


def _relay_leg(leg: MediaLeg) -> RelayLeg:
    if not isinstance(leg, RelayLeg):
        raise TypeError("not a leg of this relay")
    return leg
