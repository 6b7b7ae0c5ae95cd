"""The platform's Prometheus metrics: one registry per ``Container``, never the global one.

``Metrics`` holds the counters and histograms that parts of the platform increment as things
happen (calls ended, offers delivered, SIP messages, database and Redis errors, webhook
deliveries) and the collectors that read live state when ``/metrics`` is scraped (queues,
operators, calls in progress, RTP). Several containers in one process never share a series.

Labels are bounded on purpose (docs/operations.md): accounts and groups are ids, SIP methods
outside the standard set are counted as ``other``, errors by class name. Nothing here opens a
port; the web layer serves ``exposition()``.

The webhook dispatcher counts each delivery attempt in ``webhook_deliveries`` by result, one
of ``WEBHOOK_RESULTS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from voicemgmt.domain.routing.model import CallRecord

# Seconds from the routing step that offers a call to the event on the account's stream.
OFFER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

SIP_METHODS = frozenset(
    {
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    }
)

# What a webhook delivery attempt can end as (the label's whole range).
WEBHOOK_RESULTS = (
    "success",
    "http_error",
    "timeout",
    "connection_error",
    "refused",
    "internal_error",
)


def sip_method(method: str) -> str:
    """The label of a SIP method: a standard one, else ``other`` (methods come off the wire)."""
    return method if method in SIP_METHODS else "other"


def status_class(status: int) -> str:
    """``183`` → ``1xx``."""
    return f"{status // 100}xx" if 100 <= status <= 699 else "other"


class Metrics:
    """The registry of one container, and the instruments the platform reports to."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.calls = Counter(
            "voicemgmt_calls",
            "Calls ended, counted when their record is stored.",
            ["account", "group", "direction", "outcome"],
            registry=registry,
        )
        self.offer_delivery = Histogram(
            "voicemgmt_offer_delivery_seconds",
            "From the routing step that offers a call to an operator to the call.offered "
            "event published on the account's stream.",
            buckets=OFFER_BUCKETS,
            registry=registry,
        )
        self.websockets = Gauge(
            "voicemgmt_websockets_open",
            "Event-stream WebSockets open (/vm/events), by the user type of their token.",
            ["user_type"],
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            "voicemgmt_webhook_deliveries",
            "Webhook delivery attempts, by result.",
            ["result"],
            registry=registry,
        )
        self.sip_transactions = Counter(
            "voicemgmt_sip_transactions",
            "SIP transactions started: server (a new request received) or client (sent).",
            ["role", "method"],
            registry=registry,
        )
        self.sip_responses = Counter(
            "voicemgmt_sip_responses",
            "SIP responses sent or received, by the method of their request and status class.",
            ["direction", "method", "status_class"],
            registry=registry,
        )
        self.database_errors = Counter(
            "voicemgmt_database_errors",
            "Errors raised by the database driver, by DB-API exception class.",
            ["error"],
            registry=registry,
        )
        self.redis_errors = Counter(
            "voicemgmt_redis_errors",
            "Errors talking to Redis (event bus), by operation.",
            ["operation"],
            registry=registry,
        )
        # Known label values start at 0, so that rate() and alerts see them before the first
        for user_type in ("agent", "admin"):
            self.websockets.labels(user_type=user_type)
        for result in WEBHOOK_RESULTS:
            self.webhook_deliveries.labels(result=result)

    def add(self, collector: Collector) -> None:
        """A collector of live state, read at each scrape."""
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry)

    # what services report (services/outbox.OutboxObserver) --------------------------------

    def records_stored(self, account_id: int, records: Sequence[CallRecord]) -> None:
        account = str(account_id)
        for record in records:
            group = "" if record.id_group is None else str(record.id_group)
            self.calls.labels(account, group, record.direction, record.outcome.value).inc()

    def events_published(
        self, kinds: Iterable[str], posted_at: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        offers = sum(1 for kind in kinds if kind == "call.offered")
        if offers:
            elapsed = now() - posted_at
            for _ in range(offers):
                self.offer_delivery.observe(elapsed)

    # what adapters report ---------------------------------------------------------------

    def sip_transaction(self, role: str, method: str) -> None:
        self.sip_transactions.labels(role, sip_method(method)).inc()

    def sip_response(self, direction: str, method: str, status: int) -> None:
        self.sip_responses.labels(direction, sip_method(method), status_class(status)).inc()

    def redis_error(self, operation: str) -> None:
        self.redis_errors.labels(operation).inc()

    def watch_database(self, engine: AsyncEngine) -> None:
        """Count every error the engine's driver raises (SQLAlchemy's ``handle_error``)."""

        def counted(context: ExceptionContext) -> None:
            # SQLAlchemy's wrapper (IntegrityError, OperationalError, ...: the DB-API classes,
            # the same on every database) rather than the driver's own (asyncpg has hundreds)
            error = context.sqlalchemy_exception or context.original_exception
            self.database_errors.labels(type(error).__name__).inc()

        event.listen(engine.sync_engine, "handle_error", counted)
