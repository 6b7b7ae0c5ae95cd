"""SDP (RFC 4566) offer/answer (RFC 3264) for one audio stream: PCMU, PCMA, telephone-event.

``parse`` reads what a peer offered or answered; ``answer`` picks the first codec of the
offer we support and the offer's telephone-event payload type; ``offer`` and ``Session.render``
write our side. Unknown lines are ignored; a description we cannot use raises ``SdpError``.
The transport profile (``RTP/AVP``, ``RTP/SAVP``, DTLS-SRTP's ``UDP/TLS/RTP/SAVP``, and their
``F`` variants) and the usable SDES keys (``sdes``) are read; whether they are acceptable is
``media_policy``'s decision.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from enum import StrEnum

from voicemgmt.adapters.switch.sip.sdes import Crypto, parse_crypto

MAX_SDP = 8192
PCMU, PCMA = 0, 8
STATIC = {PCMU: "PCMU", PCMA: "PCMA"}
DEFAULT_DTMF_PT = 101
PROFILES = frozenset(
    {"RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF"}
)
MAX_CRYPTOS = 16  # a=crypto lines read from one stream; more are ignored
DTLS_ATTRIBUTES = frozenset({"fingerprint", "setup", "tls-id"})
MAX_DTLS, MAX_DTLS_LINE = 8, 256  # kept as they are (passed to rtpengine, copied from it)


class SdpError(ValueError):
    pass


class Direction(StrEnum):
    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    def reversed(self) -> Direction:
        return {
            Direction.SENDONLY: Direction.RECVONLY,
            Direction.RECVONLY: Direction.SENDONLY,
        }.get(self, self)


@dataclass(frozen=True, slots=True)
class Session:
    """One side's audio stream: where to send RTP and what it carries."""

    host: str
    port: int  # 0: the stream is refused
    codecs: tuple[int, ...]  # payload types, preferred first (PCMU 0, PCMA 8)
    dtmf_pt: int | None = DEFAULT_DTMF_PT
    direction: Direction = Direction.SENDRECV
    session_id: int = 1
    version: int = 1
    ptime: int = 20
    profile: str = "RTP/AVP"
    cryptos: tuple[Crypto, ...] = ()  # the usable a=crypto lines (SDES)
    dtls_attributes: tuple[str, ...] = ()  # a=fingerprint, a=setup, a=tls-id (DTLS-SRTP)

    @property
    def fingerprint(self) -> bool:
        return any(a.startswith("fingerprint:") for a in self.dtls_attributes)

    @property
    def codec(self) -> int:
        return self.codecs[0]

    @property
    def srtp_only(self) -> bool:
        """The profile is a secure one (``RTP/SAVP``…): plain RTP is not an answer."""
        return "SAVP" in self.profile

    @property
    def dtls(self) -> bool:
        return self.profile.startswith("UDP/TLS/")

    @property
    def on_hold(self) -> bool:
        """The peer asks us not to send (RFC 3264 §8.4, and RFC 2543's c=0.0.0.0)."""
        return self.direction in (Direction.SENDONLY, Direction.INACTIVE) or self.host == "0.0.0.0"  # noqa: S104

    def render(self) -> bytes:
        formats = list(self.codecs) + ([self.dtmf_pt] if self.dtmf_pt is not None else [])
        lines = [
            "v=0",
            f"o=voicemgmt {self.session_id} {self.version} IN IP4 {self.host}",
            "s=voicemgmt",
            f"c=IN IP4 {self.host}",
            "t=0 0",
            f"m=audio {self.port} {self.profile} {' '.join(str(f) for f in formats)}",
        ]
        lines.extend(f"a=crypto:{crypto.render()}" for crypto in self.cryptos)
        lines.extend(f"a=rtpmap:{pt} {STATIC[pt]}/8000" for pt in self.codecs)
        if self.dtmf_pt is not None:
            lines.append(f"a=rtpmap:{self.dtmf_pt} telephone-event/8000")
            lines.append(f"a=fmtp:{self.dtmf_pt} 0-16")
        lines.extend(f"a={attribute}" for attribute in self.dtls_attributes)
        lines.append(f"a=ptime:{self.ptime}")
        lines.append(f"a={self.direction.value}")
        return ("\r\n".join(lines) + "\r\n").encode()

    def with_direction(self, direction: Direction) -> Session:
        return replace(self, direction=direction, version=self.version + 1)


def parse(body: bytes) -> Session:
    """The first audio stream of a session description."""
    if not body or len(body) > MAX_SDP:
        raise SdpError("empty or oversized SDP")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("SDP is not UTF-8") from exc
    session_host: str | None = None
    media_host: str | None = None
    port: int | None = None
    formats: list[int] = []
    rtpmap: dict[int, str] = {}
    direction = Direction.SENDRECV
    profile = "RTP/AVP"
    cryptos: list[Crypto] = []
    dtls: list[str] = []
    in_audio = seen_media = False
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            if seen_media and in_audio:
                break  # only the first audio stream matters
            fields = value.split()
            in_audio = len(fields) >= 4 and fields[0] == "audio" and port is None
            seen_media = True
            if in_audio:
                if not _digits(fields[1]) or int(fields[1]) > 65535:
                    raise SdpError("bad media port")
                if fields[2] not in PROFILES:
                    raise SdpError(f"unsupported media transport {fields[2][:40]}")
                profile = fields[2]
                port = int(fields[1])
                formats = [int(f) for f in fields[3:] if _digits(f) and int(f) < 128]
        elif kind == "c":
            fields = value.split()
            if len(fields) != 3 or fields[0] != "IN" or fields[1] != "IP4":
                raise SdpError("only IPv4 connection addresses are supported")
            host = _ipv4(fields[2].split("/")[0])
            if seen_media:
                if in_audio:
                    media_host = host
            else:
                session_host = host
        elif kind == "a" and (in_audio or not seen_media):
            name, _, attr = value.partition(":")
            if name == "rtpmap" and in_audio:
                pt, _, encoding = attr.partition(" ")
                if _digits(pt):
                    rtpmap[int(pt)] = encoding.strip().lower()
            elif name in Direction.__members__.values():
                direction = Direction(name)
            elif name == "crypto" and in_audio and len(cryptos) < MAX_CRYPTOS:
                crypto = parse_crypto(attr)
                if crypto is not None:
                    cryptos.append(crypto)
            elif name in DTLS_ATTRIBUTES and len(dtls) < MAX_DTLS and _short_printable(value):
                dtls.append(value)
    if port is None:
        raise SdpError("no audio stream")
    found = media_host or session_host
    if found is None:
        raise SdpError("no connection address")
    host = found
    codecs = tuple(
        pt
        for pt in formats
        if pt in STATIC
        and rtpmap.get(pt, f"{STATIC[pt].lower()}/8000").startswith(f"{STATIC[pt].lower()}/8000")
    )
    dtmf = next(
        (pt for pt in formats if rtpmap.get(pt, "").startswith("telephone-event/8000")), None
    )
    return Session(
        host,
        port,
        codecs,
        dtmf,
        direction,
        profile=profile,
        cryptos=tuple(cryptos),
        dtls_attributes=tuple(dtls),
    )


def _short_printable(text: str) -> bool:
    return len(text) <= MAX_DTLS_LINE and text.isascii() and text.isprintable()


def _ipv4(text: str) -> str:
    """A dotted IPv4 address: RTP goes there as it is (no DNS on the media path, where a
    name would block the event loop and a bad one would close the socket)."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError as exc:
        raise SdpError(f"bad connection address {text[:40]!r}") from exc


def _digits(text: str) -> bool:
    """ASCII digits: ``str.isdigit`` also takes ``²``, which ``int`` refuses."""
    return text.isascii() and text.isdigit()


def answer(offer: Session, host: str, port: int, *, session_id: int = 1) -> Session:
    """Our answer to ``offer``: its first supported codec; ``SdpError`` if none (488)."""
    if offer.port == 0 or not offer.codecs:
        raise SdpError("no acceptable audio codec offered")
    return Session(
        host,
        port,
        (offer.codecs[0],),
        offer.dtmf_pt,
        offer.direction.reversed(),
        session_id=session_id,
    )


def offer(
    host: str,
    port: int,
    codecs: tuple[int, ...] = (PCMU, PCMA),
    *,
    session_id: int = 1,
    direction: Direction = Direction.SENDRECV,
) -> Session:
    return Session(host, port, codecs, DEFAULT_DTMF_PT, direction, session_id=session_id)
