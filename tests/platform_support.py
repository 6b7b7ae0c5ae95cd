"""Hand-made call records for the platform API's tests (SPEC §6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.support import LiveServer, SeededAccount
from voicemgmt.adapters.sql.call_records import SqlCallRecords
from voicemgmt.bootstrap import Container
from voicemgmt.domain.routing.model import CallRecord, Outcome, Side


def at(text: str) -> float:
    """Epoch seconds of a UTC time written ``2026-12-02 09:15:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def record(id_call: str, start: str, **fields: Any) -> CallRecord:
    """An answered inbound call to 33170200200 starting at ``start`` (UTC), 310 s long."""
    began = at(start)
    values: dict[str, Any] = {
        "id_call": id_call,
        "direction": "in",
        "caller_number": "33612345678",
        "service_number": "33170200200",
        "id_group": 1,
        "outcome": Outcome.ANSWERED,
        "ended_by": Side.CALLER,
        "disconnect_reason": "normal",
        "started_at": began,
        "ended_at": began + 310,
        "id_op": 1,
        "operators_offered": (1,),
        "overflowed_from": (),
        "ticket_id": None,
        "variables": {},
        "duration": 310.0,
        "duration_ring": 4.0,
        "duration_svi": 12.5,
        "duration_wait": 20.0,
        "duration_comm": 270.0,
        "duration_hold": 7.5,
        "post_appel": 10.0,
    }
    values.update(fields)
    return CallRecord(**values)


def store(server: LiveServer, account: SeededAccount, *records: CallRecord) -> None:
    """Keep ``records`` in the running server's database, as the account's."""

    async def job(container: Container) -> None:
        await SqlCallRecords(container.engine).add_many(account.id, records)

    server.call_soon(job)


def history(acme: SeededAccount, globex: SeededAccount) -> dict[str, CallRecord]:
    """The week of 2026-12-01 at Acme (and one call at Globex), by id."""
    made = [
        record(
            "c-in-1",
            "2026-12-02 09:15:00",
            id_group=acme.id_group,
            id_op=acme.id_agent,
            variables={"order_number": "123456"},
        ),
        record(
            "c-in-2",
            "2026-12-06 10:00:00",
            caller_number="33698765432",
            id_group=acme.id_group,
            id_op=None,
            outcome=Outcome.MISSED,
            ended_by=Side.SYSTEM,
            duration_comm=0.0,
            duration_hold=0.0,
            post_appel=0.0,
            variables={"order_number": "654321", "langue": "fr"},
        ),
        record("c-in-old", "2026-11-20 08:00:00", id_group=acme.id_group),
        # A click-to-call: the switch sees the account's number as the caller.
        record(
            "c-out-1",
            "2026-12-03 14:00:00",
            direction="out",
            caller_number="33170200200",
            service_number="33612345678",
            id_group=None,
            id_op=acme.id_agent,
            duration_svi=0.0,
            duration_wait=0.0,
            post_appel=0.0,
        ),
    ]
    return {r.id_call: r for r in made}


def other_history() -> list[CallRecord]:
    """Globex's call, to Acme's number as stored text: it must never show at Acme."""
    return [record("g-in-1", "2026-12-02 11:00:00", variables={"secret": "globex"})]
