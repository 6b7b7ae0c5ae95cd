"""The call-record store on SQLAlchemy Core, for SQLite and PostgreSQL alike.

Each method is its own transaction. Adding is idempotent through ``INSERT ... ON CONFLICT DO
NOTHING`` on ``id_call``, so a retried batch never duplicates a record. Free-text fields longer
than their column (a caller id, a reason from the phone system) are clipped, never refused: a
call must not lose its record over a long string. Figures are aggregated by the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicemgmt.adapters.sql.record_figures import (
    charts_of,
    charts_query,
    figures_of,
    figures_query,
    operator_figures_of,
    operator_figures_query,
)
from voicemgmt.adapters.sql.tables import call_records, operator_presence, operators
from voicemgmt.domain.errors import InvalidInput, NoSuchAccount, NoSuchOperator
from voicemgmt.domain.routing.model import CallRecord, Outcome, Presence, Side
from voicemgmt.services.call_records import StoredCallRecord
from voicemgmt.services.record_figures import (
    Charts,
    GroupFigures,
    OperatorFigures,
    OperatorTally,
)

_c = call_records.c
_PRESENCES = frozenset(p.value for p in Presence)


def _length(column: Any) -> int:
    return int(column.type.length)


def _clip(value: str, column: Any) -> str:
    return value[: _length(column)]


def record_row(account_id: int, record: CallRecord) -> dict[str, Any]:
    if not 1 <= len(record.id_call) <= _length(_c.id_call):
        raise InvalidInput(f"a call id has 1 to {_length(_c.id_call)} characters")
    if record.direction not in ("in", "out"):
        raise InvalidInput("a call's direction is 'in' or 'out'")
    return {
        "id_call": record.id_call,
        "account_id": account_id,
        "direction": record.direction,
        "caller_number": _clip(record.caller_number, _c.caller_number),
        "service_number": _clip(record.service_number, _c.service_number),
        "id_group": record.id_group,
        "id_op": record.id_op,
        "outcome": record.outcome.value,
        "ended_by": record.ended_by.value,
        "disconnect_reason": _clip(record.disconnect_reason, _c.disconnect_reason),
        "started_at": datetime.fromtimestamp(record.started_at, UTC),
        "ended_at": datetime.fromtimestamp(record.ended_at, UTC),
        "duration": record.duration,
        "duration_ring": record.duration_ring,
        "duration_svi": record.duration_svi,
        "duration_wait": record.duration_wait,
        "duration_comm": record.duration_comm,
        "duration_hold": record.duration_hold,
        "post_appel": record.post_appel,
        "operators_offered": list(record.operators_offered),
        "overflowed_from": list(record.overflowed_from),
        "ticket_id": None if record.ticket_id is None else _clip(record.ticket_id, _c.ticket_id),
        "variables": dict(record.variables),
    }


async def insert_records(
    connection: AsyncConnection,
    insert: Callable[[Table], Any],
    account_id: int,
    records: Sequence[CallRecord],
) -> None:
    """Store ``records`` in ``connection``'s transaction; one already stored is left as it is
    (``ON CONFLICT DO NOTHING`` on ``id_call``: a retried batch never duplicates a record).
    ``insert`` is the backend's INSERT, which knows ``ON CONFLICT``."""
    if records:
        rows = [record_row(account_id, record) for record in records]
        statement = insert(call_records).on_conflict_do_nothing(index_elements=["id_call"])
        await connection.execute(statement, rows)


def _stored(row: Row[Any]) -> StoredCallRecord:
    return StoredCallRecord(
        id_call=row.id_call,
        direction=row.direction,
        caller_number=row.caller_number,
        service_number=row.service_number,
        id_group=row.id_group,
        id_op=row.id_op,
        outcome=Outcome(row.outcome),
        ended_by=Side(row.ended_by),
        disconnect_reason=row.disconnect_reason,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration=row.duration,
        duration_ring=row.duration_ring,
        duration_svi=row.duration_svi,
        duration_wait=row.duration_wait,
        duration_comm=row.duration_comm,
        duration_hold=row.duration_hold,
        post_appel=row.post_appel,
        operators_offered=tuple(row.operators_offered),
        overflowed_from=tuple(row.overflowed_from),
        ticket_id=row.ticket_id,
        variables=dict(row.variables),
    )


def _where(
    account_id: int,
    since: datetime,
    until: datetime,
    id_group: int | None,
    id_op: int | None,
    outcome: Outcome | None,
    direction: str | None,
    service_number: str | None = None,
    caller_number: str | None = None,
) -> ColumnElement[bool]:
    conditions = [_c.account_id == account_id, _c.started_at >= since, _c.started_at < until]
    if service_number is not None:
        conditions.append(_c.service_number == service_number)
    if caller_number is not None:
        conditions.append(_c.caller_number == caller_number)
    if id_group is not None:
        conditions.append(_c.id_group == id_group)
    if id_op is not None:
        conditions.append(_c.id_op == id_op)
    if outcome is not None:
        conditions.append(_c.outcome == outcome.value)
    if direction is not None:
        conditions.append(_c.direction == direction)
    return and_(*conditions)


class SqlCallRecords:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"no call-record store for {self._dialect}")

    def _upsert(self, table: Table) -> Any:
        """The backend's INSERT, which knows ``ON CONFLICT`` (the generic one does not)."""
        return (postgresql if self._dialect == "postgresql" else sqlite).insert(table)

    async def add(self, account_id: int, record: CallRecord) -> None:
        await self.add_many(account_id, [record])

    async def add_many(self, account_id: int, records: Sequence[CallRecord]) -> None:
        if not records:
            return
        try:
            async with self._engine.begin() as connection:
                await insert_records(connection, self._upsert, account_id, records)
        except IntegrityError as exc:  # the only foreign key left to fail
            raise NoSuchAccount(f"no account {account_id}") from exc

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
        where = _where(
            account_id,
            since,
            until,
            id_group,
            id_op,
            outcome,
            direction,
            service_number,
            caller_number,
        )
        statement = (
            select(call_records)
            .where(where)
            .order_by(_c.started_at.desc(), _c.id_call.desc())  # id: a stable page order
            .limit(limit)
            .offset(offset)
        )
        async with self._engine.connect() as connection:
            return [_stored(row) for row in await connection.execute(statement)]

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
    ) -> int:
        where = _where(
            account_id,
            since,
            until,
            id_group,
            id_op,
            outcome,
            direction,
            service_number,
            caller_number,
        )
        statement = select(func.count()).select_from(call_records).where(where)
        async with self._engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())

    async def by_ids(self, account_id: int, ids: Sequence[str]) -> list[StoredCallRecord]:
        if not ids:
            return []
        statement = select(call_records).where(
            _c.account_id == account_id, _c.id_call.in_(list(ids))
        )
        async with self._engine.connect() as connection:
            return [_stored(row) for row in await connection.execute(statement)]

    async def figures(
        self, account_id: int, *, since: datetime, until: datetime, service_level_seconds: float
    ) -> list[GroupFigures]:
        inbound = and_(
            _where(account_id, since, until, None, None, None, "in"), _c.id_group.is_not(None)
        )
        async with self._engine.connect() as connection:
            rows = await connection.execute(figures_query(inbound, service_level_seconds))
            return figures_of(rows)

    async def operator_figures(
        self, account_id: int, *, since: datetime, until: datetime
    ) -> list[OperatorFigures]:
        answered = and_(
            _where(account_id, since, until, None, None, Outcome.ANSWERED, None),
            _c.id_op.is_not(None),
        )
        async with self._engine.connect() as connection:
            return operator_figures_of(await connection.execute(operator_figures_query(answered)))

    async def charts(
        self,
        account_id: int,
        *,
        since: datetime,
        until: datetime,
        bucket_seconds: int,
        id_group: int | None = None,
    ) -> Charts:
        inbound = and_(
            _where(account_id, since, until, id_group, None, None, "in"), _c.id_group.is_not(None)
        )
        query = charts_query(
            inbound, since, bucket_seconds, postgresql=self._dialect == "postgresql"
        )
        async with self._engine.connect() as connection:  # one statement: one snapshot
            return charts_of(await connection.execute(query), since, until, bucket_seconds)

    async def set_presence(
        self, account_id: int, operator_id: int, presence: str, since: datetime
    ) -> None:
        if presence not in _PRESENCES:
            raise InvalidInput(f"presence must be one of: {', '.join(sorted(_PRESENCES))}")
        # INSERT ... SELECT from the account's operators: another account's operator (or a
        # deleted one) selects no row, so nothing is written and nothing leaks across accounts.
        source = select(
            operators.c.id,
            operators.c.account_id,
            literal(presence, operator_presence.c.presence.type),
            literal(since, operator_presence.c.since.type),
        ).where(operators.c.id == operator_id, operators.c.account_id == account_id)
        statement = self._upsert(operator_presence).from_select(
            ["operator_id", "account_id", "presence", "since"], source
        )
        statement = statement.on_conflict_do_update(
            index_elements=["operator_id"],
            set_={"presence": statement.excluded.presence, "since": statement.excluded.since},
        )
        try:
            async with self._engine.begin() as connection:
                written = (await connection.execute(statement)).rowcount
        except IntegrityError as exc:  # the operator was deleted in between
            raise NoSuchOperator(f"no operator {operator_id}") from exc
        if not written:
            raise NoSuchOperator(f"no operator {operator_id}")

    async def presences(self, account_id: int) -> dict[int, tuple[str, datetime]]:
        statement = select(operator_presence).where(operator_presence.c.account_id == account_id)
        async with self._engine.connect() as connection:
            return {
                row.operator_id: (row.presence, row.since)
                for row in await connection.execute(statement)
            }

    async def operator_tallies(
        self, account_id: int, *, since: datetime
    ) -> dict[int, OperatorTally]:
        statement = (
            select(_c.id_op, func.count(), func.max(_c.started_at))
            .where(
                _c.account_id == account_id,
                _c.started_at >= since,
                _c.outcome == Outcome.ANSWERED.value,
                _c.id_op.is_not(None),
            )
            .group_by(_c.id_op)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return {int(row[0]): OperatorTally(int(row[1]), row[2]) for row in rows}
