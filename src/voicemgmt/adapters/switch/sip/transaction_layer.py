"""Matching messages to transactions (RFC 3261 §17.1.3, §17.2.3), still without I/O.

``TransactionLayer.receive`` takes one parsed message and its source and returns what the
transaction user must see: ``IncomingRequest`` (a new request, with its server transaction;
an ACK for a 2xx has none), ``IncomingResponse`` / ``ClientTimeout`` (for the client
transaction that sent the request) and ``Send`` actions to put on the wire. Retransmissions
are absorbed here. ``deadline`` and ``on_timer`` drive every transaction's timers.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from voicemgmt.adapters.switch.sip.message import Request, Response
from voicemgmt.adapters.switch.sip.transaction import (
    Action,
    Address,
    ClientTransaction,
    Deliver,
    Send,
    ServerTransaction,
    Timeout,
)

UDP = "UDP"

MAX_TRANSACTIONS = 50_000


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    request: Request
    source: Address
    transaction: ServerTransaction | None  # None for an ACK outside any transaction
    transport: str = UDP  # "UDP", "TCP" or "TLS": how it came (TLS: its SDP was not exposed)


@dataclass(frozen=True, slots=True)
class IncomingResponse:
    response: Response
    transaction: ClientTransaction


@dataclass(frozen=True, slots=True)
class ClientTimeout:
    transaction: ClientTransaction


@dataclass(frozen=True, slots=True)
class ServerTimeout:
    transaction: ServerTransaction


Event = IncomingRequest | IncomingResponse | ClientTimeout | ServerTimeout | Send

ServerKey = tuple[str, str, int, str]


def server_key(request: Request) -> ServerKey:
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    host, port = via.sent_by
    return (via.branch or "", host, port, method)


class TransactionLayer:
    def __init__(self, max_transactions: int = MAX_TRANSACTIONS) -> None:
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction] = {}
        self._heap: list[tuple[float, int, ClientTransaction | ServerTransaction]] = []
        self._order = itertools.count()
        self.max_transactions = max_transactions

    @property
    def busy(self) -> bool:
        """Too many transactions in flight: new requests should be refused (503)."""
        return len(self._clients) + len(self._servers) >= self.max_transactions

    def send_request(
        self, request: Request, address: Address, now: float, transport: str = UDP
    ) -> tuple[ClientTransaction, list[Send]]:
        """Start a client transaction: the transaction, and what to put on the wire."""
        transaction = ClientTransaction(request, address, transport)
        self._clients[transaction.key] = transaction
        sends = [a for a in transaction.start(now) if isinstance(a, Send)]
        self._schedule(transaction)
        return transaction, sends

    def respond(self, transaction: ServerTransaction, response: Response, now: float) -> list[Send]:
        actions = transaction.respond(response, now)
        self._schedule(transaction)
        return [a for a in actions if isinstance(a, Send)]

    def cancel_retransmissions(self, transaction: ClientTransaction) -> None:
        transaction.cancel_retransmissions()

    def invite_transaction(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL is about (§9.2: same branch and sent-by)."""
        branch, host, port, _ = server_key(cancel)
        return self._servers.get((branch, host, port, "INVITE"))

    def fail(self, transaction: ClientTransaction) -> None:
        """The request could not be sent (no connection): forget the transaction."""
        transaction.fail()
        self._forget_if_done(transaction)

    def receive(
        self, message: Request | Response, source: Address, now: float, transport: str = UDP
    ) -> list[Event]:
        """``source``: the peer's address (for a stream, the connection's far end)."""
        if isinstance(message, Response):
            return self._receive_response(message, now)
        return self._receive_request(message, source, now, transport)

    def _receive_response(self, response: Response, now: float) -> list[Event]:
        via = response.top_via
        _, method = response.cseq
        transaction = self._clients.get((via.branch or "", method))
        if transaction is None:
            return []  # a stray response (§18.1.2: dropped)
        return self._translate(transaction, transaction.receive(response, now))

    def _receive_request(
        self, request: Request, source: Address, now: float, transport: str
    ) -> list[Event]:
        key = server_key(request)
        transaction = self._servers.get(key)
        if transaction is not None:
            if request.method == "ACK" and transaction.state.value == "accepted":
                return [IncomingRequest(request, source, None, transport)]  # ACK for our 2xx
            return self._translate(transaction, transaction.receive(request, now))
        if request.method == "ACK":
            return [IncomingRequest(request, source, None, transport)]
        transaction = ServerTransaction(request, now, transport)
        if transport == UDP:
            via = request.top_via.received_from(*source)
            transaction.address = via.response_address
        else:  # responses go back on the request's connection (§18.2.2)
            transaction.address = source
        self._servers[key] = transaction
        return [IncomingRequest(request, source, transaction, transport)]

    @property
    def deadline(self) -> float | None:
        while self._heap:
            at, _, transaction = self._heap[0]
            if transaction.deadline == at and not transaction.terminated:
                return at
            heapq.heappop(self._heap)
            self._forget_if_done(transaction)
        return None

    def on_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        while self._heap and self._heap[0][0] <= now:
            at, _, transaction = heapq.heappop(self._heap)
            if transaction.deadline != at:
                self._forget_if_done(transaction)
                continue
            events.extend(self._translate(transaction, transaction.on_timer(now)))
        return events

    def _translate(
        self, transaction: ClientTransaction | ServerTransaction, actions: list[Action]
    ) -> list[Event]:
        events: list[Event] = []
        for action in actions:
            if isinstance(action, Send):
                events.append(action)
            elif isinstance(action, Deliver) and isinstance(transaction, ClientTransaction):
                assert isinstance(action.message, Response)
                events.append(IncomingResponse(action.message, transaction))
            elif isinstance(action, Timeout):
                if isinstance(transaction, ClientTransaction):
                    events.append(ClientTimeout(transaction))
                else:
                    events.append(ServerTimeout(transaction))
        self._schedule(transaction)
        return events

    def _schedule(self, transaction: ClientTransaction | ServerTransaction) -> None:
        deadline = transaction.deadline
        if deadline is None:
            self._forget_if_done(transaction)
            return
        heapq.heappush(self._heap, (deadline, next(self._order), transaction))

    def _forget_if_done(self, transaction: ClientTransaction | ServerTransaction) -> None:
        if not transaction.terminated and transaction.deadline is not None:
            return
        if not transaction.terminated:
            return  # waiting for the TU (a server transaction with no response yet)
        if isinstance(transaction, ClientTransaction):
            if self._clients.get(transaction.key) is transaction:
                del self._clients[transaction.key]
        else:
            key = server_key(transaction.request)
            if self._servers.get(key) is transaction:
                del self._servers[key]

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)
