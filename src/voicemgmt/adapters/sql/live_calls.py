"""The live-call store (``services/live_calls.py``) on SQLAlchemy Core, SQLite and PostgreSQL.

``commit`` is the one write of each routing delivery: the records (``ON CONFLICT DO NOTHING``,
as in ``call_records.py``), the deletion of their calls' traces, and the traces that changed,
upserted with ``executemany``: three statements per delivery whatever the number of calls.
Closing orphans deletes first with ``RETURNING`` and stores the records of what it deleted, so
a trace claimed by another node (or updated by its own node, back from a pause) is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from voicemgmt.adapters.sql.call_records import insert_records
from voicemgmt.adapters.sql.tables import live_calls, nodes
from voicemgmt.domain.errors import NoSuchAccount
from voicemgmt.domain.routing.model import CallRecord
from voicemgmt.services.live_calls import Orphan

_l = live_calls.c
_n = nodes.c


class SqlLiveCalls:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"no live-call store for {dialect}")
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def commit(
        self,
        account_id: int,
        node: str,
        records: Sequence[CallRecord],
        traces: Mapping[str, tuple[dict[str, Any], datetime]],
    ) -> None:
        ended = [record.id_call for record in records]
        live = [
            {
                "id_call": id_call,
                "account_id": account_id,
                "node": node,
                "trace": trace,
                "updated_at": at,
            }
            for id_call, (trace, at) in traces.items()
        ]
        try:
            async with self._engine.begin() as connection:
                await insert_records(connection, self._insert, account_id, records)
                if ended:
                    await connection.execute(delete(live_calls).where(_l.id_call.in_(ended)))
                if live:
                    upsert = self._insert(live_calls)
                    upsert = upsert.on_conflict_do_update(
                        index_elements=["id_call"],
                        set_={
                            "node": upsert.excluded.node,
                            "trace": upsert.excluded.trace,
                            "updated_at": upsert.excluded.updated_at,
                        },
                    )
                    await connection.execute(upsert, live)
        except IntegrityError as exc:  # the only foreign key: the account was deleted
            raise NoSuchAccount(f"no account {account_id}") from exc

    async def heartbeat(self, node: str, at: datetime) -> None:
        statement = self._insert(nodes).values(name=node, started_at=at, seen_at=at)
        statement = statement.on_conflict_do_update(
            index_elements=["name"], set_={"seen_at": statement.excluded.seen_at}
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def leave(self, node: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(delete(nodes).where(_n.name == node))

    async def orphans(
        self, node: str, stale_before: datetime, *, own: bool, limit: int
    ) -> list[Orphan]:
        dead = and_(_l.node != node, or_(_n.seen_at.is_(None), _n.seen_at < stale_before))
        statement = (
            select(_l.account_id, _l.id_call, _l.node, _l.trace, _l.updated_at, _n.seen_at)
            .select_from(live_calls.outerjoin(nodes, _n.name == _l.node))
            .where(or_(_l.node == node, dead) if own else dead)
            .order_by(_l.account_id, _l.id_call)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [Orphan(*row) for row in rows]

    async def close_orphans(
        self, account_id: int, node: str, records: Sequence[CallRecord], dropped: Sequence[str]
    ) -> list[str]:
        ids = [record.id_call for record in records] + list(dropped)
        if not ids:
            return []
        claim = (
            delete(live_calls)
            .where(_l.id_call.in_(ids), _l.node == node, _l.account_id == account_id)
            .returning(_l.id_call)
        )
        async with self._engine.begin() as connection:
            claimed = set((await connection.execute(claim)).scalars())
            mine = [record for record in records if record.id_call in claimed]
            await insert_records(connection, self._insert, account_id, mine)
        return [record.id_call for record in mine]
