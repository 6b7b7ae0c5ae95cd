"""The directory service's base: its unit of work, hasher and clock, and the announcement of
every change it commits (``DirectoryChange``) to those who keep a copy of the directory.

Every use case validates its input before touching storage and raises a domain error when
something is wrong, so a refused request leaves the store exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from voicemgmt.domain.directory import check_password
from voicemgmt.domain.errors import InvalidInput
from voicemgmt.services.ports import Clock, PasswordHasher, UnitOfWorkFactory


class Unchanged(Enum):
    """Marks an optional update argument that was not given (``None`` means remove)."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED

log = logging.getLogger("voicemgmt.services.directory")

MAX_PAGE = 1000


def page(limit: int, offset: int) -> tuple[int, int]:
    """A listing's page, checked."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE} and offset not negative")
    return limit, offset


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    """What changed in an account's directory, for those who keep a copy of it (the routing
    core, caches of accounts and sessions)."""

    account_id: int
    kind: str  # account, operator, supervisor, group, number
    id: int | str | None = None
    deleted: bool = False
    login: str | None = None  # the account's API login, for kind "account"


ChangeListener = Callable[[DirectoryChange], Awaitable[None]]


class DirectoryBase:
    """What every part of ``DirectoryService`` shares."""

    def __init__(self, uow: UnitOfWorkFactory, hasher: PasswordHasher, clock: Clock) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._listeners: list[ChangeListener] = []

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener`` after each change this service commits."""
        self._listeners.append(listener)

    async def _changed(self, change: DirectoryChange) -> None:
        for listener in self._listeners:
            try:
                await listener(change)
            except Exception:  # the change is committed; a stale copy heals itself later
                log.exception("a directory listener failed on %s", change)

    async def _hash(self, password: str | None) -> str | None:
        return None if password is None else await self._hasher.hash(check_password(password))
