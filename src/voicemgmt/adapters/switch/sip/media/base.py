"""The media port: what the SIP driver asks of whatever carries a call's RTP.

A *leg* is one RTP stream between the platform and one peer (the caller, an operator's
phone, a customer). The driver opens a leg before it writes its SDP (``local_address``),
tells it the peer's SDP (``connect``), and then bridges two legs, plays audio into one, or
listens to its RFC 4733 digits. The legs of one call are the remote party (``caller`` or
``customer``) and operators' phones (``op<id>``); one operator at a time is bridged to the
remote party. Two implementations: ``relay.RtpRelay`` (in this process,
the default) and ``rtpengine.RtpengineMedia`` (the rtpengine daemon, for scale).
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.media import g711
from voicemgmt.adapters.switch.sip.sdes import Crypto

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
WAV = -1  # the key of the WAV rendering among an Audio's encodings


@dataclass(eq=False, slots=True)
class Audio:
    """A sound to play: 16-bit little-endian mono PCM at 8 kHz, encoded per law on demand."""

    pcm: bytes
    name: str = ""
    _encoded: dict[int, bytes] = field(default_factory=dict)

    def encoded(self, law: int) -> bytes:
        found = self._encoded.get(law)
        if found is None:
            found = self._encoded[law] = g711.encode(self.pcm, law)
        return found

    def wav(self) -> bytes:
        """The audio as a WAV file (8 kHz, mono, 16-bit), made once."""
        found = self._encoded.get(WAV)
        if found is None:
            out = io.BytesIO()
            with wave.open(out, "wb") as file:
                file.setnchannels(1)
                file.setsampwidth(2)
                file.setframerate(SAMPLE_RATE)
                file.writeframes(self.pcm)
            found = self._encoded[WAV] = out.getvalue()
        return found

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / SAMPLE_RATE


class MediaLeg(Protocol):
    @property
    def local_address(self) -> tuple[str, int]:
        """Where the peer must send RTP (our SDP's c= and m= lines)."""
        ...

    def connect(self, remote: sdp.Session) -> None:
        """The peer's SDP: where to send, which codec, which telephone-event type."""

    def encrypt(self, send: Crypto, receive: Crypto) -> None:
        """SRTP with the peer (SDES keys): protect what we send with ``send``, accept only
        what ``receive`` authenticates. Called again when a re-INVITE changes a key."""

    def sdes_key(self) -> Crypto | None:
        """The key the backend chose for what it sends to the peer (rtpengine answers an SRTP
        offer with its own), to put in our SDP; None: the driver's key is used (the relay)."""

    def dtls_attributes(self) -> tuple[str, ...]:
        """The backend's ``a=fingerprint`` and ``a=setup`` for a DTLS-SRTP peer (rtpengine), to
        put in our SDP; empty when it does not do DTLS."""

    def on_digit(self, callback: Callable[[str], None] | None) -> None:
        """Call ``callback`` with each RFC 4733 digit the peer keys."""

    def play(self, audio: Audio, *, loop: bool, done: Callable[[], None] | None) -> None:
        """Send ``audio`` to the peer (replacing what played); ``done`` at its end."""

    def stop(self) -> None:
        """Stop playing; ``done`` is not called."""


class MediaBackend(Protocol):
    sdes: bool  # it can answer an SDES-keyed SRTP offer (``MediaLeg.encrypt``)
    sdes_offers: bool  # … and make one (the legs the driver starts: phones, the trunk)
    dtls: bool  # it terminates DTLS-SRTP itself

    async def start(self) -> None: ...

    async def open_leg(
        self, call_id: str, leg_id: str, offer: sdp.Session | None = None
    ) -> MediaLeg:
        """A new leg of ``call_id`` (``caller``, ``customer`` or ``op<id>``), with the peer's
        SDP ``offer`` when the peer offered; ``MediaUnavailable`` when no port is free."""

    def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        """Each peer hears the other (stops what played to either)."""

    def unbridge(self, leg: MediaLeg) -> None:
        """``leg`` and whatever it was bridged to stop hearing each other."""

    async def close_leg(self, leg: MediaLeg) -> None: ...

    async def packets_received(self, leg: MediaLeg) -> int | None:
        """RTP packets received from ``leg``'s peer so far (never decreasing), or None if the
        backend cannot tell; what the RTP inactivity check (``media_watch``) reads."""

    async def close(self) -> None: ...


class MediaUnavailable(Exception):
    """No media port or media server could take the leg."""
