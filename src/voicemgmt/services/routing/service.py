"""The routing service: runs each account's routing core in this process.

It is the one place where the I/O-free core meets the world. For every input (an operator's
action through the API, a report from the phone system, a timer) it takes the account's lock,
feeds the core with the current time, posts the finished calls' records, the traces of the
calls the step changed (``services/live_calls.py``) and the events to the account's outbox
(``services/outbox.py``: records and traces stored before events are published, in step order,
in batches), re-arms the account's timer and lets go of the lock; once the outbox has delivered
the step, it sends the switch its commands and returns. So a call is in the database before
its caller is answered anything (HTTP 201, SIP 100 Trying).

An account's desk (its core, outbox, lock and timer) is built on first use (``desk.py``);
inbound calls find their account through the numbers cache (``numbers.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from voicemgmt.domain.directory import Number
from voicemgmt.domain.errors import NoSuchCall, NotFound, NumberNotAllowed
from voicemgmt.domain.phone import normalize_e164
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.core import RoutingCore, Step
from voicemgmt.domain.routing.model import Presence, Side
from voicemgmt.observability.logs import about_call, no_call
from voicemgmt.services.call_records import CallRecordStore
from voicemgmt.services.directory import DirectoryChange
from voicemgmt.services.events import EventBus
from voicemgmt.services.live_calls import LiveCallStore
from voicemgmt.services.live_state import live_snapshot
from voicemgmt.services.outbox import AccountOutbox, OutboxObserver
from voicemgmt.services.ports import Clock, UnitOfWorkFactory
from voicemgmt.services.routing.desk import Desk, apply_directory, load_directory, new_desk
from voicemgmt.services.routing.numbers import MAX_AGE as DIRECTORY_MAX_AGE
from voicemgmt.services.routing.numbers import NumberCache
from voicemgmt.services.switch import Switch, new_call_id

log = logging.getLogger(__name__)


class RoutingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        bus: EventBus,
        records: CallRecordStore,
        live: LiveCallStore,
        switch: Switch,
        clock: Clock,
        *,
        node: str,
        observer: OutboxObserver | None = None,
    ) -> None:
        self._uow = uow
        self._live = live
        self._node = node
        self._observer = observer
        self._bus = bus
        self._records = records
        self._switch = switch
        self._clock = clock
        self._desks: dict[int, Desk] = {}
        self._loading = asyncio.Lock()
        self._call_accounts: dict[str, int] = {}
        self._numbers = NumberCache(uow)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        await self._switch.start(self)

    async def close(self) -> None:
        """Stop routing. Calls still up are ended ``failed`` (or answered), with their record:
        no call is left without one."""
        self._closed = True
        for desk in self._desks.values():
            if desk.timer is not None:
                desk.timer.cancel()
            async with desk.lock:
                for call_id in sorted(desk.core.calls):
                    step = desk.core.abort(self._now(), call_id, "platform_shutdown")
                    try:
                        delivered, commands = self._deliver(desk, step)
                        await delivered
                    except Exception:
                        log.exception("could not record call %s at shutdown", call_id)
                        continue
                    for command in commands:
                        with contextlib.suppress(Exception):
                            await self._switch.execute(desk.account_id, command)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._switch.close()

    # operators' and supervisors' actions ---------------------------------------------------

    async def set_presence(
        self, account_id: int, operator_id: int, presence: Presence, reason: str
    ) -> None:
        await self._desk(account_id)  # built from the statuses stored before this change
        await self._records.set_presence(account_id, operator_id, presence.value, self._now_dt())
        await self._apply(
            account_id, lambda core, now: core.set_presence(now, operator_id, presence, reason)
        )

    async def answer(self, account_id: int, operator_id: int, call_id: str) -> None:
        await self._apply(
            account_id, lambda core, now: core.answer(now, operator_id, call_id), call_id
        )

    async def decline(self, account_id: int, operator_id: int, call_id: str) -> None:
        await self._apply(
            account_id, lambda core, now: core.decline(now, operator_id, call_id), call_id
        )

    async def hang_up(self, account_id: int, operator_id: int, call_id: str) -> None:
        def act(core: RoutingCore, now: float) -> Step:
            call = core.calls.get(call_id)
            if call is None or operator_id not in (call.operator_id, *call.ringing):
                raise NoSuchCall(f"operator {operator_id} has no call {call_id}")
            if operator_id in call.ringing:
                return core.decline(now, operator_id, call_id)
            return core.hang_up(now, call_id, Side.OPERATOR)

        await self._apply(account_id, act, call_id)

    async def hold(self, account_id: int, operator_id: int, call_id: str) -> None:
        await self._apply(
            account_id, lambda core, now: core.hold(now, operator_id, call_id), call_id
        )

    async def unhold(self, account_id: int, operator_id: int, call_id: str) -> None:
        await self._apply(
            account_id, lambda core, now: core.unhold(now, operator_id, call_id), call_id
        )

    async def transfer(
        self,
        account_id: int,
        operator_id: int,
        call_id: str,
        *,
        to_operator: int | None,
        to_group: int | None,
    ) -> None:
        await self._apply(
            account_id,
            lambda core, now: core.transfer(
                now, operator_id, call_id, to_operator=to_operator, to_group=to_group
            ),
            call_id,
        )

    async def click_to_call(
        self,
        account_id: int,
        operator_id: int,
        number: str,
        caller_id: str,
        ticket_id: str | None,
    ) -> str:
        digits = normalize_e164(number)
        refusal = await self._switch.dial_refusal(account_id, digits)
        if refusal is not None:
            raise NumberNotAllowed(f"this number may not be dialled ({refusal})", reason=refusal)
        call_id = new_call_id()
        self._call_accounts[call_id] = account_id
        await self._apply(
            account_id,
            lambda core, now: core.outbound(
                now, call_id, operator_id, digits, caller_id, ticket_id
            ),
            call_id,
        )
        return call_id

    async def snapshot(self, account_id: int) -> dict[str, Any]:
        """Live operators, calls and queues: what a page shows when it (re)connects.

        ``seq`` is the account's stream position at that instant (taken under the account's
        lock, so no routing event falls between): a page applies the events after it, resuming
        the stream with ``after`` = ``seq`` and the stream's ``epoch`` (given here too).
        """
        desk = await self._desk(account_id)
        now = self._now()
        async with desk.lock:
            await desk.outbox.drained()  # so that seq matches the state read below
            epoch = await self._bus.epoch(account_id)
            seq = await self._bus.last_seq(account_id)
            return live_snapshot(desk.core, desk.shown_since, now, seq, epoch)

    def live_cores(self) -> tuple[float, list[tuple[int, RoutingCore]]]:
        """Now, and each account's core in this process (read by metrics between steps)."""
        return self._now(), [(account_id, desk.core) for account_id, desk in self._desks.items()]

    async def refresh(self, account_id: int) -> None:
        """The directory changed: bring a running core's groups and operators up to date."""
        desk = self._desks.get(account_id)
        if desk is None:
            return
        directory = await load_directory(self._uow, account_id)
        async with desk.lock:
            self._numbers.remember(account_id, directory.numbers)
            for step in apply_directory(desk, directory, self._now()):
                delivered, _commands = self._deliver(desk, step)
                await delivered

    async def directory_changed(self, change: DirectoryChange) -> None:
        """A change committed in this process (``DirectoryService.on_change``)."""
        if change.kind == "number" and isinstance(change.id, str):
            self._numbers.forget(change.id)
        if change.kind == "account" and change.deleted:
            self._numbers.forget_account(change.account_id)
        if change.kind in ("operator", "group", "number"):
            await self.refresh(change.account_id)

    async def number(self, e164: str) -> Number | None:
        """The platform's number ``e164`` (any account's), from memory when recently seen."""
        return await self._numbers.get(e164)

    # what the phone system reports (SwitchReports) ----------------------------------------

    async def inbound_call(self, call_id: str, caller: str, called: str) -> None:
        with about_call(call_id):
            log.debug("call from %s to %s", caller, called)
            await self._inbound_call(call_id, caller, called)

    async def _inbound_call(self, call_id: str, caller: str, called: str) -> None:
        number = await self.number(called)
        if number is None:
            await self._switch.execute(0, ev.HangUp(call_id, "unknown_number"))
            return
        if not number.takes_calls:  # suspended: refused like a line out of service
            await self._switch.execute(number.account_id, ev.HangUp(call_id, "number_suspended"))
            return
        self._call_accounts[call_id] = number.account_id
        desk = await self._desk(number.account_id)
        script = desk.ivrs.get(number.e164)
        await self._apply(
            number.account_id,
            lambda core, now: core.inbound(now, call_id, caller, called, number.group_id, script),
            call_id,
        )

    async def caller_hung_up(self, call_id: str) -> None:
        await self._report(call_id, lambda core, now: core.hang_up(now, call_id, Side.CALLER))

    async def digit(self, call_id: str, digit: str) -> None:
        await self._report(call_id, lambda core, now: core.digit(now, call_id, digit))

    async def prompt_finished(self, call_id: str) -> None:
        await self._report(call_id, lambda core, now: core.prompt_finished(now, call_id))

    async def operator_answered(self, call_id: str, operator_id: int) -> None:
        await self._report(call_id, lambda core, now: core.answer(now, operator_id, call_id))

    async def operator_rejected(self, call_id: str, operator_id: int, reason: str) -> None:
        await self._report(call_id, lambda core, now: core.decline(now, operator_id, call_id))

    async def operator_hung_up(self, call_id: str, operator_id: int) -> None:
        await self._report(call_id, lambda core, now: core.hang_up(now, call_id, Side.OPERATOR))

    async def customer_answered(self, call_id: str) -> None:
        await self._report(call_id, lambda core, now: core.customer_answered(now, call_id))

    async def customer_failed(self, call_id: str, reason: str) -> None:
        await self._report(
            call_id, lambda core, now: core.hang_up(now, call_id, Side.SYSTEM, reason)
        )

    async def media_timeout(self, call_id: str) -> None:
        await self._report(
            call_id, lambda core, now: core.hang_up(now, call_id, Side.SYSTEM, "media_timeout")
        )

    async def _report(self, call_id: str, act: Callable[[RoutingCore, float], Step]) -> None:
        account_id = self._call_accounts.get(call_id)
        if account_id is None:
            return  # a call that ended, or never was ours
        try:
            await self._apply(account_id, act, call_id)
        except NoSuchCall:
            return  # the report crossed the call's end

    # the machinery -------------------------------------------------------------------------

    async def _apply(
        self,
        account_id: int,
        act: Callable[[RoutingCore, float], Step],
        call_id: str | None = None,
    ) -> None:
        """Feed the account's core; ``call_id``: the call this input is about (for logs)."""
        if call_id is None:
            await self._apply_any(account_id, act)
            return
        with about_call(call_id):
            await self._apply_any(account_id, act)

    async def _apply_any(self, account_id: int, act: Callable[[RoutingCore, float], Step]) -> None:
        desk = await self._desk(account_id)
        try:
            await self._apply_on(desk, account_id, act)
        except NotFound as exc:
            if type(exc) is not NotFound:  # NoSuchCall and the like: a real answer
                raise
            # An operator or group the core does not know: changed elsewhere (the CLI)?
            await self.refresh(account_id)
            await self._apply_on(desk, account_id, act)

    async def _apply_on(
        self, desk: Desk, account_id: int, act: Callable[[RoutingCore, float], Step]
    ) -> None:
        async with desk.lock:
            step = act(desk.core, self._now())
            delivered, commands = self._deliver(desk, step)
        await delivered  # records stored, events published: then the switch, then the caller
        for command in commands:
            with about_call(command.call_id):
                try:
                    await self._switch.execute(account_id, command)
                except Exception:  # the switch must not break routing; its timers still run
                    log.exception("the switch failed to %s", type(command).__name__)

    def _deliver(
        self, desk: Desk, step: Step
    ) -> tuple[asyncio.Future[None], list[ev.SwitchCommand]]:
        """Post the step's records, the traces of the calls it changed and its events to the
        account's outbox (in step order: the caller holds the account's lock) and re-arm the
        timer; return what resolves once they are delivered, and the commands to send."""
        ended, delivered = desk.post(step, self._now(), self._now_dt())
        for record in ended:
            self._call_accounts.pop(record.id_call, None)
            if log.isEnabledFor(logging.DEBUG):
                with about_call(record.id_call):
                    log.debug("call ended %s (%s)", record.outcome.value, record.disconnect_reason)
        desk.arm(None if self._closed else self._now(), self._spawn_tick)
        return delivered, step.commands

    def _spawn_tick(self, account_id: int) -> None:
        self._spawn(self._tick(account_id))

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job, context=no_call())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_quietly(self, account_id: int) -> None:
        try:
            await self.refresh(account_id)
        except Exception:  # the next use tries again
            log.exception("reloading the directory of account %s failed", account_id)

    async def _tick(self, account_id: int) -> None:
        try:
            await self._apply(account_id, lambda core, now: core.tick(now))
        except Exception:
            log.exception("routing timer of account %s failed", account_id)

    async def _desk(self, account_id: int) -> Desk:
        desk = self._desks.get(account_id)
        if desk is not None:
            if time.monotonic() - desk.loaded_at > DIRECTORY_MAX_AGE:
                desk.loaded_at = time.monotonic()  # one refresh at a time
                self._spawn(self._refresh_quietly(account_id))
            return desk
        async with self._loading:
            desk = self._desks.get(account_id)
            if desk is not None:
                return desk
            directory = await load_directory(self._uow, account_id)
            self._numbers.remember(account_id, directory.numbers)
            outbox = AccountOutbox(account_id, self._live, self._node, self._bus, self._observer)
            presences = await self._records.presences(account_id)
            # today's calls (UTC): what fewest_calls and round robin go on from
            today = self._now_dt().replace(hour=0, minute=0, second=0, microsecond=0)
            tallies = await self._records.operator_tallies(account_id, since=today)
            desk = new_desk(account_id, directory, outbox, presences, self._now(), tallies)
            self._desks[account_id] = desk
            return desk

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _now_dt(self) -> datetime:
        return self._clock.now()
