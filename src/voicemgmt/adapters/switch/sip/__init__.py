"""The SIP driver: a ``Switch`` that speaks SIP over UDP and anchors RTP media.

Sans-IO protocol layers (no sockets, no clock: time is passed in, timers come out as
deadlines), in the spirit of h11:

- ``uri``: SIP/tel URIs, name-addr, Via values.
- ``message``: parsing and serialising requests and responses, with strict limits.
- ``transaction``: RFC 3261 §17 client and server transactions (INVITE and non-INVITE).
- ``dialog``: RFC 3261 §12 dialogs and in-dialog requests.
- ``digest``: RFC 7616/2617 digest authentication, server and client side.
- ``sdp``: RFC 4566 offer/answer for PCMU, PCMA and telephone-event.
- ``rtp``: RTP headers and RFC 4733 DTMF events.

The I/O lives in ``transport`` (asyncio UDP), ``driver`` (the ``Switch``), ``media/`` (RTP
relay backends) and ``prompts`` (audio files and text rendered to G.711).
"""
