"""The simulated switch: an in-process phone system whose callers and customers are scripted.

It plays only the callers' and the customers' parts; operators answer through the product's
call-control API, never through the switch.

- ``place_call`` brings a caller in (``SimulatedCall``): the platform hears ``inbound_call``.
  Once an *interruptible* prompt plays, the caller keys its ``dtmf``, one digit every
  ``digit_interval``, across prompts, until the call leaves the IVR (queue music, an operator
  ringing or bridged) or ends. After ``hangup_after`` seconds the caller hangs up.
- A prompt reports ``prompt_finished`` after ``prompt_seconds``, unless it was stopped or
  replaced, or the call ended, first.
- ``RingOperator`` for a call the switch never saw starts a click-to-call; its ``DialCustomer``
  reaches a customer who behaves as ``set_customer`` says (by default, answers).
- ``HangUp`` and ``Forward`` end the call on the switch. Commands for unknown or ended calls
  are ignored; the other commands only change the leg states that ``live_calls`` shows.

Timers are event-loop handles. What one reports joins its call's queue of reports, delivered in
order by one task per call; each report is checked again just before delivery (a prompt stopped
meanwhile is not reported) and one that raises is logged and skipped. Commands never deliver a
report themselves: the routing service sends commands while it handles a report.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping

from voicemgmt.adapters.switch.simulation import (
    Answer,
    Busy,
    CustomerBehaviour,
    HeldCall,
    LegState,
    LiveCall,
    NoAnswer,
    Report,
    SimulatedCall,
    SimulationTiming,
    always,
)
from voicemgmt.domain.routing.events import (
    AnswerCaller,
    Bridge,
    CancelRing,
    DialCustomer,
    Forward,
    HangUp,
    Hold,
    PlayPrompt,
    PlayQueueMusic,
    RingOperator,
    StopPrompt,
    SwitchCommand,
    Unhold,
)
from voicemgmt.observability.logs import about_call, call_context
from voicemgmt.services.switch import SwitchReports, new_call_id

log = logging.getLogger(__name__)

ENDED_CALLS_REMEMBERED = 10_000  # so that a late RingOperator cannot revive an ended call


class SimulatedSwitch:
    """A :class:`~voicemgmt.services.switch.Switch` living in this process."""

    def __init__(
        self,
        timing: SimulationTiming = SimulationTiming(),
        new_call_id: Callable[[], str] = new_call_id,
    ) -> None:
        self.timing = timing
        self._new_call_id = new_call_id
        self._reports: SwitchReports | None = None
        self._calls: dict[str, HeldCall] = {}
        self._ended: dict[str, None] = {}  # the latest ended call ids, oldest first
        self._customers: dict[str, CustomerBehaviour] = {}
        self._reporters: set[asyncio.Task[None]] = set()
        self._prompt_tokens = itertools.count(1)
        self._closed = False

    async def start(self, reports: SwitchReports) -> None:
        if self._closed:
            raise RuntimeError("the simulated switch is closed")
        if self._reports is not None:
            raise RuntimeError("the simulated switch is started already")
        self._reports = reports

    def set_customer(self, number: str, behaviour: CustomerBehaviour) -> None:
        """How the customer at ``number`` (E.164 digits) responds when dialled."""
        self._customers[number.removeprefix("+")] = behaviour

    async def place_call(self, call: SimulatedCall) -> str:
        """Bring a simulated caller in; returns once ``inbound_call`` has been reported.

        If the platform raises on ``inbound_call``, the error is logged and the caller is cut
        off: the call is not live when this returns.
        """
        reports = self._started()
        live = HeldCall(self._fresh_id(), "in", caller_leg=LegState.RINGING, in_ivr=True)
        live.dtmf, live.announcing = call.dtmf, True
        self._calls[live.id] = live
        with about_call(live.id):
            await self._announce(live, call, reports)
        return live.id

    async def _announce(self, live: HeldCall, call: SimulatedCall, reports: SwitchReports) -> None:
        if call.hangup_after is not None:
            self._arm(live, "hangup", call.hangup_after, lambda: self._caller_hangs_up(live))
        try:
            await reports.inbound_call(live.id, call.caller, call.called)
        except Exception:
            log.exception("the platform refused inbound call %s; cutting the caller off", live.id)
            self._end(live)
        finally:
            live.announcing = False
            self._kick(live)

    async def dial_refusal(self, account_id: int, number: str) -> str | None:
        return None  # the simulated network dials anything

    async def execute(self, account_id: int, command: SwitchCommand) -> None:
        """Carry out ``command``; never raises for an unknown or ended call."""
        with about_call(command.call_id):
            self._execute(account_id, command)

    def _execute(self, account_id: int, command: SwitchCommand) -> None:
        call_id = command.call_id
        call = self._calls.get(call_id)
        if call is None and isinstance(command, RingOperator) and self._accepts_new(call_id):
            call = self._calls[call_id] = HeldCall(call_id, "out")
        if call is None:
            log.debug("ignoring %s for unknown or ended call %s", type(command).__name__, call_id)
            return
        if call.account_id is None:
            call.account_id = account_id
        elif call.account_id != account_id:
            log.warning("ignoring account %s's command for call %s", account_id, call_id)
            return
        self._apply(call, command)

    async def close(self) -> None:
        """Cancel every timer and report in flight; later commands are ignored."""
        self._closed = True
        for call in list(self._calls.values()):
            self._end(call)
        current = asyncio.current_task()
        reporters = [task for task in self._reporters if task is not current]
        for task in reporters:
            task.cancel()
        await asyncio.gather(*reporters, return_exceptions=True)

    def live_calls(self) -> Mapping[str, LiveCall]:
        """The calls up on the switch, oldest first, with their legs' states."""
        return {call_id: call.snapshot() for call_id, call in self._calls.items()}

    # commands ----------------------------------------------------------------------------

    def _apply(self, call: HeldCall, command: SwitchCommand) -> None:
        match command:
            case AnswerCaller():
                if call.caller_leg is LegState.RINGING:
                    call.caller_leg = LegState.ANSWERED
            case PlayPrompt(interruptible=interruptible):
                self._play(call, interruptible)
            case StopPrompt():
                self._stop_prompt(call)
            case PlayQueueMusic():
                self._leave_ivr(call)
                self._drop_connected_operators(call)
                call.remote_leg = LegState.MUSIC
            case RingOperator(operator_id=operator_id):
                self._leave_ivr(call)
                if call.remote_leg in (LegState.BRIDGED, LegState.HELD):  # a blind transfer
                    self._drop_connected_operators(call)
                    call.remote_leg = LegState.MUSIC
                call.operator_legs[operator_id] = LegState.RINGING
            case CancelRing(operator_id=operator_id):
                if call.operator_legs.get(operator_id) is LegState.RINGING:
                    del call.operator_legs[operator_id]
            case Bridge(operator_id=operator_id):
                self._leave_ivr(call)
                call.operator_legs = {operator_id: LegState.BRIDGED}
                call.remote_leg = LegState.BRIDGED
            case Hold():
                if call.remote_leg is LegState.BRIDGED:
                    call.remote_leg = LegState.HELD
            case Unhold():
                if call.remote_leg is LegState.HELD:
                    call.remote_leg = LegState.BRIDGED
            case DialCustomer(number=number):
                self._dial(call, number)
            case Forward() | HangUp():
                self._end(call)
            case _:
                log.warning("the simulated switch cannot %s", type(command).__name__)

    def _play(self, call: HeldCall, interruptible: bool) -> None:
        self._stop_prompt(call)
        token = call.prompt = next(self._prompt_tokens)
        reports = self._started()

        def finished() -> None:
            async def deliver() -> None:
                call.prompt = None
                await reports.prompt_finished(call.id)

            self._enqueue(call, Report("prompt_finished", deliver, lambda: call.prompt == token))

        self._arm(call, "prompt", self.timing.prompt_seconds, finished)
        if interruptible and call.in_ivr and call.dtmf and not call.keying:
            call.keying = True
            self._arm(call, "dtmf", self.timing.digit_interval, lambda: self._key(call))

    def _stop_prompt(self, call: HeldCall) -> None:
        call.prompt = None
        self._disarm(call, "prompt")

    def _leave_ivr(self, call: HeldCall) -> None:
        call.in_ivr = False
        self._disarm(call, "dtmf")

    def _drop_connected_operators(self, call: HeldCall) -> None:
        """The operator who had the call left it (a transfer): only ringing phones remain."""
        call.operator_legs = {
            operator: state
            for operator, state in call.operator_legs.items()
            if state is LegState.RINGING
        }

    def _dial(self, call: HeldCall, number: str) -> None:
        if call.direction != "out" or call.customer_leg is not None:
            log.warning("ignoring DialCustomer for call %s: not a click-to-call", call.id)
            return
        call.customer_leg = LegState.DIALING
        for operator in call.operator_legs:
            call.operator_legs[operator] = LegState.ANSWERED  # they answered through the API
        behaviour = self._customers.get(number.removeprefix("+"), Answer())
        reports = self._started()
        after: float
        reason: str | None  # why the customer was not reached; None: they answer
        if isinstance(behaviour, Answer):
            after = (
                self.timing.customer_answer_after if behaviour.after is None else behaviour.after
            )
            reason = None
        elif isinstance(behaviour, Busy):
            after, reason = 0.0, "busy"
        elif isinstance(behaviour, NoAnswer):
            after, reason = behaviour.after, "no_answer"
        else:
            after, reason = 0.0, "invalid_number"

        def respond() -> None:
            call.customer_leg = LegState.ANSWERED if reason is None else LegState.FAILED

            async def deliver() -> None:
                if reason is None:
                    await reports.customer_answered(call.id)
                else:
                    await reports.customer_failed(call.id, reason)

            self._enqueue(call, Report("customer", deliver, lambda: not call.ended))

        self._arm(call, "customer", after, respond)

    # caller ------------------------------------------------------------------------------

    def _key(self, call: HeldCall) -> None:
        if not (call.in_ivr and call.dtmf):
            return
        digit, call.dtmf = call.dtmf[0], call.dtmf[1:]
        reports = self._started()
        self._enqueue(
            call,
            Report(
                "digit",
                lambda: reports.digit(call.id, digit),
                lambda: call.in_ivr and not call.ended,
            ),
        )
        if call.dtmf:
            self._arm(call, "dtmf", self.timing.digit_interval, lambda: self._key(call))

    def _caller_hangs_up(self, call: HeldCall) -> None:
        if call.ended:
            return
        self._end(call)
        reports = self._started()
        self._enqueue(
            call, Report("caller_hung_up", lambda: reports.caller_hung_up(call.id), always)
        )

    # calls, timers and reports -----------------------------------------------------------

    def _started(self) -> SwitchReports:
        if self._closed:
            raise RuntimeError("the simulated switch is closed")
        if self._reports is None:
            raise RuntimeError("the simulated switch is not started")
        return self._reports

    def _fresh_id(self) -> str:
        for _ in range(10):
            call_id = self._new_call_id()
            if self._accepts_new(call_id):
                return call_id
        raise RuntimeError("the call id generator keeps returning ids in use")

    def _accepts_new(self, call_id: str) -> bool:
        return (
            not self._closed
            and self._reports is not None
            and call_id not in self._calls
            and call_id not in self._ended
        )

    def _end(self, call: HeldCall) -> None:
        """The call is over on the switch: no timer fires and nothing more is reported."""
        call.ended, call.in_ivr, call.prompt = True, False, None
        for handle in call.timers.values():
            handle.cancel()
        call.timers.clear()
        call.reports.clear()
        if self._calls.pop(call.id, None) is not None:
            self._ended[call.id] = None
            if len(self._ended) > ENDED_CALLS_REMEMBERED:
                del self._ended[next(iter(self._ended))]

    def _arm(self, call: HeldCall, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._disarm(call, name)

        def fire() -> None:
            del call.timers[name]
            callback()

        call.timers[name] = asyncio.get_running_loop().call_later(
            delay, fire, context=call_context(call.id)
        )

    def _disarm(self, call: HeldCall, name: str) -> None:
        handle = call.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _enqueue(self, call: HeldCall, report: Report) -> None:
        call.reports.append(report)
        self._kick(call)

    def _kick(self, call: HeldCall) -> None:
        if call.reporter is None and call.reports and not call.announcing and not self._closed:
            task = asyncio.get_running_loop().create_task(
                self._deliver(call), context=call_context(call.id)
            )
            call.reporter = task
            self._reporters.add(task)
            task.add_done_callback(self._reporters.discard)

    async def _deliver(self, call: HeldCall) -> None:
        """Report what happened on one call, in order; a refused report is logged, not fatal."""
        try:
            while call.reports:
                report = call.reports.popleft()
                if not report.due():
                    continue
                try:
                    await report.deliver()
                except Exception:
                    log.exception("the platform refused %s for call %s", report.name, call.id)
        finally:
            call.reporter = None
