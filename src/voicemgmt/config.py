"""Typed configuration, read once: defaults → optional TOML file → environment (``VM_*``).

Nothing reads the environment at import time; ``load_settings()`` is called by the entry
points and the result is passed down.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import ArgumentError

CONFIG_FILE_ENV = "VM_CONFIG"
MIN_SECRET_KEY_LENGTH = 32
MIN_METRICS_TOKEN_LENGTH = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VM_", extra="forbid", frozen=True)

    data_dir: Path = Path("var")
    database_url: str = ""
    database_pool_size: int = Field(default=50, ge=1, le=500)
    redis_url: str | None = None
    event_bus: Literal["memory", "redis"] = "memory"
    event_retention: int = Field(default=10_000, ge=100)
    switch: Literal["simulated", "sip"] = "simulated"
    # the SIP driver (switch = "sip"); see the README's "Connecting a trunk and a softphone"
    sip_listen: str = "127.0.0.1:5060"
    sip_public_host: str | None = None
    sip_realm: str = Field(default="voicemgmt", min_length=1, max_length=128)
    sip_trunk_sources: list[str] = Field(default_factory=list)
    sip_trunk_username: str | None = None
    sip_trunk_ha1: str | None = None
    sip_trunk_outbound: str | None = None
    sip_max_calls: int = Field(default=2000, ge=1)
    sip_media_timeout: float = Field(default=60.0, ge=0, le=86400)
    sip_prompts_dir: Path | None = None
    sip_music_file: Path | None = None
    sip_voice: str = "en"
    # SIP over TCP and TLS, and SRTP (README "SIP over TLS and SRTP")
    sip_tcp_port: int | None = Field(default=None, ge=0, le=65535)
    sip_tls_port: int | None = Field(default=None, ge=0, le=65535)
    sip_tls_cert: Path | None = None
    sip_tls_key: Path | None = None
    sip_tls_ca_file: Path | None = None
    sip_tls_verify: bool = True
    sip_trunk_transport: Literal["udp", "tcp", "tls"] = "udp"
    sip_trunk_media_encryption: Literal["required", "optional", "off"] = "optional"
    sip_max_connections: int = Field(default=10_000, ge=1, le=1_000_000)
    sip_max_connections_per_address: int = Field(default=100, ge=1, le=1_000_000)
    sip_idle_timeout: float = Field(default=120.0, gt=0, le=86400)
    sip_message_timeout: float = Field(default=10.0, gt=0, le=300)
    sip_tls_handshake_timeout: float = Field(default=5.0, gt=0, le=300)
    media: Literal["relay", "rtpengine"] = "relay"
    rtp_host: str | None = None
    rtp_ports: str = "20000-29999"
    rtpengine_ng: str = "127.0.0.1:2223"
    rtpengine_dtmf: str = "127.0.0.1:2224"  # where rtpengine's --dtmf-log-dest sends digits
    sim_prompt_seconds: float = Field(default=2.0, ge=0)
    sim_digit_interval: float = Field(default=0.3, ge=0)
    sim_customer_answer_after: float = Field(default=3.0, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # this serving process's name (live calls are stored under it); default: host name:port
    node: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9._:-]*$")
    # how often a serving node says it is alive, and after how long without it another node
    # closes the calls it left open (services/live_calls.py)
    node_heartbeat_seconds: float = Field(default=5.0, ge=0.05, le=60)
    node_dead_after_seconds: float = Field(default=30.0, ge=1, le=3600)
    secret_key: SecretStr | None = None
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = "text"
    # /metrics (docs/operations.md): a Bearer token, client addresses, or both; neither: off
    metrics_token: SecretStr | None = None
    metrics_allowed_sources: list[str] = Field(default_factory=list)

    token_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    token_slide_granularity_seconds: int = Field(default=60, ge=1)

    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    credential_cache_seconds: int = Field(default=300, ge=0)

    auth_failures_per_client_login: str = "5/minute"
    auth_failures_per_client: str = "30/minute"
    auth_failures_per_login: str = "10/minute"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # the HTTP server (web/serving.py): who may set X-Forwarded-*, and request heads' limits
    trusted_proxies: list[str] = Field(default_factory=list)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    max_header_count: int = Field(default=100, ge=10, le=10_000)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # event-stream WebSockets open at once with one session token, and for one user with all
    # their tokens (web/events_ws.py)
    streams_per_token: int = Field(default=10, ge=1, le=1000)
    streams_per_user: int = Field(default=30, ge=1, le=10_000)

    # webhooks (docs/webhooks.md)
    webhooks_allow_http: bool = False
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_for_seconds: float = Field(default=24 * 3600.0, gt=0)
    webhook_disable_after_seconds: float = Field(default=3 * 24 * 3600.0, gt=0)
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_read_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_attempt_timeout_seconds: float = Field(default=15.0, gt=0)
    webhook_concurrency: int = Field(default=100, ge=1, le=1000)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value:
            return value
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        try:
            make_url(value).port  # noqa: B018 (parsing is the check)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(f"database_url is not a valid URL: {exc}") from exc
        return value

    @field_validator("sip_listen", "sip_trunk_outbound", "rtpengine_ng", "rtpengine_dtmf")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            host_port(value)
        return value

    @field_validator("sip_trunk_sources", "metrics_allowed_sources", "trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"{info.field_name}: {network!r} is not an address or CIDR"
                ) from exc
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(
                f"metrics_token must be at least {MIN_METRICS_TOKEN_LENGTH} characters"
            )
        return value

    @field_validator("rtp_ports")
    @classmethod
    def _port_range(cls, value: str) -> str:
        port_range(value)
        return value

    @model_validator(mode="after")
    def _tls_files(self) -> Settings:
        if self.sip_tls_port is not None and (
            self.sip_tls_cert is None or self.sip_tls_key is None
        ):
            raise ValueError("sip_tls_port needs sip_tls_cert and sip_tls_key (PEM files)")
        if self.sip_trunk_transport == "tls" and self.sip_tls_port is None:
            raise ValueError("sip_trunk_transport 'tls' needs sip_tls_port (and its certificate)")
        if self.sip_trunk_media_encryption == "required" and self.sip_trunk_transport != "tls":
            raise ValueError(
                "sip_trunk_media_encryption 'required' needs sip_trunk_transport 'tls' "
                "(SRTP keys are only exchanged over TLS)"
            )
        if self.sip_trunk_transport == "tcp" and self.sip_tcp_port is None:
            raise ValueError("sip_trunk_transport 'tcp' needs sip_tcp_port")
        for name in ("sip_tls_cert", "sip_tls_key", "sip_tls_ca_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name}: {path} is not a readable file")
        if self.sip_tls_cert is not None and self.sip_tls_key is not None:
            try:  # read now, so that a bad pair stops the start with this message
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.sip_tls_cert, self.sip_tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"sip_tls_cert and sip_tls_key are not a usable PEM certificate and key: {exc}"
                ) from exc
        if self.sip_tls_ca_file is not None:
            try:
                ssl.create_default_context(cafile=self.sip_tls_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"sip_tls_ca_file holds no usable certificate: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _redis_for_redis_bus(self) -> Settings:
        if self.event_bus == "redis" and not self.redis_url:
            raise ValueError("event_bus 'redis' needs redis_url (VM_REDIS_URL)")
        return self

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"secret_key must be at least {MIN_SECRET_KEY_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _dead_after_beats(self) -> Settings:
        if self.node_dead_after_seconds < 3 * self.node_heartbeat_seconds:
            raise ValueError("node_dead_after_seconds must be at least 3 heartbeats")
        return self

    @property
    def effective_node(self) -> str:
        return self.node or f"{socket.gethostname()}:{self.port}"[:100]

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'voicemgmt.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def host_port(value: str) -> tuple[str, int]:
    """``127.0.0.1:5060`` → ``("127.0.0.1", 5060)``; ``ValueError`` otherwise."""
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]"), int(port)


def port_range(value: str) -> range:
    """``20000-29999`` → the ports, both ends included; at least two."""
    low, dash, high = value.partition("-")
    if not (dash and low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) < 65536):
        raise ValueError(f"{value!r} is not a port range like 20000-29999")
    return range(int(low), int(high) + 1)


def load_settings(**overrides: Any) -> Settings:
    """Read the configuration; explicit overrides (CLI flags) win over everything."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
