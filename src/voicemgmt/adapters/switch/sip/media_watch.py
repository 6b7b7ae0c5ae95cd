"""RTP inactivity: which legs of answered calls have gone quiet for too long.

A leg is watched while its call is answered and not on hold: the remote party (caller or
customer) once answered, and the operator's phone once bridged to it. Each check reads how
many RTP packets the media backend has received from the leg's peer; a leg whose count has
not moved for ``timeout`` seconds (counted from when it began to be watched) is quiet. Either
side going quiet is enough: a phone that lost power or network, a carrier that dropped the
stream. A leg that stops being watched (hold) starts a fresh period when it is watched again.
Backends that cannot count (None) are never found quiet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from voicemgmt.adapters.switch.sip.calls import SipCall
from voicemgmt.adapters.switch.sip.media.base import MediaBackend, MediaLeg

log = logging.getLogger(__name__)


class MediaWatch:
    def __init__(self, media: MediaBackend, timeout: float) -> None:
        self.media = media
        self.timeout = timeout
        self._seen: dict[MediaLeg, tuple[int, float]] = {}  # leg → (packets, unchanged since)

    @property
    def interval(self) -> float:
        """How often to check: a quarter of the timeout, between 0.5 and 5 seconds."""
        return min(5.0, max(0.5, self.timeout / 4))

    async def run(
        self,
        calls: Callable[[], list[SipCall]],
        clock: Callable[[], float],
        lost: Callable[[SipCall], None],
    ) -> None:
        """Every ``interval``, call ``lost`` for each call with a quiet leg (until cancelled)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                owners = {leg.media: call for call in calls() for leg in call.watched_media()}
                for media in await self.quiet(list(owners), clock()):
                    lost(owners[media])
            except Exception:
                log.exception("the RTP inactivity check failed")

    async def quiet(self, watched: list[MediaLeg], now: float) -> list[MediaLeg]:
        """The legs among ``watched`` whose peer has sent no RTP for ``timeout`` seconds."""
        found: list[MediaLeg] = []
        current = set(watched)
        for leg in list(self._seen):
            if leg not in current:
                del self._seen[leg]  # no longer watched (hung up, on hold): forget it
        for leg in watched:
            count = await self.media.packets_received(leg)
            if count is None:
                continue
            previous = self._seen.get(leg)
            if previous is None or previous[0] != count:
                self._seen[leg] = (count, now)
            elif now - previous[1] >= self.timeout:
                found.append(leg)
        return found
