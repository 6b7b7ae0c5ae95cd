"""Secrets the platform must read back (webhook signing secrets), encrypted at rest.

AES-256-GCM with a key derived (HKDF-SHA256) from the platform's secret key (``VM_SECRET_KEY``
or ``secret.key`` in the data directory), with a purpose label so that the key serves nothing
else. A database dump alone does not reveal the secrets; changing the platform's secret key
makes the stored ones unreadable (rotate every webhook's secret afterwards).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A stored secret does not decrypt: the platform's secret key changed since."""


class SecretBox:
    def __init__(self, platform_key: bytes, purpose: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
            platform_key
        )
        self._aead = AESGCM(key)
        self._purpose = purpose.encode()

    def seal(self, text: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, text.encode(), self._purpose)

    def open(self, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._purpose)
        except (InvalidTag, ValueError) as exc:
            raise SecretUnreadable("a stored secret does not decrypt with this secret key") from exc
        return plain.decode()
