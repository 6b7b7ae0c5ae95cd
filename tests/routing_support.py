"""Driving the routing core in tests: a fake clock, and the events and commands it produced."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.core import RoutingCore, Step
from voicemgmt.domain.routing.model import CallRecord, GroupPolicy, Presence

E = TypeVar("E", bound=ev.RoutingEvent)
C = TypeVar("C", bound=ev.SwitchCommand)


@dataclass
class Desk:
    """A routing core with a clock that tests move by hand, and everything it said."""

    core: RoutingCore = field(default_factory=RoutingCore)
    now: float = 1000.0
    events: list[ev.RoutingEvent] = field(default_factory=list)
    commands: list[ev.SwitchCommand] = field(default_factory=list)

    def take(self, step: Step) -> Step:
        self.events.extend(step.events)
        self.commands.extend(step.commands)
        return step

    def group(self, group_id: int = 1, **policy: object) -> None:
        self.core.configure_group(GroupPolicy(group_id, **policy))  # type: ignore[arg-type]

    def operator(
        self, operator_id: int, groups: dict[int, int] | None = None, *, online: bool = True
    ) -> None:
        self.core.configure_operator(operator_id, groups if groups is not None else {1: 1})
        if online:
            self.take(self.core.set_presence(self.now, operator_id, Presence.ONLINE))
            self.now += 1  # so that "longest idle" has an order

    def call(self, call_id: str, group_id: int = 1, caller: str = "33612345678") -> Step:
        return self.take(self.core.inbound(self.now, call_id, caller, "33170200200", group_id))

    def wait(self, seconds: float) -> Step:
        """Let time pass, firing every timer on the way, in order."""
        end = self.now + seconds
        combined = Step()
        while (wake := self.core.next_wakeup) is not None and wake <= end:
            self.now = max(self.now, wake)
            step = self.take(self.core.tick(self.now))
            combined.events += step.events
            combined.commands += step.commands
        self.now = end
        return combined

    def of(self, kind: type[E], items: Iterable[object] | None = None) -> list[E]:
        return [e for e in (self.events if items is None else items) if isinstance(e, kind)]

    def commands_of(self, kind: type[C]) -> list[C]:
        return [c for c in self.commands if isinstance(c, kind)]

    def offered(self, call_id: str) -> list[int]:
        return [e.id_op for e in self.of(ev.CallOffered) if e.id_call == call_id]

    def record(self, call_id: str) -> CallRecord:
        (ended,) = [e for e in self.of(ev.CallEnded) if e.record.id_call == call_id]
        return ended.record
