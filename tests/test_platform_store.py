"""What the platform API asks of storage, on SQLite and PostgreSQL: number filters, records by
id, a number's state and recording flag, a record's wrap-up."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.platform_support import record
from tests.support import make_settings, run_on
from voicemgmt.adapters.sql.call_records import SqlCallRecords
from voicemgmt.bootstrap import Container
from voicemgmt.domain.directory import NumberState

SINCE, UNTIL = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)


def test_records_are_found_by_number_and_by_id_within_one_account(
    database_url: str, tmp_path: Path
) -> None:
    async def job(c: Container) -> dict[str, Any]:
        acme = await c.directory.create_account(login="acme", name="Acme", password="pw-123456")
        other = await c.directory.create_account(login="other", name="O", password="pw-123456")
        store = SqlCallRecords(c.engine)
        await store.add_many(
            acme.id,
            [
                record("a1", "2026-12-02 09:00:00", post_appel=12.25),
                record("a2", "2026-12-02 10:00:00", caller_number="33698765432"),
                record("a3", "2026-12-02 11:00:00", service_number="33170200201"),
            ],
        )
        await store.add(other.id, record("o1", "2026-12-02 09:30:00"))

        async def ids(**filters: Any) -> list[str]:
            found = await store.query(acme.id, since=SINCE, until=UNTIL, **filters)
            return [r.id_call for r in found]

        return {
            "by_service": await ids(service_number="33170200200"),
            "by_caller": await ids(caller_number="33698765432"),
            "both": await ids(service_number="33170200201", caller_number="33698765432"),
            "count": await store.count(
                acme.id, since=SINCE, until=UNTIL, caller_number="33612345678"
            ),
            "by_id": sorted(r.id_call for r in await store.by_ids(acme.id, ["a1", "o1", "zz"])),
            "wrap_up": [r.post_appel for r in await store.by_ids(acme.id, ["a1"])],
            "none": await store.by_ids(acme.id, []),
        }

    found = run_on(make_settings(tmp_path, database_url), job)
    assert found == {
        "by_service": ["a2", "a1"],
        "by_caller": ["a2"],
        "both": [],
        "count": 2,
        "by_id": ["a1"],
        "wrap_up": [12.25],
        "none": [],
    }


def test_a_number_keeps_its_state_and_recording_flag(database_url: str, tmp_path: Path) -> None:
    async def job(c: Container) -> list[tuple[NumberState, bool]]:
        acme = await c.directory.create_account(login="acme", name="Acme", password="pw-123456")
        group = await c.directory.create_group(acme.id, name="Support")
        made = await c.directory.create_number(
            acme.id, e164="33170200200", group_id=group.id, record=True
        )
        await c.directory.update_number(acme.id, "33170200200", state="suspended")
        suspended = await c.directory.number(acme.id, "33170200200")
        await c.directory.update_number(acme.id, "33170200200", record=False)
        cleared = await c.directory.number(acme.id, "33170200200")
        return [(n.state, n.record) for n in (made, suspended, cleared)]

    states = run_on(make_settings(tmp_path, database_url), job)
    assert states == [
        (NumberState.ACTIVE, True),
        (NumberState.SUSPENDED, True),
        (NumberState.SUSPENDED, False),
    ]
