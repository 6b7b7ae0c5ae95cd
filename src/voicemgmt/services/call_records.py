"""Call records (CDRs): the stored form, the storage port, the use cases.

A record is what a finished call leaves behind (``CallRecord``, emitted by the routing core in
``CallEnded``). Records are named after the platform API's fields (SPEC §6) and are kept per
account; reading them is always scoped to one account and to a time window on ``started_at``,
``since`` included, ``until`` excluded.

Figures are defined in ``record_figures.py``; CSV export is ``record_csv.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from voicemgmt.domain.errors import InvalidInput
from voicemgmt.domain.routing.model import CallRecord, Outcome, Side
from voicemgmt.services.record_figures import (
    MAX_BUCKETS,
    MIN_BUCKET_SECONDS,
    Charts,
    GroupFigures,
    OperatorFigures,
    OperatorTally,
    iso,
    ms,
)

MAX_WINDOW = timedelta(days=31)
MAX_PAGE = 1000
MAX_IDS = 100
MAX_CALL_ID = 40  # the stored id's length
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the store
MAX_SERVICE_LEVEL_SECONDS = 3600.0
DIRECTIONS = ("in", "out")


@dataclass(frozen=True, slots=True)
class StoredCallRecord:
    """A call record as stored: ``CallRecord`` with its times as aware UTC datetimes."""

    id_call: str
    direction: str
    caller_number: str
    service_number: str
    id_group: int | None
    id_op: int | None
    outcome: Outcome
    ended_by: Side
    disconnect_reason: str
    started_at: datetime
    ended_at: datetime
    duration: float
    duration_ring: float
    duration_svi: float
    duration_wait: float
    duration_comm: float
    duration_hold: float
    post_appel: float
    operators_offered: tuple[int, ...]
    overflowed_from: tuple[int, ...]
    ticket_id: str | None
    variables: dict[str, str]

    @classmethod
    def from_record(cls, record: CallRecord) -> StoredCallRecord:
        return cls(
            id_call=record.id_call,
            direction=record.direction,
            caller_number=record.caller_number,
            service_number=record.service_number,
            id_group=record.id_group,
            id_op=record.id_op,
            outcome=record.outcome,
            ended_by=record.ended_by,
            disconnect_reason=record.disconnect_reason,
            started_at=datetime.fromtimestamp(record.started_at, UTC),
            ended_at=datetime.fromtimestamp(record.ended_at, UTC),
            duration=record.duration,
            duration_ring=record.duration_ring,
            duration_svi=record.duration_svi,
            duration_wait=record.duration_wait,
            duration_comm=record.duration_comm,
            duration_hold=record.duration_hold,
            post_appel=record.post_appel,
            operators_offered=tuple(record.operators_offered),
            overflowed_from=tuple(record.overflowed_from),
            ticket_id=record.ticket_id,
            variables=dict(record.variables),
        )

    def to_json(self) -> dict[str, Any]:
        """The platform API's shape: ``id_appel`` and ``date`` beside our own names."""
        return {
            "id_call": self.id_call,
            "id_appel": self.id_call,
            "date": iso(self.started_at),
            "date_end": iso(self.ended_at),
            "direction": self.direction,
            "caller_number": self.caller_number,
            "service_number": self.service_number,
            "id_group": self.id_group,
            "id_op": self.id_op,
            "outcome": self.outcome.value,
            "ended_by": self.ended_by.value,
            "disconnect_reason": self.disconnect_reason,
            "duration": ms(self.duration),
            "duration_ring": ms(self.duration_ring),
            "duration_svi": ms(self.duration_svi),
            "duration_wait": ms(self.duration_wait),
            "duration_comm": ms(self.duration_comm),
            "duration_hold": ms(self.duration_hold),
            "post_appel": ms(self.post_appel),
            "operators_offered": list(self.operators_offered),
            "overflowed_from": list(self.overflowed_from),
            "ticket_id": self.ticket_id,
            "variables": dict(self.variables),
        }


def record_json(record: CallRecord) -> dict[str, Any]:
    """A fresh record (from ``CallEnded``) in the same shape as a stored one."""
    return StoredCallRecord.from_record(record).to_json()


class CallRecordStore(Protocol):
    """Durable call records and operators' presence; each call manages its own transaction."""

    async def add(self, account_id: int, record: CallRecord) -> None:
        """Keep ``record``; a record whose ``id_call`` is already stored is ignored."""
        ...

    async def add_many(self, account_id: int, records: Sequence[CallRecord]) -> None:
        """``add`` for several records, all in one transaction."""
        ...

    async def query(
        self,
        account_id: int,
        *,
        since: datetime,
        until: datetime,
        id_group: int | None = None,
        id_op: int | None = None,
        outcome: Outcome | None = None,
        direction: str | None = None,
        service_number: str | None = None,
        caller_number: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredCallRecord]:
        """Records started in ``[since, until)`` matching every filter given, newest first."""
        ...

    async def count(
        self,
        account_id: int,
        *,
        since: datetime,
        until: datetime,
        id_group: int | None = None,
        id_op: int | None = None,
        outcome: Outcome | None = None,
        direction: str | None = None,
        service_number: str | None = None,
        caller_number: str | None = None,
    ) -> int: ...

    async def by_ids(self, account_id: int, ids: Sequence[str]) -> list[StoredCallRecord]:
        """The account's records among ``ids`` (other accounts' and unknown ids: left out)."""
        ...

    async def figures(
        self, account_id: int, *, since: datetime, until: datetime, service_level_seconds: float
    ) -> list[GroupFigures]:
        """One row per group that has inbound calls in the window, by id, then the total."""
        ...

    async def operator_figures(
        self, account_id: int, *, since: datetime, until: datetime
    ) -> list[OperatorFigures]:
        """Per operator with answered calls started in the window, by id."""
        ...

    async def charts(
        self,
        account_id: int,
        *,
        since: datetime,
        until: datetime,
        bucket_seconds: int,
        id_group: int | None = None,
    ) -> Charts:
        """``Charts`` of the window; buckets start at ``since`` cut to the whole second."""
        ...

    async def set_presence(
        self, account_id: int, operator_id: int, presence: str, since: datetime
    ) -> None:
        """Remember the operator's chosen status; ``NoSuchOperator`` if not the account's."""
        ...

    async def presences(self, account_id: int) -> dict[int, tuple[str, datetime]]: ...

    async def operator_tallies(
        self, account_id: int, *, since: datetime
    ) -> dict[int, OperatorTally]:
        """Per operator with calls answered (both directions) in records started since then."""
        ...


def _check_window(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("since and until must carry a time zone")
    if since >= until:
        raise InvalidInput("since must be before until")
    if until - since > MAX_WINDOW:
        raise InvalidInput(f"the window from since to until is at most {MAX_WINDOW.days} days")


def _check_id(name: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{name} must be between 1 and {MAX_ID}")


class CallRecordService:
    """Reading call records and figures, with every filter checked before the store is asked."""

    def __init__(self, store: CallRecordStore) -> None:
        self._store = store

    async def records(
        self,
        account_id: int,
        *,
        since: datetime,
        until: datetime,
        id_group: int | None = None,
        id_op: int | None = None,
        outcome: Outcome | str | None = None,
        direction: str | None = None,
        service_number: str | None = None,
        caller_number: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredCallRecord]:
        """A page of the account's records started in ``[since, until)``, newest first.

        ``service_number`` and ``caller_number`` match exactly (E.164 digits as stored).
        """
        wanted = self._filters(since, until, id_group, id_op, outcome, direction)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        if not 0 <= offset <= MAX_ID:
            raise InvalidInput(f"offset must be between 0 and {MAX_ID}")
        return await self._store.query(
            account_id,
            since=since,
            until=until,
            id_group=id_group,
            id_op=id_op,
            outcome=wanted,
            direction=direction,
            service_number=service_number,
            caller_number=caller_number,
            limit=limit,
            offset=offset,
        )

    async def count(
        self,
        account_id: int,
        *,
        since: datetime,
        until: datetime,
        id_group: int | None = None,
        id_op: int | None = None,
        outcome: Outcome | str | None = None,
        direction: str | None = None,
        service_number: str | None = None,
        caller_number: str | None = None,
    ) -> int:
        """How many records ``records`` would go through with the same filters."""
        wanted = self._filters(since, until, id_group, id_op, outcome, direction)
        return await self._store.count(
            account_id,
            since=since,
            until=until,
            id_group=id_group,
            id_op=id_op,
            outcome=wanted,
            direction=direction,
            service_number=service_number,
            caller_number=caller_number,
        )

    async def by_ids(self, account_id: int, ids: Sequence[str]) -> list[StoredCallRecord]:
        """The account's records of the calls ``ids`` (at most ``MAX_IDS``), in no set order."""
        if len(ids) > MAX_IDS:
            raise InvalidInput(f"at most {MAX_IDS} call ids at a time")
        if any(not isinstance(i, str) or not 1 <= len(i) <= MAX_CALL_ID for i in ids):
            raise InvalidInput(f"a call id has 1 to {MAX_CALL_ID} characters")
        return await self._store.by_ids(account_id, list(dict.fromkeys(ids)))

    async def figures(
        self,
        account_id: int,
        *,
        since: datetime,
        until: datetime,
        service_level_seconds: float = 20.0,
    ) -> list[GroupFigures]:
        """Per-group figures of inbound calls started in ``[since, until)``, then the total."""
        _check_window(since, until)
        if not (
            math.isfinite(service_level_seconds)
            and 0 <= service_level_seconds <= MAX_SERVICE_LEVEL_SECONDS
        ):
            raise InvalidInput(
                f"service_level_seconds must be between 0 and {MAX_SERVICE_LEVEL_SECONDS:g}"
            )
        return await self._store.figures(
            account_id, since=since, until=until, service_level_seconds=service_level_seconds
        )

    async def operator_figures(
        self, account_id: int, *, since: datetime, until: datetime
    ) -> list[OperatorFigures]:
        """Answered calls (both directions) and talk time per operator in ``[since, until)``."""
        _check_window(since, until)
        return await self._store.operator_figures(account_id, since=since, until=until)

    async def charts(
        self,
        account_id: int,
        *,
        since: datetime,
        until: datetime,
        bucket_seconds: int = 900,
        id_group: int | None = None,
    ) -> Charts:
        """Calls by ``bucket_seconds`` slice from ``since`` and outcome; the wait distribution."""
        _check_window(since, until)
        _check_id("id_group", id_group)
        if not MIN_BUCKET_SECONDS <= bucket_seconds <= 86_400:
            raise InvalidInput(f"bucket_seconds must be between {MIN_BUCKET_SECONDS} and 86400")
        if (until - since).total_seconds() / bucket_seconds > MAX_BUCKETS:
            raise InvalidInput(f"at most {MAX_BUCKETS} buckets: widen bucket_seconds")
        return await self._store.charts(
            account_id, since=since, until=until, bucket_seconds=bucket_seconds, id_group=id_group
        )

    @staticmethod
    def _filters(
        since: datetime,
        until: datetime,
        id_group: int | None,
        id_op: int | None,
        outcome: Outcome | str | None,
        direction: str | None,
    ) -> Outcome | None:
        _check_window(since, until)
        _check_id("id_group", id_group)
        _check_id("id_op", id_op)
        if direction is not None and direction not in DIRECTIONS:
            raise InvalidInput("direction must be 'in' or 'out'")
        if outcome is None or isinstance(outcome, Outcome):
            return outcome
        try:
            return Outcome(outcome)
        except ValueError:
            known = ", ".join(o.value for o in Outcome)
            raise InvalidInput(f"outcome must be one of: {known}") from None
