"""The simulated switch: scripted callers and customers, on real asyncio with short timings.

Each test drives its own event loop with ``asyncio.run``, then closes the switch and checks that
no task was left behind. ``Platform`` stands for the routing service: it records every report,
and may react to one by sending commands back, as the service does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import pytest

from voicemgmt.adapters.switch.simulated import SimulatedSwitch
from voicemgmt.adapters.switch.simulation import (
    Answer,
    Busy,
    CustomerBehaviour,
    Invalid,
    LegState,
    NoAnswer,
    SimulatedCall,
    SimulationTiming,
)
from voicemgmt.domain.errors import InvalidInput
from voicemgmt.domain.ivr import parse_ivr
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.core import RoutingCore, Step
from voicemgmt.domain.routing.model import GroupPolicy, Presence, Side

FAST = SimulationTiming(prompt_seconds=0.02, digit_interval=0.005, customer_answer_after=0.01)
LONG_PROMPT = SimulationTiming(prompt_seconds=0.1)  # so that "before its end" is certain
EARLY = 0.002  # timers may fire this much before their deadline on a coarse clock
ACME = 1
CALLER, NUMBER, CUSTOMER = "33612345678", "33170200200", "33699887766"
MENU = {"text": "Press 1 for sales, 2 for orders"}


class Heard(NamedTuple):
    at: float
    report: str
    call_id: str
    detail: str = ""


Reaction = Callable[[Heard], Awaitable[None]]


class Platform:
    """A recording ``SwitchReports``; it raises on the reports or calls named in ``refuse``."""

    def __init__(self) -> None:
        self.heard: list[Heard] = []
        self.reaction: Reaction | None = None
        self.refuse: set[str] = set()

    def of(self, report: str, call_id: str | None = None) -> list[Heard]:
        return [h for h in self.heard if h.report == report and call_id in (None, h.call_id)]

    def digits(self, call_id: str) -> str:
        return "".join(h.detail for h in self.of("digit", call_id))

    async def _hear(self, report: str, call_id: str, detail: str = "") -> None:
        heard = Heard(asyncio.get_running_loop().time(), report, call_id, detail)
        self.heard.append(heard)
        if {report, call_id} & self.refuse:
            raise RuntimeError(f"the platform refuses {report} for {call_id}")
        if self.reaction is not None:
            await self.reaction(heard)

    async def inbound_call(self, call_id: str, caller: str, called: str) -> None:
        await self._hear("inbound_call", call_id, f"{caller}>{called}")

    async def caller_hung_up(self, call_id: str) -> None:
        await self._hear("caller_hung_up", call_id)

    async def digit(self, call_id: str, digit: str) -> None:
        await self._hear("digit", call_id, digit)

    async def prompt_finished(self, call_id: str) -> None:
        await self._hear("prompt_finished", call_id)

    async def operator_answered(self, call_id: str, operator_id: int) -> None:
        await self._hear("operator_answered", call_id, str(operator_id))

    async def operator_rejected(self, call_id: str, operator_id: int, reason: str) -> None:
        await self._hear("operator_rejected", call_id, f"{operator_id}:{reason}")

    async def operator_hung_up(self, call_id: str, operator_id: int) -> None:
        await self._hear("operator_hung_up", call_id, str(operator_id))

    async def customer_answered(self, call_id: str) -> None:
        await self._hear("customer_answered", call_id)

    async def customer_failed(self, call_id: str, reason: str) -> None:
        await self._hear("customer_failed", call_id, reason)

    async def media_timeout(self, call_id: str) -> None:
        await self._hear("media_timeout", call_id)


Body = Callable[[SimulatedSwitch, Platform], Awaitable[None]]


def run(body: Body, timing: SimulationTiming = FAST) -> None:
    async def main() -> None:
        switch, platform = SimulatedSwitch(timing), Platform()
        await switch.start(platform)
        try:
            async with asyncio.timeout(5):
                await body(switch, platform)
        finally:
            await switch.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


async def until(condition: Callable[[], object], within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls what the fakes record; no event to await
            await asyncio.sleep(0.001)


def now() -> float:
    return asyncio.get_running_loop().time()


async def answered_call(switch: SimulatedSwitch, dtmf: str = "", **call: Any) -> str:
    """A simulated caller, taken off-hook by the platform."""
    call_id = await switch.place_call(SimulatedCall(CALLER, NUMBER, dtmf, **call))
    await switch.execute(ACME, ev.AnswerCaller(call_id))
    return call_id


async def play(switch: SimulatedSwitch, call_id: str, *, interruptible: bool = True) -> None:
    await switch.execute(ACME, ev.PlayPrompt(call_id, MENU, interruptible))


# --- Prompts -------------------------------------------------------------------------------


def test_a_prompt_reports_prompt_finished_after_prompt_seconds() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        call_id = await answered_call(switch)
        started = now()
        await play(switch, call_id, interruptible=False)
        assert switch.live_calls()[call_id].prompt_playing
        await until(lambda: platform.of("prompt_finished"))
        (finished,) = platform.of("prompt_finished", call_id)
        assert finished.at - started >= FAST.prompt_seconds - EARLY
        assert not switch.live_calls()[call_id].prompt_playing

    run(body)


def test_a_stopped_prompt_never_reports_its_end() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        call_id = await answered_call(switch)
        await play(switch, call_id)
        await asyncio.sleep(0.01)
        await switch.execute(ACME, ev.StopPrompt(call_id))
        await asyncio.sleep(LONG_PROMPT.prompt_seconds * 2)
        assert platform.of("prompt_finished") == []
        assert not switch.live_calls()[call_id].prompt_playing

    run(body, LONG_PROMPT)


def test_a_newer_prompt_replaces_the_playing_one_and_only_its_end_is_reported() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        call_id = await answered_call(switch)
        await play(switch, call_id)
        await asyncio.sleep(0.01)
        second = now()
        await play(switch, call_id)
        await asyncio.sleep(LONG_PROMPT.prompt_seconds * 2)
        (finished,) = platform.of("prompt_finished", call_id)
        assert finished.at - second >= LONG_PROMPT.prompt_seconds - EARLY

    run(body, LONG_PROMPT)


def test_the_prompt_of_a_hung_up_call_never_reports_its_end() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        call_id = await answered_call(switch)
        await play(switch, call_id)
        await switch.execute(ACME, ev.HangUp(call_id, "normal"))
        await asyncio.sleep(FAST.prompt_seconds * 3)
        assert platform.of("prompt_finished") == []
        assert call_id not in switch.live_calls()

    run(body)


def test_a_prompt_finished_while_an_earlier_report_is_handled_is_dropped_if_stopped() -> None:
    """The platform stops the prompt while handling a digit: its queued end is not reported."""

    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        call_id = await answered_call(switch, "1")

        async def slow_digit(heard: Heard) -> None:
            if heard.report == "digit":
                await asyncio.sleep(FAST.prompt_seconds * 2)  # the prompt's end falls due
                await switch.execute(ACME, ev.StopPrompt(call_id))

        platform.reaction = slow_digit
        await play(switch, call_id)
        await asyncio.sleep(FAST.prompt_seconds * 4)
        assert platform.digits(call_id) == "1"
        assert platform.of("prompt_finished") == []

    run(body)


# --- The caller's keys ---------------------------------------------------------------------


def test_the_caller_keys_nothing_until_an_interruptible_prompt_plays() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        silent = await answered_call(switch, "12")  # the IVR never plays a prompt
        call_id = await answered_call(switch, "12")
        await play(switch, call_id, interruptible=False)
        await until(lambda: platform.of("prompt_finished", call_id))
        await asyncio.sleep(FAST.digit_interval * 4)
        assert platform.of("digit") == []
        started = now()
        await play(switch, call_id)
        await until(lambda: platform.digits(call_id) == "12")
        first, second = platform.of("digit", call_id)
        assert first.at - started >= FAST.digit_interval - EARLY
        assert second.at - first.at >= FAST.digit_interval - EARLY
        assert platform.of("digit", silent) == []

    run(body)


def test_digits_flow_across_prompts() -> None:
    """ "2" interrupts the menu; the collect step's prompt plays and the rest keep coming."""

    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        call_id = await answered_call(switch, "2123456#")

        async def barge_in(heard: Heard) -> None:
            if heard.report == "digit" and heard.detail == "2":
                await switch.execute(ACME, ev.StopPrompt(call_id))
                await play(switch, call_id)  # the collect step's prompt
                await play(switch, call_id, interruptible=False)  # and a plain announcement

        platform.reaction = barge_in
        await play(switch, call_id)
        await until(lambda: platform.digits(call_id) == "2123456#")
        assert switch.live_calls()[call_id].dtmf_left == ""

    run(body)


@pytest.mark.parametrize(
    "leave",
    [
        ev.PlayQueueMusic,
        lambda call_id: ev.RingOperator(call_id, 7),
        lambda call_id: ev.Bridge(call_id, 7),
        lambda call_id: ev.HangUp(call_id, "normal"),
    ],
    ids=["queue_music", "ring_operator", "bridge", "hang_up"],
)
def test_digits_stop_when_the_call_leaves_the_ivr_or_ends(
    leave: Callable[[str], ev.SwitchCommand],
) -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        call_id = await answered_call(switch, "123456789")

        async def route_after_two(heard: Heard) -> None:
            if heard.report == "digit" and heard.detail == "2":
                await switch.execute(ACME, leave(call_id))

        platform.reaction = route_after_two
        await play(switch, call_id)
        await until(lambda: platform.digits(call_id) == "12")
        await asyncio.sleep(FAST.digit_interval * 6)
        assert platform.digits(call_id) == "12"
        live = switch.live_calls().get(call_id)
        assert live is None or not live.in_ivr

    run(body)


# --- The caller hangs up -------------------------------------------------------------------


def test_the_caller_hangs_up_after_hangup_after() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        started = now()
        call_id = await answered_call(switch, "123456789", hangup_after=0.03)
        await play(switch, call_id)
        await until(lambda: platform.of("caller_hung_up"))
        (hung_up,) = platform.of("caller_hung_up", call_id)
        assert hung_up.at - started >= 0.03 - EARLY
        assert platform.heard[-1] == hung_up  # nothing after it: no digit, no prompt end
        assert call_id not in switch.live_calls()
        await switch.execute(ACME, ev.HangUp(call_id, "caller"))  # the platform's echo

    run(body)


def test_hangup_after_does_nothing_once_the_call_has_ended() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        call_id = await answered_call(switch, hangup_after=0.02)
        await switch.execute(ACME, ev.HangUp(call_id, "ivr_hangup"))
        forwarded = await answered_call(switch, hangup_after=0.02)
        await switch.execute(ACME, ev.Forward(forwarded, "33144556677"))
        await asyncio.sleep(0.06)
        assert platform.of("caller_hung_up") == []
        assert switch.live_calls() == {}

    run(body)


def test_a_caller_refused_by_the_platform_is_cut_off(caplog: pytest.LogCaptureFixture) -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        platform.refuse.add("inbound_call")
        call_id = await switch.place_call(SimulatedCall(CALLER, NUMBER, "1", hangup_after=0))
        await asyncio.sleep(0.01)
        assert switch.live_calls() == {}
        assert platform.heard == [platform.heard[0]]  # no caller_hung_up after it
        await switch.execute(ACME, ev.AnswerCaller(call_id))
        assert switch.live_calls() == {}

    with caplog.at_level(logging.ERROR):
        run(body)
    assert "the platform refused inbound call" in caplog.text


# --- Click-to-call -------------------------------------------------------------------------


async def click_to_call(switch: SimulatedSwitch, call_id: str = "c2c-1") -> str:
    """The platform rings operator 7, who answers through the API; then it dials out."""
    await switch.execute(ACME, ev.RingOperator(call_id, 7))
    assert switch.live_calls()[call_id].operator_legs == {7: LegState.RINGING}
    await switch.execute(ACME, ev.DialCustomer(call_id, CUSTOMER, NUMBER))
    return call_id


def test_click_to_call_the_customer_answers() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        started = now()
        call_id = await click_to_call(switch)
        live = switch.live_calls()[call_id]
        assert (live.direction, live.customer_leg) == ("out", LegState.DIALING)
        await until(lambda: platform.of("customer_answered"))
        (answered,) = platform.of("customer_answered", call_id)
        assert answered.at - started >= FAST.customer_answer_after - EARLY
        await switch.execute(ACME, ev.Bridge(call_id, 7))
        await switch.execute(ACME, ev.Hold(call_id))
        live = switch.live_calls()[call_id]
        assert (live.customer_leg, dict(live.operator_legs)) == (LegState.HELD, {7: "bridged"})

        switch.set_customer("33611111111", Answer(after=0.04))
        started = now()
        await switch.execute(ACME, ev.RingOperator("c2c-2", 7))
        await switch.execute(ACME, ev.DialCustomer("c2c-2", "33611111111", NUMBER))
        await until(lambda: platform.of("customer_answered", "c2c-2"))
        assert platform.of("customer_answered", "c2c-2")[0].at - started >= 0.04 - EARLY

    run(body)


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [(Busy(), "busy"), (NoAnswer(after=0.02), "no_answer"), (Invalid(), "invalid_number")],
    ids=["busy", "no_answer", "invalid"],
)
def test_click_to_call_the_customer_cannot_be_reached(
    behaviour: CustomerBehaviour, reason: str
) -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        switch.set_customer(CUSTOMER, behaviour)
        started = now()
        call_id = await click_to_call(switch)
        await until(lambda: platform.of("customer_failed"))
        assert [(h.report, h.detail) for h in platform.heard] == [("customer_failed", reason)]
        took = platform.heard[0].at - started
        if isinstance(behaviour, NoAnswer):
            assert took >= behaviour.after - EARLY
        else:
            assert took < 0.05  # almost at once
        assert switch.live_calls()[call_id].customer_leg is LegState.FAILED

    run(body)


# --- Robustness ----------------------------------------------------------------------------


def test_commands_for_unknown_or_ended_calls_are_ignored() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        ended = await answered_call(switch)
        await switch.execute(ACME, ev.HangUp(ended, "normal"))
        commands: list[Callable[[str], ev.SwitchCommand]] = [
            ev.AnswerCaller,
            lambda c: ev.PlayPrompt(c, MENU, True),
            ev.StopPrompt,
            ev.PlayQueueMusic,
            lambda c: ev.CancelRing(c, 7),
            lambda c: ev.Bridge(c, 7),
            ev.Hold,
            ev.Unhold,
            lambda c: ev.DialCustomer(c, CUSTOMER, NUMBER),
            lambda c: ev.Forward(c, CUSTOMER),
            lambda c: ev.HangUp(c, "normal"),
        ]
        for make in commands:
            await switch.execute(ACME, make("unknown"))
            await switch.execute(ACME, make(ended))
        await switch.execute(ACME, ev.RingOperator(ended, 7))  # not a new click-to-call
        await asyncio.sleep(FAST.prompt_seconds * 2)
        assert switch.live_calls() == {}
        assert [h.report for h in platform.heard] == ["inbound_call"]

    run(body)


def test_a_report_that_raises_stops_neither_its_call_nor_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        troubled = await answered_call(switch, "123", hangup_after=0.1)
        fine = await answered_call(switch, "456", hangup_after=0.1)
        platform.refuse.add(troubled)
        await play(switch, troubled)
        await play(switch, fine)
        await until(lambda: len(platform.of("caller_hung_up")) == 2)
        assert (platform.digits(troubled), platform.digits(fine)) == ("123", "456")
        assert len(platform.of("prompt_finished")) == 2

    with caplog.at_level(logging.ERROR):
        run(body)
    assert "the platform refused digit for call" in caplog.text


def test_close_cancels_every_timer_and_report_and_leaves_no_task() -> None:
    async def main() -> None:
        switch, platform = SimulatedSwitch(FAST), Platform()
        await switch.start(platform)
        stuck = asyncio.Event()

        async def never_returns(heard: Heard) -> None:
            if heard.call_id == stuck_id:
                await stuck.wait()

        stuck_id = await answered_call(switch, "1")
        platform.reaction = never_returns
        await play(switch, stuck_id)  # its first digit's report never returns
        busy = await answered_call(switch, "123456789", hangup_after=1)
        await play(switch, busy)
        await click_to_call(switch)  # the customer answers after a while
        await until(lambda: platform.of("digit", stuck_id))
        await switch.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert switch.live_calls() == {}
        heard = len(platform.heard)
        await asyncio.sleep(0.05)
        assert len(platform.heard) == heard
        await switch.execute(ACME, ev.RingOperator("after-close", 7))
        assert switch.live_calls() == {}
        with pytest.raises(RuntimeError, match="closed"):
            await switch.place_call(SimulatedCall(CALLER, NUMBER))

    asyncio.run(main())


def test_five_hundred_concurrent_calls_are_each_reported_in_order() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        async def ivr(heard: Heard) -> None:  # answer, then a menu that waits for "#"
            if heard.report == "inbound_call":
                await switch.execute(ACME, ev.AnswerCaller(heard.call_id))
                await play(switch, heard.call_id)
            elif heard.report == "digit" and heard.detail == "#":
                await switch.execute(ACME, ev.PlayQueueMusic(heard.call_id))

        platform.reaction = ivr
        calls = [SimulatedCall(CALLER, NUMBER, "12#9", hangup_after=2.0) for _ in range(500)]
        ids = await asyncio.gather(*(switch.place_call(call) for call in calls))
        assert len(set(ids)) == 500
        await until(lambda: len(platform.of("caller_hung_up")) == 500, within=15)
        for call_id in ids:
            reports = [(h.report, h.detail) for h in platform.heard if h.call_id == call_id]
            assert reports[0][0] == "inbound_call"
            assert [d for r, d in reports if r == "digit"] == ["1", "2", "#"]
            assert reports[-1][0] == "caller_hung_up"
        assert switch.live_calls() == {}

    run(body)


def test_call_ids_sort_by_creation() -> None:
    async def body(switch: SimulatedSwitch, platform: Platform) -> None:
        first = await switch.place_call(SimulatedCall(CALLER, NUMBER))
        await asyncio.sleep(0.002)
        second = await switch.place_call(SimulatedCall(CALLER, NUMBER))
        assert first < second
        assert list(switch.live_calls()) == [first, second]

    run(body)


@pytest.mark.parametrize(
    "fields",
    [
        {"caller": "+33612345678"},
        {"called": ""},
        {"caller": "1234567890123456"},
        {"dtmf": "12a"},
        {"dtmf": "1" * 101},
        {"hangup_after": -1.0},
        {"hangup_after": float("nan")},
    ],
)
def test_a_simulated_call_is_checked(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        SimulatedCall(**{"caller": CALLER, "called": NUMBER, **fields})


# --- With the routing core -----------------------------------------------------------------

IVR = {
    "start": "welcome",
    "steps": {
        "welcome": {"type": "play", "prompt": {"text": "Welcome"}, "next": {"step": "menu"}},
        "menu": {
            "type": "menu",
            "prompt": MENU,
            "options": {"1": {"group": 3}, "2": {"step": "order"}},
            "timeout": 5,
        },
        "order": {
            "type": "collect",
            "prompt": {"text": "Type your order number then hash"},
            "variable": "order_number",
            "min_length": 6,
            "terminator": "#",
            "timeout": 5,
            "next": {"group": 3},
        },
    },
}


class Service(Platform):
    """Just enough of the routing service: each report goes to the core, commands come back."""

    def __init__(self, core: RoutingCore) -> None:
        super().__init__()
        self.core = core
        self.switch: SimulatedSwitch | None = None
        self.events: list[ev.RoutingEvent] = []

    async def carry_out(self, step: Step) -> None:
        assert self.switch is not None
        self.events += step.events
        for command in step.commands:
            await self.switch.execute(ACME, command)

    async def _hear(self, report: str, call_id: str, detail: str = "") -> None:
        await super()._hear(report, call_id, detail)
        core, at = self.core, now()
        if report == "inbound_call":
            step = core.inbound(at, call_id, CALLER, NUMBER, 1, parse_ivr(IVR))
        elif report == "digit":
            step = core.digit(at, call_id, detail)
        elif report == "prompt_finished":
            step = core.prompt_finished(at, call_id)
        elif report == "caller_hung_up":
            step = core.hang_up(at, call_id, Side.CALLER)
        else:
            raise AssertionError(report)
        await self.carry_out(step)


def test_a_caller_keys_through_the_routing_core_ivr_and_reaches_an_operator() -> None:
    async def main() -> None:
        core = RoutingCore()
        for group_id in (1, 3):
            core.configure_group(GroupPolicy(group_id))
        core.configure_operator(7, {3: 1})
        core.set_presence(0.0, 7, Presence.ONLINE)
        service, switch = Service(core), SimulatedSwitch(FAST)
        service.switch = switch
        await switch.start(service)
        try:
            call_id = await switch.place_call(SimulatedCall(CALLER, NUMBER, "2123456#9"))
            await until(lambda: 7 in switch.live_calls()[call_id].operator_legs)
            live = switch.live_calls()[call_id]
            assert (live.caller_leg, dict(live.operator_legs)) == ("music", {7: "ringing"})
            assert service.digits(call_id) == "2123456#"  # the "9" came after the IVR
            collected = [e for e in service.events if isinstance(e, ev.IvrVariableCollected)]
            assert [(e.name, e.value) for e in collected] == [("order_number", "123456")]
            await service.carry_out(core.answer(now(), 7, call_id))  # through the API
            live = switch.live_calls()[call_id]
            assert (live.caller_leg, dict(live.operator_legs)) == ("bridged", {7: "bridged"})
        finally:
            await switch.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())
