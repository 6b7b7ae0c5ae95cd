"""Digest HA1 values for SIP devices (RFC 7616 §3.4.2): what is stored instead of a password."""

from __future__ import annotations

import hashlib


def ha1_pair(username: str, realm: str, password: str) -> tuple[str, str]:
    """``H(username:realm:password)`` in MD5 and in SHA-256."""
    data = f"{username}:{realm}:{password}".encode()
    return hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha256(data).hexdigest()
