"""The rtpengine media backend: RTP relayed by the rtpengine daemon (userspace), for scale.

Driven by the ng control protocol (``ng.py``). Each platform call is one rtpengine call with
two parties, tagged ``remote`` (the caller, or the customer of a click-to-call) and ``ops``
(whichever operator's phone is connected). Ports stay put while the ``ops`` party changes
(the ``port latching`` flag): bridging an operator is a re-answer with that phone's SDP, and
unbridging is a re-answer towards a black hole with the operator's media blocked. SRTP: a
``remote`` party's SDES offer is handed over as it is (with the one key the driver chose);
rtpengine decrypts it and answers with its own key (``sdes_key``), which the driver puts in
its answer; a DTLS-SRTP offer likewise (its ``a=fingerprint`` and ``a=setup`` in our answer,
the handshake between rtpengine and the peer). The ``ops`` side is always plain RTP
(``transport-protocol``), so phones' and outbound legs' SRTP is not available with this
backend (``sdes_offers`` False). Prompts and
music are ``play media`` into ``remote`` (a blob, or a file in ``media_dir`` when too big for
a datagram: rtpengine must then see that folder); digits come from ``--dtmf-log-dest`` JSON.

The operations of one call run in order, off the caller's path (``MediaLeg`` methods are
synchronous); a failed operation is logged, the call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.media.base import Audio, MediaLeg, MediaUnavailable
from voicemgmt.adapters.switch.sip.media.ng import NgClient, NgError
from voicemgmt.adapters.switch.sip.sdes import Crypto

log = logging.getLogger(__name__)
FLAGS = ["port latching"]
MAX_BLOB = 48 * 1024  # an ng command travels in one UDP datagram
LOOP_TIMES = 100  # music and hold: about 13 minutes of an 8 s tune; rtpengine prepares all
QUERY_REUSE = 0.5  # seconds a call's query answer serves both of its sides


def _black_hole(host: str) -> str:
    return sdp.Session(host, 9, (sdp.PCMU, sdp.PCMA), sdp.DEFAULT_DTMF_PT).render().decode()


def _port(description: object) -> int:
    if not isinstance(description, bytes):
        raise NgError("rtpengine answered without SDP")
    return sdp.parse(description).port


def _dtls(description: object) -> tuple[str, ...]:
    if not isinstance(description, bytes):
        raise NgError("rtpengine answered without SDP")
    found = sdp.parse(description)
    if not found.fingerprint:
        raise NgError("rtpengine answered a DTLS-SRTP offer without a fingerprint")
    return found.dtls_attributes


def _crypto(description: object) -> Crypto:
    if not isinstance(description, bytes):
        raise NgError("rtpengine answered without SDP")
    cryptos = sdp.parse(description).cryptos
    if not cryptos:
        raise NgError("rtpengine answered an SRTP offer without a key")
    return cryptos[0]


@dataclass(eq=False)
class _Call:
    id: str
    remote_port: int = 0
    ops_port: int = 0
    bridged: RtpengineLeg | None = None
    version: int = 1
    tail: asyncio.Future[None] | None = None
    legs: set[RtpengineLeg] = field(default_factory=set)
    digit: Callable[[str], None] | None = None
    remote_crypto: Crypto | None = None  # rtpengine's key towards an SRTP remote party
    remote_dtls: tuple[str, ...] = ()  # its a=fingerprint, a=setup towards a DTLS one


class RtpengineLeg:
    def __init__(self, media: RtpengineMedia, call: _Call, side: str) -> None:
        self.media, self.call, self.side = media, call, side
        self.remote: sdp.Session | None = None
        self._play_token = 0

    @property
    def local_address(self) -> tuple[str, int]:
        port = self.call.remote_port if self.side == "remote" else self.call.ops_port
        return (self.media.host, port)

    def connect(self, remote: sdp.Session) -> None:
        if remote == self.remote:
            return
        first = self.remote is None
        self.remote = remote
        if self.side == "remote" and not first:
            self.media.later(self.call, self.media.reoffer(self.call, remote))
        elif self.side == "ops" and self.call.bridged is self:
            self.media.later(self.call, self.media.answer(self.call, remote))

    def encrypt(self, send: Crypto, receive: Crypto) -> None:
        """rtpengine has both keys already: the peer's from its offer, its own (the driver
        does not call this for DTLS-SRTP, which rtpengine negotiates itself)."""
        if self.side != "remote" or self.call.remote_crypto is None:
            raise MediaUnavailable("rtpengine does SRTP only with an SRTP offer from the remote")

    def sdes_key(self) -> Crypto | None:
        return self.call.remote_crypto if self.side == "remote" else None

    def dtls_attributes(self) -> tuple[str, ...]:
        return self.call.remote_dtls if self.side == "remote" else ()

    def on_digit(self, callback: Callable[[str], None] | None) -> None:
        if self.side == "remote":
            self.call.digit = callback

    def play(self, audio: Audio, *, loop: bool, done: Callable[[], None] | None) -> None:
        if self.side != "remote":
            return
        self._play_token += 1
        token = self._play_token
        self.media.later(self.call, self.media.play(self, audio, loop, done, token))

    def stop(self) -> None:
        if self.side == "remote" and self._play_token:
            self._play_token += 1
            self.media.later(self.call, self.media.stop_media(self.call))


class RtpengineMedia:
    """A :class:`~voicemgmt.adapters.switch.sip.media.base.MediaBackend` on rtpengine."""

    sdes = True  # the remote party's SDES offers (see the module docstring)
    sdes_offers = False
    dtls = True  # the remote party's DTLS-SRTP offers

    def __init__(
        self,
        ng: tuple[str, int],
        host: str,
        dtmf_listen: tuple[str, int],
        media_dir: Path,
    ) -> None:
        self.host = host
        self.media_dir = media_dir
        self.client = NgClient(ng)
        self.dtmf_listen = dtmf_listen
        self._calls: dict[str, _Call] = {}
        self._dtmf: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._received = 0  # RTP packets of the calls deleted so far, by rtpengine's count
        self._queried: dict[str, tuple[float, object]] = {}  # call → (when, its query's tags)

    async def start(self) -> None:
        await self.client.open()
        try:
            await self.client.request({"command": "ping"})
        except NgError as exc:
            raise MediaUnavailable(f"rtpengine does not answer at {self.client.address}") from exc
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DtmfLog(self), local_addr=self.dtmf_listen
        )
        self._dtmf = transport

    async def open_leg(
        self, call_id: str, leg_id: str, offer: sdp.Session | None = None
    ) -> RtpengineLeg:
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _Call(call_id)
        side = "remote" if leg_id in ("caller", "customer") else "ops"
        if not call.remote_port:
            first = offer.render().decode() if offer is not None else _black_hole(self.host)
            try:
                made = await self._ng(call, "offer", {"from-tag": "remote", "sdp": first})
                call.ops_port = _port(made["sdp"])
                answered = await self._ng(
                    call,
                    "answer",
                    {"from-tag": "remote", "to-tag": "ops", "sdp": _black_hole(self.host)},
                )
                call.remote_port = _port(answered["sdp"])
                if offer is not None and offer.cryptos:
                    call.remote_crypto = _crypto(answered["sdp"])
                if offer is not None and offer.dtls:
                    call.remote_dtls = _dtls(answered["sdp"])
            except (NgError, KeyError, sdp.SdpError) as exc:
                raise MediaUnavailable(f"rtpengine refused the call: {exc}") from exc
        leg = RtpengineLeg(self, call, side)
        if offer is not None:
            leg.remote = offer
        call.legs.add(leg)
        return leg

    def bridge(self, first: MediaLeg, second: MediaLeg) -> None:
        a, b = _leg(first), _leg(second)
        ops = b if b.side == "ops" else a
        call = ops.call
        call.bridged = ops
        a.stop()
        b.stop()
        if ops.remote is not None:
            self.later(call, self.answer(call, ops.remote))
        self.later(call, self._block(call, block=False))

    def unbridge(self, media: MediaLeg) -> None:
        leg = _leg(media)
        call = leg.call
        if call.bridged is None:
            return
        call.bridged = None
        self.later(call, self._block(call, block=True))
        self.later(call, self.answer(call, None))

    async def close_leg(self, media: MediaLeg) -> None:
        leg = _leg(media)
        call = leg.call
        call.legs.discard(leg)
        if call.bridged is leg:
            self.unbridge(leg)
        if leg.side == "remote" or not call.legs:
            self._calls.pop(call.id, None)
            self.later(call, self._delete(call))

    async def packets_received(self, media: MediaLeg) -> int | None:
        """RTP packets rtpengine received on the leg's side (``query``: the RTP streams of
        the side's tag; its RTCP streams left out); None if rtpengine does not say."""
        leg = _leg(media)
        if leg.call.id not in self._calls:
            return None
        now = time.monotonic()
        cached = self._queried.get(leg.call.id)
        if cached is not None and now - cached[0] < QUERY_REUSE:
            tags = cached[1]  # the other side of the call asked a moment ago: one query
        else:
            try:
                tags = (await self._ng(leg.call, "query", {})).get("tags")
            except NgError as exc:
                log.debug("rtpengine query: %s", exc)
                return None
            self._queried.pop(leg.call.id, None)
            self._queried[leg.call.id] = (now, tags)
            while len(self._queried) > len(self._calls) + 16:
                del self._queried[next(iter(self._queried))]
        tag = tags.get(leg.side) if isinstance(tags, dict) else None
        medias = tag.get("medias") if isinstance(tag, dict) else None
        if not isinstance(medias, list):
            return None
        total = 0
        for item in medias:
            streams = item.get("streams") if isinstance(item, dict) else None
            for stream in streams if isinstance(streams, list) else []:
                if not isinstance(stream, dict) or b"RTCP" in (stream.get("flags") or []):
                    continue
                stats = stream.get("stats")
                packets = stats.get("packets") if isinstance(stats, dict) else None
                total += packets if isinstance(packets, int) else 0
        return total

    async def close(self) -> None:
        for call in list(self._calls.values()):
            with contextlib.suppress(NgError):
                await self._ng(call, "delete", {})
        self._calls.clear()
        if self._dtmf is not None:
            self._dtmf.close()
        self.client.close()

    # operations, in order per call ---------------------------------------------------------

    def later(self, call: _Call, operation: Awaitable[object]) -> None:
        previous = call.tail
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        call.tail = done

        async def run() -> None:
            try:
                if previous is not None:
                    await previous
                await operation
            except NgError as exc:
                log.warning("rtpengine: %s (call %s)", exc, call.id)
            finally:
                done.set_result(None)

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def answer(self, call: _Call, ops: sdp.Session | None) -> None:
        call.version += 1
        description = (
            _black_hole(self.host)
            if ops is None
            else sdp.Session(
                ops.host, ops.port, ops.codecs, ops.dtmf_pt, ops.direction, 1, call.version
            )
            .render()
            .decode()
        )
        await self._ng(call, "answer", {"from-tag": "remote", "to-tag": "ops", "sdp": description})

    async def reoffer(self, call: _Call, remote: sdp.Session) -> None:
        await self._ng(
            call, "offer", {"from-tag": "remote", "to-tag": "ops", "sdp": remote.render().decode()}
        )
        await self.answer(call, call.bridged.remote if call.bridged is not None else None)

    async def play(
        self,
        leg: RtpengineLeg,
        audio: Audio,
        loop: bool,
        done: Callable[[], None] | None,
        token: int,
    ) -> None:
        if token != leg._play_token:
            return
        wav = audio.wav()
        params: dict[str, object] = {"from-tag": "remote"}
        if len(wav) <= MAX_BLOB:
            params["blob"] = wav
        else:  # too big for one ng datagram: rtpengine reads it from a file
            params["file"] = str(await asyncio.to_thread(self._file_of, wav))
        if loop:
            params["repeat-times"] = LOOP_TIMES
        answer = await self._ng(leg.call, "play media", params)
        duration = answer.get("duration")
        if done is not None and not loop:
            seconds = duration / 1000 if isinstance(duration, int) else audio.seconds

            def finished() -> None:
                if token == leg._play_token:
                    done()

            asyncio.get_running_loop().call_later(seconds, finished)

    def _file_of(self, wav: bytes) -> Path:
        path = self.media_dir / f"{hashlib.sha256(wav).hexdigest()[:32]}.wav"
        if not path.exists():
            self.media_dir.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(wav)
            partial.replace(path)
        return path

    async def _delete(self, call: _Call) -> None:
        """Read the call's packet count (rtpengine's delete answers without it), then end it."""
        try:
            totals = (await self._ng(call, "query", {})).get("totals")
            rtp = totals.get("RTP") if isinstance(totals, dict) else None
            packets = rtp.get("packets") if isinstance(rtp, dict) else None
            if isinstance(packets, int) and packets >= 0:
                self._received += packets
        except NgError as exc:
            log.debug("rtpengine query: %s", exc)
        await self._ng_quiet(call, "delete", {})

    def packet_counts(self) -> tuple[int, int | None, int | None]:
        """RTP packets rtpengine received from the peers of the calls ended so far; what it
        sent and lost it does not say (without RTCP)."""
        return self._received, None, None

    async def stop_media(self, call: _Call) -> None:
        await self._ng_quiet(call, "stop media", {"from-tag": "remote"})

    async def _block(self, call: _Call, *, block: bool) -> None:
        command = "block media" if block else "unblock media"
        await self._ng_quiet(call, command, {"from-tag": "ops"})

    async def _ng(self, call: _Call, command: str, params: dict[str, object]) -> dict[str, object]:
        request: dict[str, object] = {"command": command, "call-id": call.id, **params}
        if command in ("offer", "answer"):
            request["flags"] = FLAGS
        if command == "offer":
            request["transport-protocol"] = "RTP/AVP"  # the ops side: plain RTP
        return await self.client.request(request)

    async def _ng_quiet(self, call: _Call, command: str, params: dict[str, object]) -> None:
        try:
            await self._ng(call, command, params)
        except NgError as exc:
            log.debug("rtpengine %s: %s", command, exc)

    def digit(self, message: dict[str, object]) -> None:
        call = self._calls.get(str(message.get("callid", "")))
        event = message.get("event")
        if call is None or message.get("source_tag") != "remote" or not isinstance(event, int):
            return
        digits = "0123456789*#"
        if 0 <= event < len(digits) and call.digit is not None:
            call.digit(digits[event])


class _DtmfLog(asyncio.DatagramProtocol):
    def __init__(self, media: RtpengineMedia) -> None:
        self.media = media

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if isinstance(message, dict):
            self.media.digit(message)


def _leg(leg: MediaLeg) -> RtpengineLeg:
    if not isinstance(leg, RtpengineLeg):
        raise TypeError("not an rtpengine leg")
    return leg
