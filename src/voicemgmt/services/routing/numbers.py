"""The platform's numbers as the routing service sees them: which account an inbound call is
for, from memory when recently read.

A number changed in this process is forgotten at once (``forget``); one changed by another
process (the CLI, another node) is re-read within ``MAX_AGE`` seconds.
"""

from __future__ import annotations

import time

from voicemgmt.domain.directory import Number
from voicemgmt.services.ports import UnitOfWorkFactory

# A directory changed by another process (the CLI) reaches a running core within this long.
MAX_AGE = 30.0


class NumberCache:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow
        self._numbers: dict[str, tuple[Number, float]] = {}  # e164 → (number, read at)

    async def get(self, e164: str) -> Number | None:
        """The platform's number ``e164`` (any account's), or ``None``."""
        cached = self._numbers.get(e164)
        if cached is not None and time.monotonic() - cached[1] < MAX_AGE:
            return cached[0]
        async with self._uow() as uow:
            number = await uow.directory.number(e164)
        if number is None:
            self._numbers.pop(e164, None)
        else:
            self._numbers[e164] = (number, time.monotonic())
        return number

    def remember(self, account_id: int, numbers: list[Number]) -> None:
        """``numbers`` are all of the account's numbers, just read."""
        self.forget_account(account_id)
        now = time.monotonic()
        for number in numbers:
            self._numbers[number.e164] = (number, now)

    def forget(self, e164: str) -> None:
        self._numbers.pop(e164, None)

    def forget_account(self, account_id: int) -> None:
        self._numbers = {
            e164: entry
            for e164, entry in self._numbers.items()
            if entry[0].account_id != account_id
        }
