"""CRM addresses an account configures: its screen-pop URL and the origins allowed to frame it."""

from __future__ import annotations

from urllib.parse import urlsplit

from voicemgmt.domain.errors import InvalidInput

MAX_URL_LENGTH = 2000


def normalize_origin(raw: str) -> str:
    """Return ``scheme://host[:port]`` in lower case, or raise ``InvalidInput``.

    An origin is what a browser reports in ``postMessage`` and what ``frame-ancestors`` lists:
    no path, no query, no credentials, http or https only.
    """
    if not isinstance(raw, str) or not raw or len(raw) > 255:
        raise InvalidInput("an origin is a string like https://crm.example.com")
    parts = urlsplit(raw.strip())
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
        or any(c in parts.hostname for c in " ;,'\"<>*")
    ):
        raise InvalidInput(
            "an origin is scheme://host[:port] with http or https and nothing after",
            origin=raw,
        )
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


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
