"""TLS contexts for SIP over TLS (RFC 3261 §26.2, RFC 5630), from PEM files named in settings.

``server_context``: our certificate chain and key, TLS 1.2 at least, no client certificate
asked (phones authenticate by digest). ``client_context``: what we require of the peers we
connect to (a trunk, a phone's static ``sips:`` contact): a certificate valid for the address
we dial, from ``ca_file`` or the system's authorities, unless verification is turned off.
Certificates are read once, at start: replacing the files takes a restart.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsSetupError(ValueError):
    """A certificate, key or CA file that cannot be used; the message says which and why."""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"cannot use the SIP TLS certificate {cert} with key {key}: {exc}"
        ) from exc
    return context


def client_context(
    *,
    ca_file: Path | None = None,
    verify: bool = True,
    cert: Path | None = None,
    key: Path | None = None,
) -> ssl.SSLContext:
    """``cert``/``key``: presented to peers that ask for a client certificate (carriers)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        try:
            if ca_file is not None:
                context.load_verify_locations(cafile=ca_file)
            else:
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        except (OSError, ssl.SSLError) as exc:
            raise TlsSetupError(f"cannot read the SIP TLS CA file {ca_file}: {exc}") from exc
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None and key is not None:
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsSetupError(f"cannot use the SIP TLS certificate {cert}: {exc}") from exc
    return context
