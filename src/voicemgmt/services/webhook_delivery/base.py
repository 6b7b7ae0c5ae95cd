"""Webhook delivery's base: the ``Sender`` port, and the state the dispatcher's recorders and
sender share (subscriptions by account and by id, the outbox rows leased, outcomes to store,
the wake-up of the sender).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from voicemgmt.domain.webhooks import Outcome, RetryPolicy, Subscription
from voicemgmt.services.events import EventBus
from voicemgmt.services.ports import Clock
from voicemgmt.services.webhooks import WebhookStore


@dataclass(frozen=True, slots=True)
class SendResult:
    """One attempt as the receiver answered it (``ok``: a 2xx)."""

    ok: bool
    latency_ms: int
    response_code: int | None
    error: str | None
    # success, http_error (an answer, not 2xx), timeout, connection_error, refused (the
    # target's address is not allowed): observability's WEBHOOK_RESULTS
    result: str


class Sender(Protocol):
    async def send(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        allow_http: bool,
        allow_private: bool,
    ) -> SendResult: ...

    async def aclose(self) -> None: ...


class DispatcherBase:
    """What the recorders and the sender of ``WebhookDispatcher`` share."""

    def __init__(
        self,
        store: WebhookStore,
        bus: EventBus,
        sender: Sender,
        clock: Clock,
        policy: RetryPolicy,
        *,
        allow_http: bool,
        lease: timedelta = timedelta(seconds=60),
        concurrency: int = 100,
        poll_seconds: float = 1.0,
        refresh_seconds: float = 10.0,
        batch_wait: float = 0.01,
        draw: Callable[[], float] = random.random,
        on_attempt: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._on_attempt = on_attempt  # told each attempt's result (the metrics)
        self._bus = bus
        self._sender = sender
        self._clock = clock
        self.policy = policy
        self._allow_http = allow_http
        self._lease = lease
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._refresh_every = refresh_seconds
        self._batch_wait = batch_wait
        self._draw = draw
        self._subscriptions: dict[int, list[Subscription]] = {}  # account → active ones
        self._by_id: dict[int, Subscription] = {}  # the active ones by id
        self._private: set[int] = set()  # accounts allowing private targets
        self._claim_due = True
        self._recorders: dict[int, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._copied: dict[int, tuple[int, int]] = {}  # account → (epoch, seq) copied
        # account → (stored epoch, the bus's epoch) when this recorder last started copying
        self._streams: dict[int, tuple[int, str]] = {}
        self._leased: set[int] = set()  # outbox rows claimed, outcome not yet stored
        self._outcomes: list[Outcome] = []
        self._wake = asyncio.Event()
        self._refresh_lock = asyncio.Lock()
        self._started = False

    async def refresh(self, *, resume: bool = False) -> None:
        """Reload every subscription (``WebhookDispatcher.refresh``)."""
        raise NotImplementedError
