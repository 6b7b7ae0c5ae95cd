"""RFC 3261 §17 transactions over UDP, TCP or TLS, as I/O-free state machines.

Each transaction takes messages and the current time in and gives actions out: ``Send``
(a message to an address), ``Deliver`` (a message for the transaction user) and ``Timeout``.
``deadline`` says when ``on_timer`` is due next; a caller that calls it early gets nothing.

Timers (seconds, T1 = 0.5, T2 = 4, T4 = 5):

=======  ==========================  ==========================================
timer    transaction                 role
=======  ==========================  ==========================================
A, B     client INVITE               retransmit INVITE (T1, 2·T1…), give up (64·T1)
D        client INVITE               absorb final-response retransmissions (32 s)
M        client INVITE (RFC 6026)    pass retransmitted 2xx to the TU (64·T1)
E, F     client non-INVITE           retransmit (T1… ≤ T2), give up (64·T1)
K        client non-INVITE           absorb response retransmissions (T4)
G, H     server INVITE               retransmit a final response, wait for ACK (64·T1)
I        server INVITE               absorb ACK retransmissions (T4)
L        server INVITE (RFC 6026)    retransmit 2xx until acknowledged, then linger (64·T1)
J        server non-INVITE           absorb request retransmissions (64·T1)
=======  ==========================  ==========================================

Over a reliable transport (TCP, TLS: ``transport`` other than ``"UDP"``) nothing is
retransmitted but the UAS core's 2xx, and timers D, I, J and K are zero (§17.1.1.2, §17.2.1).

The UAS core's own 2xx retransmission (§13.3.1.4) lives in the server INVITE transaction's
*accepted* state: ``acknowledged`` stops it when the dialog sees the ACK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from voicemgmt.adapters.switch.sip.message import Headers, Message, Request, Response

T1, T2, T4 = 0.5, 4.0, 5.0
TIMER_D = 32.0
GUARD_INVITE = 600.0  # an INVITE left without a final response this long is forgotten

Address = tuple[str, int]
UDP, TCP, TLS = "UDP", "TCP", "TLS"  # the Via transport names (RFC 3261 §18)


@dataclass(frozen=True, slots=True)
class Send:
    message: Message
    address: Address
    transport: str = UDP


@dataclass(frozen=True, slots=True)
class Deliver:
    message: Message


@dataclass(frozen=True, slots=True)
class Timeout:
    pass


Action = Send | Deliver | Timeout


class State(StrEnum):
    CALLING = "calling"  # client INVITE, before any response
    TRYING = "trying"  # non-INVITE, before any response
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    ACCEPTED = "accepted"  # INVITE, after a 2xx (RFC 6026)
    CONFIRMED = "confirmed"  # server INVITE, ACK received for a non-2xx final
    TERMINATED = "terminated"


@dataclass(eq=False, slots=True)
class _Timers:
    due: dict[str, float] = field(default_factory=dict)

    def arm(self, name: str, at: float) -> None:
        self.due[name] = at

    def disarm(self, *names: str) -> None:
        for name in names:
            self.due.pop(name, None)

    def fired(self, now: float) -> list[str]:
        names = sorted((at, name) for name, at in self.due.items() if at <= now)
        for _, name in names:
            del self.due[name]
        return [name for _, name in names]

    @property
    def deadline(self) -> float | None:
        return min(self.due.values(), default=None)


class Transaction:
    state: State
    _timers: _Timers

    @property
    def deadline(self) -> float | None:
        return None if self.state is State.TERMINATED else self._timers.deadline

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._timers.due.clear()


class ClientTransaction(Transaction):
    """Sends ``request`` to ``address`` and follows it to its final response."""

    def __init__(self, request: Request, address: Address, transport: str = UDP) -> None:
        self.request = request
        self.address = address
        self.transport = transport
        self.reliable = transport != UDP
        self.invite = request.method == "INVITE"
        self.state = State.CALLING if self.invite else State.TRYING
        self._timers = _Timers()
        self._interval = T1
        self.branch = request.top_via.branch or ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.branch, self.request.method)

    def start(self, now: float) -> list[Action]:
        if not self.reliable:
            self._timers.arm("A" if self.invite else "E", now + T1)
        self._timers.arm("B" if self.invite else "F", now + 64 * T1)
        return [self._send(self.request)]

    def _send(self, message: Message) -> Send:
        return Send(message, self.address, self.transport)

    def fail(self) -> None:
        """The transport could not carry the request (§8.1.3.1): the TU is told apart."""
        self._terminate()

    def receive(self, response: Response, now: float) -> list[Action]:
        status, state = response.status, self.state
        if self.invite:
            if state in (State.CALLING, State.PROCEEDING):
                self._timers.disarm("A", "B")
                if status < 200:
                    self.state = State.PROCEEDING
                    return [Deliver(response)]
                if status < 300:
                    self.state = State.ACCEPTED
                    self._timers.arm("M", now + 64 * T1)
                    return [Deliver(response)]
                self.state = State.COMPLETED
                self._timers.arm("D", now + (0.0 if self.reliable else TIMER_D))
                return [self._send(self._ack(response)), Deliver(response)]
            if state is State.ACCEPTED and 200 <= status < 300:
                return [Deliver(response)]  # the TU acknowledges each 2xx it sees
            if state is State.COMPLETED and status >= 300:
                return [self._send(self._ack(response))]
            return []
        if state in (State.TRYING, State.PROCEEDING):
            if status < 200:
                self.state = State.PROCEEDING
                return [Deliver(response)]
            self.state = State.COMPLETED
            self._timers.disarm("E", "F")
            self._timers.arm("K", now + (0.0 if self.reliable else T4))
            return [Deliver(response)]
        return []

    def on_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for name in self._timers.fired(now):
            if name in ("A", "E"):
                if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
                    if name == "A" and self.state is State.CALLING:
                        actions.append(self._send(self.request))
                        self._interval *= 2
                        self._timers.arm("A", now + self._interval)
                    elif name == "E":
                        actions.append(self._send(self.request))
                        self._interval = (
                            T2 if self.state is State.PROCEEDING else min(self._interval * 2, T2)
                        )
                        self._timers.arm("E", now + self._interval)
            elif name in ("B", "F"):
                self._terminate()
                return [*actions, Timeout()]
            elif name in ("D", "K", "M"):
                self._terminate()
        return actions

    def cancel_retransmissions(self) -> None:
        """The TU gave up on this request (a CANCEL was sent): stop resending it."""
        self._timers.disarm("A", "E")

    def _ack(self, response: Response) -> Request:
        """The ACK of a non-2xx final response: part of this transaction (§17.1.1.3)."""
        headers = Headers()
        headers.add("via", self.request.headers.all("via")[0])
        headers.add("from", self.request.headers.get("from") or "")
        headers.add("call-id", self.request.call_id)
        for route in self.request.headers.all("route"):
            headers.add("route", route)
        headers.add("to", response.headers.get("to") or "")
        headers.add("cseq", f"{self.request.cseq[0]} ACK")
        headers.add("max-forwards", "70")
        return Request(headers, method="ACK", uri=self.request.uri)


class ServerTransaction(Transaction):
    """Holds the responses to one received request and retransmits them as RFC 3261 says."""

    def __init__(self, request: Request, now: float, transport: str = UDP) -> None:
        self.request = request
        self.transport = transport
        self.reliable = transport != UDP
        self.invite = request.method == "INVITE"
        self.state = State.PROCEEDING if self.invite else State.TRYING
        self._timers = _Timers()
        self._interval = T1
        self.last_response: Response | None = None
        self.address = request.top_via.response_address
        # A TU that never answers must not keep the transaction forever.
        self._timers.arm("Z", now + (GUARD_INVITE if self.invite else 64 * T1))

    def respond(self, response: Response, now: float) -> list[Action]:
        """The TU's response; ignored once a final response was sent."""
        if self.state not in (State.TRYING, State.PROCEEDING):
            return []
        self.last_response = response
        status = response.status
        if status >= 200:
            self._timers.disarm("Z")
        if status < 200:
            self.state = State.PROCEEDING
        elif self.invite and status < 300:
            self.state = State.ACCEPTED
            self._timers.arm("G", now + T1)  # the 2xx retransmission of §13.3.1.4
            self._timers.arm("L", now + 64 * T1)
        elif self.invite:
            self.state = State.COMPLETED
            if not self.reliable:
                self._timers.arm("G", now + T1)
            self._timers.arm("H", now + 64 * T1)
        else:
            self.state = State.COMPLETED
            self._timers.arm("J", now + (0.0 if self.reliable else 64 * T1))
        return [self._send(response)]

    def _send(self, message: Message) -> Send:
        return Send(message, self.address, self.transport)

    def receive(self, request: Request, now: float) -> list[Action]:
        """A retransmission of the request, or (INVITE) the ACK of a non-2xx response."""
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._timers.disarm("G", "H")
                self._timers.arm("I", now + (0.0 if self.reliable else T4))
            return []
        if self.last_response is not None and self.state in (
            State.PROCEEDING,
            State.COMPLETED,
            State.TRYING,
        ):
            return [self._send(self.last_response)]
        return []

    def acknowledged(self) -> None:
        """The dialog received the ACK of our 2xx: stop retransmitting it."""
        self._timers.disarm("G")

    def on_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for name in self._timers.fired(now):
            if name == "G" and self.last_response is not None:
                if self.state in (State.COMPLETED, State.ACCEPTED):
                    actions.append(self._send(self.last_response))
                    self._interval = min(self._interval * 2, T2)
                    self._timers.arm("G", now + self._interval)
            elif name == "H":
                self._terminate()
                return [*actions, Timeout()]
            elif name == "L":
                unacknowledged = "G" in self._timers.due
                self._terminate()
                if unacknowledged:
                    return [*actions, Timeout()]  # no ACK for our 2xx: the TU hangs up
            elif name in ("I", "J", "Z"):
                self._terminate()
        return actions
