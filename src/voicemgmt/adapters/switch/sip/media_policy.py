"""Whether a call's media is encrypted: a trunk's or phone's policy meets an SDP, without I/O.

Policies (``media_encryption`` of a phone, ``VM_SIP_TRUNK_MEDIA_ENCRYPTION`` of the trunk):

- ``required``: SRTP or no call. A plain-RTP offer is refused (488); we offer ``RTP/SAVP``.
- ``optional``: SRTP when the peer offers it, else plain RTP; we offer plain RTP with an
  ``a=crypto`` line (best-effort SRTP), which a peer without SRTP ignores.
- ``off``: plain RTP only; an offer of SRTP only (``RTP/SAVP``) is refused (488).

Keys are exchanged with SDES (``sdes``), which puts them in the SDP: over UDP or TCP anyone
on the path reads them. RFC 4568 §8.3 requires SDES to be used only over secure signalling,
so over UDP and TCP the platform neither sends keys nor takes them: a best-effort
``a=crypto`` there is ignored (plain RTP), an ``RTP/SAVP`` offer is refused (488), and a
``required`` peer must be reached over TLS. DTLS-SRTP offers (``UDP/TLS/RTP/SAVP``) are refused
by media backends that do not terminate DTLS (``dtls=False``: the relay); rtpengine terminates
it on the remote party's side, and the driver copies rtpengine's ``a=fingerprint`` and
``a=setup`` into its answer. Like SDES, DTLS-SRTP is taken over TLS only: the fingerprint is
what defeats a man in the middle, so it must not be open to rewriting (RFC 5763 §8). A backend
that cannot key a leg (``sdes=False``) refuses SRTP the same way. Every refusal carries a
reason, sent in a ``Warning`` header and logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.sdes import Crypto, choose, our_crypto

REQUIRED, OPTIONAL, OFF = "required", "optional", "off"
POLICIES = (REQUIRED, OPTIONAL, OFF)


class MediaRefused(Exception):
    """The offer or answer does not meet the policy; ``reason`` says why (for the peer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Keys:
    """What was agreed: the profile of our SDP, our key and the peer's (both None: plain)."""

    profile: str = "RTP/AVP"
    ours: Crypto | None = None  # we protect what we send with it
    theirs: Crypto | None = None  # the peer protects what it sends with it
    dtls: bool = False  # DTLS-SRTP, done by the media backend (rtpengine)

    @property
    def encrypted(self) -> bool:
        return (self.ours is not None and self.theirs is not None) or self.dtls


PLAIN = Keys()


@dataclass(frozen=True, slots=True)
class Capabilities:
    secure_signalling: bool  # the SDP travels over TLS
    sdes: bool = True  # the media backend can do SDES-keyed SRTP
    dtls: bool = False  # … and terminate DTLS-SRTP


def answer_offer(offer: sdp.Session, policy: str, can: Capabilities) -> Keys:
    """The keys of our answer to ``offer``; ``MediaRefused`` if the policy refuses it."""
    if offer.dtls:
        if policy == OFF:
            raise MediaRefused("SRTP offered but media encryption is off")
        if not can.dtls:
            raise MediaRefused("DTLS-SRTP is not supported by this media backend")
        if not offer.fingerprint:
            raise MediaRefused("a DTLS-SRTP offer needs an a=fingerprint")
        if not can.secure_signalling:  # the fingerprint is what stops a man in the middle
            raise MediaRefused("DTLS-SRTP is only taken over TLS (RFC 5763 section 8)")
        return Keys(offer.profile, dtls=True)
    chosen = choose(offer.cryptos)
    if offer.srtp_only:
        if policy == OFF:
            raise MediaRefused("SRTP offered but media encryption is off")
        _check_can_key(can)
        if chosen is None:
            raise MediaRefused("no usable a=crypto (AES_CM_128_HMAC_SHA1_80 or _32)")
        return Keys(offer.profile, our_crypto(chosen), chosen)
    if policy != OFF and chosen is not None and can.secure_signalling and can.sdes:
        return Keys(offer.profile, our_crypto(chosen), chosen)  # best-effort SRTP taken
    if policy == REQUIRED:
        if offer.cryptos:
            _check_can_key(can)
        raise MediaRefused("SRTP is required; the offer is plain RTP")
    return Keys(offer.profile)


def our_offer(policy: str, can: Capabilities) -> Keys:
    """The keys of an offer we make (their side is known from the answer)."""
    if policy == OFF:
        return PLAIN
    if policy == REQUIRED:
        _check_can_key(can)
        return Keys("RTP/SAVP", our_crypto())
    if can.secure_signalling and can.sdes:
        return Keys("RTP/AVP", our_crypto())
    return PLAIN


def check_answer(offered: Keys, answer: sdp.Session, policy: str) -> Keys:
    """What the peer's answer to ``offered`` agreed; ``MediaRefused`` if it breaks the policy."""
    ours = offered.ours
    theirs = None
    if ours is not None:
        theirs = next(
            (c for c in answer.cryptos if c.tag == ours.tag and c.suite == ours.suite), None
        )
    if theirs is not None:
        return Keys(offered.profile, ours, theirs)
    if policy == REQUIRED:
        raise MediaRefused("SRTP is required; the answer is plain RTP")
    if answer.srtp_only or answer.dtls:
        raise MediaRefused("the answer's profile is not the one offered")
    return Keys("RTP/AVP")


def _check_can_key(can: Capabilities) -> None:
    if not can.secure_signalling:
        raise MediaRefused("SDES keys are only exchanged over TLS (RFC 4568 section 8.3)")
    if not can.sdes:
        raise MediaRefused("SRTP is not available with this media backend")
