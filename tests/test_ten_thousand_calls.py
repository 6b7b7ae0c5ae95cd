"""10,000 simulated calls through the real routing service, switch, bus and database.

Operators (bots reading the event stream) answer most offers after a short delay, decline
some and let some ring out; some callers key IVR input, some hang up while waiting; groups
overflow. Whatever happens, the records must add up exactly:
offered = answered + abandoned + missed + overflowed + failed, one record per call.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support import make_settings
from voicemgmt.adapters.switch.simulated import SimulatedSwitch
from voicemgmt.adapters.switch.simulation import SimulatedCall
from voicemgmt.bootstrap import Container, build
from voicemgmt.domain.directory import Membership
from voicemgmt.domain.errors import InvalidCallAction, NoSuchCall
from voicemgmt.domain.routing.model import Presence

CALLS = 10_000
IN_FLIGHT = 150
OPERATORS = 24

IVR = {
    "start": "menu",
    "steps": {
        "menu": {
            "type": "menu",
            "options": {"1": {"group": "SALES"}, "2": {"step": "order"}},
            "timeout": 0.5,
            "attempts": 1,
            "on_failure": {"group": "SUPPORT"},
        },
        "order": {
            "type": "collect",
            "variable": "order_number",
            "min_length": 4,
            "max_length": 8,
            "timeout": 0.5,
            "retries": 0,
            "next": {"group": "SUPPORT"},
            "on_failure": {"hangup": True},
        },
    },
}


def _with_groups(script: object, ids: dict[str, int]) -> object:
    if isinstance(script, dict):
        return {
            k: (ids[v] if k == "group" and isinstance(v, str) else _with_groups(v, ids))
            for k, v in script.items()
        }
    return script


async def _seed(c: Container) -> tuple[int, list[int]]:
    d = c.directory
    account = await d.create_account(login="load", name="Load", password="load-password")
    support = await d.create_group(
        account.id,
        name="Support",
        settings={"ring_timeout": 0.3, "wrap_up": 0, "max_wait": 1.5, "max_no_answer": 0},
    )
    sales = await d.create_group(
        account.id,
        name="Sales",
        settings={
            "strategy": "ring_all",
            "ring_timeout": 0.3,
            "wrap_up": 0.05,
            "max_wait": 1.0,
            "overflow_group": support.id,
            "max_no_answer": 0,
        },
    )
    operators = []
    for n in range(OPERATORS):
        groups = [Membership(support.id, 1 + n % 2)] + (
            [Membership(sales.id, 1)] if n % 3 == 0 else []
        )
        operator = await d.create_operator(
            account.id, name=f"Op {n}", email=f"op{n}@load.example", memberships=groups
        )
        operators.append(operator.id)
    await d.create_number(account.id, e164="33170200200", group_id=support.id)
    await d.create_number(
        account.id,
        e164="33170200201",
        group_id=support.id,
        ivr=_with_groups(IVR, {"SALES": sales.id, "SUPPORT": support.id}),  # type: ignore[arg-type]
    )
    return account.id, operators


async def _run(container: Container) -> tuple[list[str], int]:
    await container.start()
    try:
        account_id, operators = await _seed(container)
        routing = container.routing
        for operator_id in operators:
            await routing.set_presence(account_id, operator_id, Presence.ONLINE, "operator")
        switch = container.switch
        assert isinstance(switch, SimulatedSwitch)
        rng = random.Random(7)
        placed: list[str] = []
        ended: set[str] = set()
        finished: dict[str, asyncio.Event] = {}
        all_ended = asyncio.Event()
        operator_tasks: set[asyncio.Task[None]] = set()

        async def operator_acts(event_data: dict[str, object]) -> None:
            call_id, operator_id = str(event_data["id_call"]), int(str(event_data["id_op"]))
            roll = rng.random()
            await asyncio.sleep(rng.uniform(0, 0.05))
            try:
                if roll < 0.1:
                    await routing.decline(account_id, operator_id, call_id)
                elif roll < 0.15:
                    return  # lets it ring out
                else:
                    await routing.answer(account_id, operator_id, call_id)
                    await asyncio.sleep(rng.uniform(0.01, 0.1))
                    await routing.hang_up(account_id, operator_id, call_id)
            except (NoSuchCall, InvalidCallAction):
                pass  # the offer went elsewhere, or the caller left first

        async def watch() -> None:
            async with container.bus.subscribe(account_id) as events:
                async for event in events:
                    if event.kind == "call.offered":
                        task = asyncio.create_task(operator_acts(dict(event.data)))
                        operator_tasks.add(task)
                        task.add_done_callback(operator_tasks.discard)
                    elif event.kind == "call.ended":
                        call_id = event.data["record"]["id_call"]
                        ended.add(call_id)
                        finished.setdefault(call_id, asyncio.Event()).set()
                        if len(ended) == CALLS:
                            all_ended.set()
                            return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def place(n: int) -> None:
            async with slots:
                ivr = n % 3 == 0
                dtmf = rng.choice(["1", "21234", "2", ""]) if ivr else ""
                hangup = rng.uniform(0.05, 1.2) if rng.random() < 0.2 else None
                call_id = await switch.place_call(
                    SimulatedCall(
                        f"3361234{n:04d}",
                        "33170200201" if ivr else "33170200200",
                        dtmf=dtmf,
                        hangup_after=hangup,
                    )
                )
                placed.append(call_id)
                await finished.setdefault(call_id, asyncio.Event()).wait()

        await asyncio.gather(*(place(n) for n in range(CALLS)))
        await asyncio.wait_for(all_ended.wait(), timeout=120)
        await watcher
        for task in list(operator_tasks):
            task.cancel()
        await asyncio.gather(*operator_tasks, return_exceptions=True)
        return placed, account_id
    finally:
        await container.close()


async def _records(
    container: Container, account_id: int
) -> tuple[Counter[str], int, dict[str, Any]]:
    await container.start()
    try:
        until = datetime.now(UTC) + timedelta(minutes=1)
        since = until - timedelta(days=1)
        outcomes: Counter[str] = Counter()
        ids: set[str] = set()
        offset = 0
        while True:
            page = await container.call_records.records(
                account_id, since=since, until=until, limit=1000, offset=offset
            )
            for record in page:
                outcomes[record.outcome.value] += 1
                ids.add(record.id_call)
            if len(page) < 1000:
                break
            offset += 1000
        figures = await container.call_records.figures(
            account_id, since=since, until=until, service_level_seconds=20
        )
        return outcomes, len(ids), figures[-1].to_json()
    finally:
        await container.close()


def test_ten_thousand_calls_add_up(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        sim_prompt_seconds=0.01,
        sim_digit_interval=0.005,
        sim_customer_answer_after=0.01,
        event_retention=50_000,
    )
    placed, account_id = asyncio.run(_run(build(settings)))
    assert len(set(placed)) == CALLS
    outcomes, distinct, total = asyncio.run(_records(build(settings), account_id))
    assert distinct == CALLS
    assert sum(outcomes.values()) == CALLS
    assert outcomes["answered"] > CALLS // 2  # a busy but working contact center
    assert total["offered"] == CALLS
    assert total["offered"] == (
        total["answered"]
        + total["abandoned"]
        + total["missed"]
        + total["overflowed"]
        + total["failed"]
    )
    for outcome in ("answered", "abandoned", "missed", "overflowed", "failed"):
        assert total[outcome] == outcomes[outcome]
