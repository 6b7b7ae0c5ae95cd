"""CRM addresses an account configures: its screen-pop URL and the origins allowed to frame it."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

from voicemgmt.domain.errors import InvalidInput

MAX_URL_LENGTH = 2000
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(raw: str) -> str:
    """Return ``scheme://host[:port]`` in lower case, or raise ``InvalidInput``.

    An origin is what a browser reports in ``postMessage`` and what ``frame-ancestors`` lists:
    no path, no query, no credentials, http or https only.
    """
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 255:
        raise InvalidInput("an origin is a string like https://crm.example.com")
    raw = raw.strip()
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cs") for c in raw):
        raise InvalidInput("an origin must not contain blanks or control characters", origin=raw)
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidInput("the origin's port is not a number", origin=raw) from exc
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise InvalidInput(
            "an origin is scheme://host[:port] with http or https and nothing after",
            origin=raw,
        )
    host = _ascii_host(parts.hostname, raw)
    # Browsers leave the default port out of an origin; so must we, or it would never match.
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _ascii_host(hostname: str, raw: str) -> str:
    """The host as browsers report it: IDNA (punycode) for names, brackets for IPv6."""
    if ":" in hostname:
        try:
            return f"[{ipaddress.IPv6Address(hostname)}]"
        except ValueError as exc:
            raise InvalidInput("the origin's IPv6 address is not valid", origin=raw) from exc
    try:
        host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidInput("the origin's host name is not valid", origin=raw) from exc
    if not _HOST.fullmatch(host):
        raise InvalidInput("the origin's host name is not valid", origin=raw)
    return host


def normalize_crm_url(raw: str) -> str:
    """Validate the URL a screen-pop opens: absolute http(s), bounded length."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("crm_url must be an absolute http(s) URL")
    url = raw.strip()
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"crm_url is longer than {MAX_URL_LENGTH} characters")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c in url for c in " \t\r\n<>\"'")
    ):
        raise InvalidInput("crm_url must be an absolute http(s) URL", crm_url=url[:100])
    return url
