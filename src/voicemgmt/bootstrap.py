"""The composition root: settings in, wired adapters and services out. Nothing else wires."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from voicemgmt.adapters.events.memory import InMemoryEventBus
from voicemgmt.adapters.events.redis import RedisEventBus
from voicemgmt.adapters.passwords import Argon2Hasher
from voicemgmt.adapters.secret_box import SecretBox
from voicemgmt.adapters.sql.call_records import SqlCallRecords
from voicemgmt.adapters.sql.engine import create_engine, migrate
from voicemgmt.adapters.sql.live_calls import SqlLiveCalls
from voicemgmt.adapters.sql.repository import SqlUnitOfWork
from voicemgmt.adapters.sql.sip_devices import SqlSipDevices
from voicemgmt.adapters.sql.sip_registrations import SqlSipRegistrations
from voicemgmt.adapters.sql.webhooks import SqlWebhooks
from voicemgmt.adapters.switch.simulated import SimulatedSwitch
from voicemgmt.adapters.switch.simulation import SimulationTiming
from voicemgmt.adapters.system import SystemClock
from voicemgmt.adapters.webhook_sender import SendTimeouts, WebhookSender, resolve
from voicemgmt.config import Settings, host_port, port_range
from voicemgmt.domain.webhooks import RetryPolicy
from voicemgmt.observability.collectors import (
    CallbackCounter,
    LabelledCallbackCounter,
    MediaCollector,
    RoutingCollector,
)
from voicemgmt.observability.metrics import Metrics
from voicemgmt.services.authentication import (
    ApiAuthenticator,
    LoginThrottle,
    VerifiedCredentialCache,
)
from voicemgmt.services.call_records import CallRecordService
from voicemgmt.services.directory import DirectoryService
from voicemgmt.services.events import EventBus, Retention
from voicemgmt.services.live_calls import LiveCalls
from voicemgmt.services.ports import UnitOfWork
from voicemgmt.services.routing import RoutingService
from voicemgmt.services.sessions import SessionService
from voicemgmt.services.sip_devices import SipDeviceService, SipDirectory, SipRegistrationStore
from voicemgmt.services.switch import Switch
from voicemgmt.services.tokens import TokenService
from voicemgmt.services.webhook_delivery import WebhookDispatcher
from voicemgmt.services.webhooks import WebhookService

SECRET_KEY_FILE = "secret.key"  # noqa: S105 (a file name)


@dataclass(frozen=True)
class Container:
    settings: Settings
    engine: AsyncEngine
    directory: DirectoryService
    tokens: TokenService
    authenticator: ApiAuthenticator
    bus: EventBus
    switch: Switch
    call_records: CallRecordService
    routing: RoutingService
    live_calls: LiveCalls
    sessions: SessionService
    sip_devices: SipDeviceService
    metrics: Metrics
    webhooks: WebhookService
    webhook_dispatcher: WebhookDispatcher

    def unit_of_work(self) -> UnitOfWork:
        return SqlUnitOfWork(self.engine)

    async def start(self, *, serving: bool = False) -> None:
        """Bring the database schema up to date (safe at every start), then take calls. A
        serving node (not a CLI command) also delivers webhooks, closes the calls it left
        open if it was killed, and keeps its heartbeat (``services/live_calls.py``)."""
        await migrate(self.engine)
        if serving:
            # before routing, so that the recorders see the events of this process's start
            await self.webhook_dispatcher.start()
            await self.live_calls.start()
        await self.routing.start()

    async def close(self) -> None:
        try:
            await self.routing.close()  # every call ended, with its record
            await self.live_calls.close()  # if it started
            await self.webhook_dispatcher.close()
            await self.bus.aclose()
        finally:
            await self.engine.dispose()


def secret_key(settings: Settings) -> bytes:
    """``VM_SECRET_KEY`` if set, else a key kept in the data directory (created once, 0600)."""
    if settings.secret_key is not None:  # its length is checked by Settings
        return settings.secret_key.get_secret_value().encode()
    path = Path(settings.data_dir) / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def build(settings: Settings, *, telephony: bool = True) -> Container:
    """Everything the product is made of, as ``settings`` say.

    ``telephony=False`` (the CLI) leaves the phone system out: whatever ``VM_SWITCH`` says, no
    SIP or RTP socket is opened, so that a command runs beside a server started with the same
    settings; the routing service gets the simulated switch, which opens nothing.
    """
    engine = create_engine(settings.effective_database_url, pool_size=settings.database_pool_size)
    metrics = Metrics()
    metrics.watch_database(engine)
    clock = SystemClock()
    hasher = Argon2Hasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )

    def unit_of_work() -> UnitOfWork:
        return SqlUnitOfWork(engine)

    retention = Retention(max_events=settings.event_retention)
    bus: EventBus = (
        RedisEventBus(settings.redis_url, retention=retention, on_error=metrics.redis_error)
        if settings.event_bus == "redis" and settings.redis_url
        else InMemoryEventBus(retention=retention)
    )
    sip_devices = SipDeviceService(
        SqlSipDevices(engine), unit_of_work, clock, realm=settings.sip_realm
    )
    switch = (
        sip_switch(settings, sip_devices, metrics, SqlSipRegistrations(engine))
        if settings.switch == "sip" and telephony
        else SimulatedSwitch(
            SimulationTiming(
                prompt_seconds=settings.sim_prompt_seconds,
                digit_interval=settings.sim_digit_interval,
                customer_answer_after=settings.sim_customer_answer_after,
            )
        )
    )
    records = SqlCallRecords(engine)
    tokens = TokenService(
        unit_of_work,
        clock,
        secret_key(settings),
        ttl=timedelta(seconds=settings.token_ttl_seconds),
        slide_granularity=timedelta(seconds=settings.token_slide_granularity_seconds),
    )
    live_store = SqlLiveCalls(engine)
    node = settings.effective_node
    routing = RoutingService(
        unit_of_work, bus, records, live_store, switch, clock, node=node, observer=metrics
    )
    metrics.add(RoutingCollector(routing))

    def throttle() -> LoginThrottle:
        return LoginThrottle(
            settings.auth_failures_per_client_login,
            settings.auth_failures_per_client,
            settings.auth_failures_per_login,
        )

    authenticator = ApiAuthenticator(
        unit_of_work,
        hasher,
        clock,
        VerifiedCredentialCache(timedelta(seconds=settings.credential_cache_seconds)),
        throttle(),
    )
    directory = DirectoryService(unit_of_work, hasher, clock)
    webhook_store = SqlWebhooks(engine, SecretBox(secret_key(settings), "webhook secrets"))
    policy = RetryPolicy(
        base=timedelta(seconds=settings.webhook_retry_base_seconds),
        cap=timedelta(seconds=settings.webhook_retry_cap_seconds),
        retry_for=timedelta(seconds=settings.webhook_retry_for_seconds),
        disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
    )
    webhooks = WebhookService(
        webhook_store, clock, resolve, allow_http=settings.webhooks_allow_http, policy=policy
    )
    timeouts = SendTimeouts(
        connect=settings.webhook_connect_timeout_seconds,
        read=settings.webhook_read_timeout_seconds,
        total=settings.webhook_attempt_timeout_seconds,
    )
    dispatcher = WebhookDispatcher(
        webhook_store,
        bus,
        WebhookSender(timeouts, max_connections=settings.webhook_concurrency),
        clock,
        policy,
        allow_http=settings.webhooks_allow_http,
        lease=timedelta(seconds=2 * timeouts.total + 30),
        concurrency=settings.webhook_concurrency,
        on_attempt=lambda result: metrics.webhook_deliveries.labels(result=result).inc(),
    )
    webhooks.on_change(dispatcher.subscriptions_changed)
    for listener in (routing, tokens, authenticator):
        directory.on_change(listener.directory_changed)
    return Container(
        settings=settings,
        engine=engine,
        directory=directory,
        tokens=tokens,
        bus=bus,
        switch=switch,
        call_records=CallRecordService(records),
        routing=routing,
        live_calls=LiveCalls(
            live_store,
            bus,
            clock,
            node,
            heartbeat=settings.node_heartbeat_seconds,
            dead_after=settings.node_dead_after_seconds,
            observer=metrics,
        ),
        sessions=SessionService(
            unit_of_work, tokens, authenticator.password_checks, throttle(), bus, routing, clock
        ),
        sip_devices=sip_devices,
        authenticator=authenticator,
        metrics=metrics,
        webhooks=webhooks,
        webhook_dispatcher=dispatcher,
    )


def sip_switch(
    settings: Settings,
    directory: SipDirectory,
    metrics: Metrics,
    registrations: SipRegistrationStore,
) -> Switch:
    """The SIP driver, its media backend and its prompts, as ``VM_SIP_*`` and ``VM_MEDIA`` say."""
    from voicemgmt.adapters.switch.sip.calls import SipOptions
    from voicemgmt.adapters.switch.sip.driver import SipSwitch
    from voicemgmt.adapters.switch.sip.media.base import MediaBackend
    from voicemgmt.adapters.switch.sip.media.relay import RtpRelay
    from voicemgmt.adapters.switch.sip.prompts import PromptLibrary
    from voicemgmt.adapters.switch.sip.stream import StreamLimits
    from voicemgmt.adapters.switch.sip.tls import client_context, server_context

    listen = host_port(settings.sip_listen)
    public = settings.sip_public_host or listen[0]
    rtp_host = settings.rtp_host or public
    media: MediaBackend
    if settings.media == "rtpengine":
        from voicemgmt.adapters.switch.sip.media.rtpengine import RtpengineMedia

        rtpengine = RtpengineMedia(
            host_port(settings.rtpengine_ng),
            rtp_host,
            host_port(settings.rtpengine_dtmf),
            Path(settings.data_dir).resolve() / "rtpengine-media",
        )
        metrics.add(MediaCollector("rtpengine", rtpengine))
        media = rtpengine
    else:
        relay = RtpRelay(rtp_host, port_range(settings.rtp_ports))
        metrics.add(MediaCollector("relay", relay))
        media = relay
    data = Path(settings.data_dir)
    prompts = PromptLibrary(
        settings.sip_prompts_dir or data / "prompts",
        data / "prompt-cache",
        voice=settings.sip_voice,
        music_file=settings.sip_music_file,
    )
    options = SipOptions(
        listen=listen,
        public_host=public,
        realm=settings.sip_realm,
        digest_key=secret_key(settings),
        trunk_networks=tuple(settings.sip_trunk_sources),
        trunk_username=settings.sip_trunk_username,
        trunk_ha1=settings.sip_trunk_ha1,
        trunk_outbound=host_port(settings.sip_trunk_outbound)
        if settings.sip_trunk_outbound
        else None,
        max_calls=settings.sip_max_calls,
        media_timeout=settings.sip_media_timeout,
        trunk_transport=settings.sip_trunk_transport.upper(),
        trunk_media_encryption=settings.sip_trunk_media_encryption,
        tcp_port=settings.sip_tcp_port,
        tls_port=settings.sip_tls_port,
        tls_server=server_context(settings.sip_tls_cert, settings.sip_tls_key)
        if settings.sip_tls_port is not None and settings.sip_tls_cert and settings.sip_tls_key
        else None,
        tls_client=client_context(
            ca_file=settings.sip_tls_ca_file,
            verify=settings.sip_tls_verify,
            cert=settings.sip_tls_cert,
            key=settings.sip_tls_key,
        ),
        stream_limits=StreamLimits(
            max_connections=settings.sip_max_connections,
            max_per_address=settings.sip_max_connections_per_address,
            idle_timeout=settings.sip_idle_timeout,
            message_timeout=settings.sip_message_timeout,
            handshake_timeout=settings.sip_tls_handshake_timeout,
        ),
    )
    switch = SipSwitch(
        options, media, prompts, directory, observer=metrics, registrations=registrations
    )
    transport = switch.transport
    metrics.add(
        CallbackCounter(
            "voicemgmt_sip_malformed_messages",
            "SIP datagrams dropped because they could not be parsed.",
            lambda: transport.malformed,
        )
    )
    streams = transport.streams
    metrics.add(
        LabelledCallbackCounter(
            "voicemgmt_sip_connections_refused",
            "SIP TCP/TLS connections closed on arrival by a connection limit.",
            "limit",
            lambda: dict(streams.refused),
        )
    )
    metrics.add(
        LabelledCallbackCounter(
            "voicemgmt_sip_connections_closed",
            "SIP TCP/TLS connections closed by a timeout, a limit or input that cannot be read.",
            "reason",
            lambda: dict(streams.closed),
        )
    )
    return switch
