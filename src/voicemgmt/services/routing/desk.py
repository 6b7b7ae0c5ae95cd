"""One account's desk: its routing core, its outbox, its lock and timer, built from the
directory and kept in step with it; what each step leaves behind goes to its outbox.

A core is built on first use from the directory (groups and their settings, operators and
their memberships, numbers and their IVR scripts) and from each operator's last chosen status;
``apply_directory`` brings a running core up to date after a change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from voicemgmt.domain.directory import Number
from voicemgmt.domain.errors import InvalidInput
from voicemgmt.domain.ivr import IvrScript, parse_ivr
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.core import RoutingCore, Step
from voicemgmt.domain.routing.durable import trace_of
from voicemgmt.domain.routing.model import CallRecord, GroupPolicy, Presence
from voicemgmt.observability.logs import no_call
from voicemgmt.services.live_state import event_json
from voicemgmt.services.outbox import AccountOutbox
from voicemgmt.services.ports import UnitOfWorkFactory
from voicemgmt.services.record_figures import OperatorTally

log = logging.getLogger(__name__)

MAX_DIRECTORY = 100_000


@dataclass(frozen=True, slots=True)
class DeskDirectory:
    """What of the directory an account's core runs on."""

    groups: list[GroupPolicy]
    members: dict[int, dict[int, int]]  # operator → {group: priority}
    ivrs: dict[str, IvrScript]  # number → script
    numbers: list[Number]


@dataclass
class Desk:
    account_id: int
    core: RoutingCore
    outbox: AccountOutbox
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    timer: asyncio.TimerHandle | None = None
    ivrs: dict[str, IvrScript] = field(default_factory=dict)  # number → script
    loaded_at: float = field(default_factory=time.monotonic)
    # operator → (status shown, since when): "time in status" as a banner shows it
    shown_since: dict[int, tuple[str, float]] = field(default_factory=dict)

    def arm(self, now: float | None, due: Callable[[int], None]) -> None:
        """Call ``due(account_id)`` when the core's next timer is due (never, if ``now`` is
        None: routing stopped), replacing the timer set before."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        wake = self.core.next_wakeup
        if wake is None or now is None:
            return
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(max(0.0, wake - now), due, self.account_id, context=no_call())

    def post(
        self, step: Step, now: float, at: datetime
    ) -> tuple[list[CallRecord], asyncio.Future[None]]:
        """Post what ``step`` leaves behind to the outbox: the records of the calls it ended,
        the traces of those it changed (named by its events and commands), its events. The
        caller holds the lock (posts are in step order). Returns the records, and what
        resolves once everything is delivered."""
        ended: list[CallRecord] = []
        changed: set[str] = set()
        for event in step.events:
            if isinstance(event, ev.CallEnded):
                ended.append(event.record)
            elif isinstance(event, ev.OperatorStatusChanged):
                shown = self.shown_since.get(event.id_op)
                if shown is None or shown[0] != event.status.value:
                    self.shown_since[event.id_op] = (event.status.value, now)
            else:
                changed.add(event.id_call)  # type: ignore[attr-defined]
        changed.update(command.call_id for command in step.commands)
        calls = self.core.calls
        traces = [(id_call, trace_of(calls[id_call])) for id_call in changed if id_call in calls]
        events = [(event.kind, event_json(event)) for event in step.events]
        return ended, self.outbox.post(ended, traces, events, at)


async def load_directory(uow_factory: UnitOfWorkFactory, account_id: int) -> DeskDirectory:
    async with uow_factory() as uow:
        groups = await uow.directory.groups(account_id, limit=MAX_DIRECTORY, offset=0)
        operators = await uow.directory.operators(account_id, limit=MAX_DIRECTORY, offset=0)
        numbers = await uow.directory.numbers(account_id, limit=MAX_DIRECTORY, offset=0)
    policies = []
    for group in groups:
        try:
            policies.append(GroupPolicy.from_settings(group.id, group.settings))
        except (TypeError, ValueError, InvalidInput) as exc:  # stored before checks
            log.warning("group %s has unusable routing settings (%s): defaults", group.id, exc)
            policies.append(GroupPolicy(group.id))
    members = {o.id: {m.group_id: m.priority for m in o.memberships} for o in operators}
    ivrs: dict[str, IvrScript] = {}
    for number in numbers:
        if number.ivr is not None:
            try:
                ivrs[number.e164] = parse_ivr(number.ivr)
            except InvalidInput as exc:
                log.warning("number %s has an unusable IVR (%s)", number.e164, exc.message)
    return DeskDirectory(policies, members, ivrs, numbers)


def new_desk(
    account_id: int,
    directory: DeskDirectory,
    outbox: AccountOutbox,
    presences: dict[int, tuple[str, datetime]],
    now: float,
    tallies: dict[int, OperatorTally] | None = None,
) -> Desk:
    """A desk whose operators are back in the status they last chose (``presences``), with
    the calls they took (``tallies``, from the records) counted again."""
    core = RoutingCore()
    for policy in directory.groups:
        core.configure_group(policy)
    for operator_id, memberships in directory.members.items():
        core.configure_operator(operator_id, memberships)
    restore_tallies(core, tallies or {})
    for operator in core.operators.values():  # offline, as far as this node knows
        operator.presence_since = now
    for operator_id, (presence, since) in presences.items():
        if operator_id not in core.operators:
            continue
        if presence == Presence.OFFLINE.value:  # offline since they logged out
            core.operators[operator_id].presence_since = min(now, since.timestamp())
        else:
            core.set_presence(now, operator_id, Presence(presence), "restored")
    return Desk(account_id, core, outbox, ivrs=directory.ivrs)


def restore_tallies(core: RoutingCore, tallies: dict[int, OperatorTally]) -> None:
    """``calls_taken`` (what ``fewest_calls`` orders by) from the records, and round robin's
    order from when each operator last took a call: all before this core's first offer.

    Done before anyone is made available: the availability index keys an operator when they
    become available.
    """
    known = {op: tally for op, tally in tallies.items() if op in core.operators}
    ranked = sorted(known, key=lambda op: (known[op].last_answered, op))
    for operator in core.operators.values():  # took no call: first in round robin's turn
        operator.last_offer = -len(ranked) - 1
    for rank, operator_id in enumerate(ranked):
        operator = core.operators[operator_id]
        operator.calls_taken = known[operator_id].answered
        operator.last_offer = rank - len(ranked)  # -n … -1: before this core's offers (1, 2…)


def apply_directory(desk: Desk, directory: DeskDirectory, now: float) -> list[Step]:
    """Bring the desk's core up to ``directory``; the steps of operators who were deleted
    (they go offline) are to be delivered. The caller holds the desk's lock."""
    desk.ivrs = directory.ivrs
    desk.loaded_at = time.monotonic()
    core = desk.core
    for policy in directory.groups:
        core.configure_group(policy)
    known = set(core.operators)
    for operator_id, memberships in directory.members.items():
        core.configure_operator(operator_id, memberships)
        if operator_id not in known:  # a new operator: offline from now on
            core.operators[operator_id].presence_since = now
    steps = []
    for gone in known - set(directory.members):
        steps.append(core.set_presence(now, gone, Presence.OFFLINE, "deleted"))
        core.configure_operator(gone, {})
    return steps
