"""The SIP driver: a ``Switch`` that speaks SIP over UDP, TCP and TLS and anchors RTP media
(SRTP keyed by SDES over TLS).

Sans-IO protocol layers (no sockets, no clock: time is passed in, timers come out as
deadlines), in the spirit of h11:

- ``uri``: SIP/tel URIs, name-addr, Via values.
- ``message``: parsing and serialising requests and responses, with strict limits.
- ``transaction``: RFC 3261 §17 client and server transactions (INVITE and non-INVITE).
- ``dialog``: RFC 3261 §12 dialogs and in-dialog requests.
- ``digest``: RFC 7616/2617 digest authentication, server and client side.
- ``framing``: messages cut out of a TCP/TLS stream (RFC 3261 §18.3).
- ``sdp``: RFC 4566 offer/answer for PCMU, PCMA and telephone-event.
- ``sdes``, ``media_policy``: SRTP keys (RFC 4568) and the media encryption policies.
- ``rtp``: RTP headers and RFC 4733 DTMF events.

The I/O lives in ``transport`` (over ``udp`` and ``stream``: asyncio UDP, TCP, TLS),
``driver`` (the ``Switch``), ``media/`` (RTP relay backends) and ``prompts`` (audio files and
text rendered to G.711).
"""
