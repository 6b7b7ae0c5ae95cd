"""SIP and tel URIs (RFC 3261 §19.1, RFC 3966), name-addr values and Via values.

Parsing is strict about structure and lenient about case; anything it cannot read raises
``SipSyntaxError`` (a ``ValueError``), never anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

MAX_URI = 1024
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+")
_USER_CHARS = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")


class SipSyntaxError(ValueError):
    """A SIP message or one of its parts cannot be read."""


def is_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes superscripts (``²``), which ``int``
    refuses, and other scripts' digits."""
    return text.isascii() and text.isdigit()


def parse_params(text: str) -> dict[str, str | None]:
    """``;a=b;c`` → ``{"a": "b", "c": None}``; names are lower-cased, quoted values kept."""
    params: dict[str, str | None] = {}
    for part in _split(text, ";"):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not _TOKEN.fullmatch(name):
            raise SipSyntaxError(f"bad parameter name {name!r}")
        params[name] = value.strip() if eq else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside quotes and angle brackets."""
    parts: list[str] = []
    current: list[str] = []
    quoted, angle, escaped = False, 0, False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            angle += 1
        elif not quoted and char == ">":
            angle = max(0, angle - 1)
        elif not quoted and not angle and char == separator:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise SipSyntaxError("unterminated quoted string")
    parts.append("".join(current))
    return parts


def split_list(value: str) -> list[str]:
    """A comma-separated header value (Via, Contact, Route...) as its elements."""
    return [p.strip() for p in _split(value, ",") if p.strip()]


@dataclass(frozen=True, slots=True)
class SipUri:
    scheme: str  # "sip", "sips" or "tel"
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        if not text or len(text) > MAX_URI or any(ord(c) < 33 or ord(c) == 127 for c in text):
            raise SipSyntaxError("bad URI")
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips", "tel"):
            raise SipSyntaxError(f"unsupported URI scheme in {text[:40]!r}")
        rest, _, _headers = rest.partition("?")
        if scheme == "tel":
            number, _, params = rest.partition(";")
            if not number or not re.fullmatch(r"\+?[0-9()./-]+", number):
                raise SipSyntaxError("bad tel URI")
            return cls("tel", number, "", None, parse_params(params))
        user: str | None = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            user = userinfo.partition(":")[0]
            if not user or not _USER_CHARS.fullmatch(user):
                raise SipSyntaxError("bad user part")
        hostport, _, params = rest.partition(";")
        host, port = _hostport(hostport)
        return cls(scheme, user, host, port, parse_params(params))

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{self.host}{port}{format_params(self.params)}"

    def with_params(self, **params: str | None) -> SipUri:
        return replace(self, params={**self.params, **params})

    @property
    def transport(self) -> str:
        """``TLS`` for a ``sips:`` URI, else its ``transport`` parameter (``UDP`` without)."""
        if self.scheme == "sips":
            return "TLS"
        named = (self.params.get("transport") or "udp").upper()
        return named if named in ("UDP", "TCP", "TLS") else "UDP"

    @property
    def address(self) -> tuple[str, int]:
        """Where to send to (no DNS: hosts are addresses on this platform)."""
        default = 5061 if self.transport == "TLS" else 5060
        return (self.host.strip("[]"), self.port or default)


def _hostport(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[: end + 1], text[end + 1 :]
    else:
        host, _, port_text = text.partition(":")
        rest = ":" + port_text if port_text or text.endswith(":") else ""
    if not _HOST.fullmatch(host):
        raise SipSyntaxError(f"bad host {host[:40]!r}")
    if not rest:
        return host.lower(), None
    if not rest.startswith(":") or not is_digits(rest[1:]) or not 0 < int(rest[1:]) < 65536:
        raise SipSyntaxError("bad port")
    return host.lower(), int(rest[1:])


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``"Display" <uri>;params`` as in From, To, Contact, Route."""

    uri: SipUri
    display: str = ""
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if "<" in text:
            before, _, after = text.partition("<")
            inner, closing, params = after.partition(">")
            if not closing:
                raise SipSyntaxError("unterminated <uri>")
            display = before.strip()
            if display.startswith('"'):
                if len(display) < 2 or not display.endswith('"'):
                    raise SipSyntaxError("bad display name")
                display = display[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            return cls(SipUri.parse(inner), display, parse_params(params))
        # addr-spec without brackets: parameters belong to the header, not the URI
        uri, _, params = text.partition(";")
        return cls(SipUri.parse(uri), "", parse_params(params))

    def __str__(self) -> str:
        display = self.display.replace("\\", "\\\\").replace('"', '\\"')
        shown = f'"{display}" ' if display else ""
        return f"{shown}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params={**self.params, "tag": tag})


@dataclass(frozen=True, slots=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        protocol, _, rest = text.strip().partition(" ")
        parts = protocol.split("/")
        if len(parts) != 3 or parts[0].upper() != "SIP" or parts[1] != "2.0":
            raise SipSyntaxError("bad Via protocol")
        sent_by, _, params = rest.strip().partition(";")
        host, port = _hostport(sent_by)
        return cls(parts[2].upper(), host, port, parse_params(params))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int]:
        return (self.host, self.port or 5060)

    def received_from(self, host: str, port: int) -> Via:
        """RFC 3261 §18.2.1 and RFC 3581: note where the request really came from."""
        params = dict(self.params)
        if host != self.host or "received" in params:  # never where the peer says it is
            params["received"] = host
        if "rport" in params:
            params["rport"] = str(port)
            params["received"] = host
        return replace(self, params=params)

    @property
    def response_address(self) -> tuple[str, int]:
        """Where responses go (RFC 3261 §18.2.2, RFC 3581)."""
        host = self.params.get("received") or self.host
        rport = self.params.get("rport")
        if rport and is_digits(rport) and 0 < int(rport) < 65536:
            return (host.strip("[]"), int(rport))
        port = self.port or 5060
        return (host.strip("[]"), port)
