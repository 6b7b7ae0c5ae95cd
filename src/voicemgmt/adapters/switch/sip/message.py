"""SIP messages (RFC 3261 §7, §20): parse one datagram, serialise one message.

``parse`` accepts what real user agents send (compact header names, folded lines, LF line
ends, comma-joined list headers) and refuses, with ``SipSyntaxError``, anything over the
limits or missing what every request and response must carry. It never raises another
exception type, whatever the bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from voicemgmt.adapters.switch.sip.uri import (
    NameAddr,
    SipSyntaxError,
    SipUri,
    Via,
    is_digits,
    split_list,
)

MAX_MESSAGE = 16 * 1024  # a UDP datagram we accept; SIP over UDP should stay under the MTU
MAX_HEADERS = 80
MAX_LINE = 2048
MAX_BODY = 8 * 1024
MAX_CSEQ = 2**31 - 1
MAX_VIAS = 16

METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK", "UPDATE"}
    | {"SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"}
)

COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "u": "allow-events",
}
# Headers that may be joined with commas on one line (RFC 3261 §7.3.1).
LIST_HEADERS = frozenset(
    {"via", "contact", "route", "record-route", "allow", "supported", "require"}
    | {"proxy-require", "unsupported", "accept"}
)
_CANONICAL = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
}

REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    603: "Decline",
}


def canonical(name: str) -> str:
    """``call-id`` → ``Call-ID``: how a header name is written out."""
    return _CANONICAL.get(name) or "-".join(p.capitalize() for p in name.split("-"))


class Headers:
    """Ordered, case-insensitive headers; names are kept in their long, lower-case form."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(_long(n), v) for n, v in items]

    def get(self, name: str, default: str | None = None) -> str | None:
        name = _long(name)
        for key, value in self._items:
            if key == name:
                return value
        return default

    def all(self, name: str) -> list[str]:
        """Every value of ``name``; list headers are split at their commas."""
        name = _long(name)
        values = [v for k, v in self._items if k == name]
        if name in LIST_HEADERS:
            return [item for value in values for item in split_list(value)]
        return values

    def add(self, name: str, value: str) -> None:
        self._items.append((_long(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` with one value, in the place of the first."""
        name = _long(name)
        for index, (key, _) in enumerate(self._items):
            if key == name:
                self._items[index] = (name, value)
                self._items = [
                    item for i, item in enumerate(self._items) if i <= index or item[0] != name
                ]
                return
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        name = _long(name)
        self._items = [item for item in self._items if item[0] != name]

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (_long(name), value))

    def copy(self) -> Headers:
        return Headers(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _long(name: str) -> str:
    name = name.strip().lower()
    return COMPACT.get(name, name)


@dataclass(slots=True)
class Message:
    headers: Headers
    body: bytes = b""

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = (self.headers.get("cseq") or "").partition(" ")
        return int(number), method.strip().upper()

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.all("via")]

    @property
    def top_via(self) -> Via:
        return Via.parse(self.headers.all("via")[0])

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("from") or "")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("to") or "")

    @property
    def contact(self) -> NameAddr | None:
        values = self.headers.all("contact")
        if not values or values[0].strip() == "*":
            return None
        return NameAddr.parse(values[0])

    def start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        self.headers.set("content-length", str(len(self.body)))
        lines = [self.start_line()]
        lines.extend(f"{canonical(name)}: {value}" for name, value in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(slots=True)
class Request(Message):
    method: str = "OPTIONS"
    uri: SipUri = field(default_factory=lambda: SipUri("sip", None, "invalid"))

    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"


@dataclass(slots=True)
class Response(Message):
    status: int = 200
    reason: str = "OK"

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"


def parse(data: bytes) -> Request | Response:
    """One datagram as a SIP message; ``SipSyntaxError`` if it is not a valid one."""
    if len(data) > MAX_MESSAGE:
        raise SipSyntaxError("message too large")
    head, body = _split_head(data.lstrip(b"\r\n"))  # §7.5: CRLFs before the start line
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipSyntaxError("headers are not UTF-8") from exc
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or not lines[0]:
        raise SipSyntaxError("empty message")
    start, header_lines = lines[0], lines[1:]
    headers = Headers(_header_fields(header_lines))
    message = _start(start, headers)
    message.body = _body(headers, body)
    _check(message)
    return message


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = data.partition(separator)
        if found:
            return head, body
    return data.rstrip(b"\r\n"), b""


def _header_fields(lines: list[str]) -> Iterator[tuple[str, str]]:
    unfolded: list[str] = []
    for line in lines:
        if len(line) > MAX_LINE:
            raise SipSyntaxError("header line too long")
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in line):
            raise SipSyntaxError("control character in a header")
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise SipSyntaxError("continuation line before any header")
            unfolded[-1] += " " + line.strip()
            if len(unfolded[-1]) > MAX_LINE:
                raise SipSyntaxError("folded header too long")
        elif line:
            unfolded.append(line)
    if len(unfolded) > MAX_HEADERS:
        raise SipSyntaxError("too many headers")
    for line in unfolded:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or any(c in name for c in ' \t()<>@,;\\"/[]?={}'):
            raise SipSyntaxError(f"malformed header line {line[:40]!r}")
        yield name, value.strip()


def _start(line: str, headers: Headers) -> Request | Response:
    if len(line) > MAX_LINE:
        raise SipSyntaxError("start line too long")
    parts = line.split(" ")
    if line.startswith("SIP/2.0 "):
        if len(parts) < 2 or not (is_digits(parts[1]) and len(parts[1]) == 3):
            raise SipSyntaxError("bad status line")
        status = int(parts[1])
        if not 100 <= status <= 699:
            raise SipSyntaxError("status code out of range")
        return Response(headers, status=status, reason=" ".join(parts[2:]))
    if len(parts) != 3 or parts[2] != "SIP/2.0":
        raise SipSyntaxError("bad request line")
    method = parts[0]
    if not method.isalpha() or not method.isupper() or len(method) > 32:
        raise SipSyntaxError("bad method")
    return Request(headers, method=method, uri=SipUri.parse(parts[1]))


def _body(headers: Headers, rest: bytes) -> bytes:
    declared = headers.get("content-length")
    if declared is None:
        body = rest  # over UDP the datagram ends the body (RFC 3261 §18.3)
    else:
        if not is_digits(declared) or len(declared) > 6:
            raise SipSyntaxError("bad Content-Length")
        length = int(declared)
        if length > len(rest):
            raise SipSyntaxError("body shorter than Content-Length")
        body = rest[:length]
    if len(body) > MAX_BODY:
        raise SipSyntaxError("body too large")
    return body


def _check(message: Request | Response) -> None:
    """The headers every message needs, readable (RFC 3261 §8.1.1)."""
    headers = message.headers
    for name in ("via", "from", "to", "call-id", "cseq"):
        if headers.get(name) is None:
            raise SipSyntaxError(f"missing {canonical(name)}")
    if not message.call_id or len(message.call_id) > 256 or " " in message.call_id:
        raise SipSyntaxError("bad Call-ID")
    vias = message.vias
    if len(vias) > MAX_VIAS:
        raise SipSyntaxError("too many Via headers")
    message.from_  # noqa: B018 (parsing is the check)
    message.to  # noqa: B018
    cseq = headers.get("cseq") or ""
    number, _, method = cseq.partition(" ")
    if not is_digits(number) or len(number) > 10 or int(number) > MAX_CSEQ or not method.strip():
        raise SipSyntaxError("bad CSeq")
    if isinstance(message, Request):
        if method.strip() != message.method:
            raise SipSyntaxError("CSeq method differs from the request's")
        max_forwards = headers.get("max-forwards")
        if max_forwards is not None and (not is_digits(max_forwards) or len(max_forwards) > 3):
            raise SipSyntaxError("bad Max-Forwards")
        if not vias[0].branch:
            raise SipSyntaxError("top Via has no branch")
    for value in headers.all("contact"):
        if value.strip() != "*":
            NameAddr.parse(value)


def response_to(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response copying Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6)."""
    out = Headers()
    for name, value in request.headers:
        if name in ("via", "from", "call-id", "cseq") or (name == "record-route" and status < 300):
            out.add(name, value)
    to = request.headers.get("to") or ""
    if to_tag and status > 100 and NameAddr.parse(to).tag is None:
        to = f"{to};tag={to_tag}"
    out.add("to", to)
    for name, value in headers:
        out.add(name, value)
    return Response(out, body, status=status, reason=reason or REASONS.get(status, "Unknown"))
