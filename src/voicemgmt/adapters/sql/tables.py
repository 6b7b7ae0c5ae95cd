"""The relational schema. Alembic migrations build exactly this (a test compares them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the backend keeps (SQLite keeps naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("login", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("crm_url", Text, nullable=True),
    Column("allowed_origins", JSON, nullable=False),
    Column("settings", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)

operators = Table(
    "operators",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "email_key", name="uq_operators_account_email"),
    sqlite_autoincrement=True,
)

supervisors = Table(
    "supervisors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "email_key", name="uq_supervisors_account_email"),
    sqlite_autoincrement=True,
)

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("name_key", String(200), nullable=False),
    Column("settings", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "name_key", name="uq_groups_account_name"),
    sqlite_autoincrement=True,
)

memberships = Table(
    "memberships",
    metadata,
    Column(
        "operator_id",
        Integer,
        ForeignKey("operators.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("priority", Integer, nullable=False),
    Index("ix_memberships_group_id", "group_id"),
)

numbers = Table(
    "numbers",
    metadata,
    Column("e164", String(15), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("group_id", Integer, ForeignKey("groups.id"), nullable=False),
    Column("label", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("ivr", JSON, nullable=True),
    Column("state", String(16), nullable=False, server_default="active"),
    Column("record", Boolean, nullable=False, server_default=false()),
    Index("ix_numbers_account_id", "account_id"),
)

session_tokens = Table(
    "session_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("user_type", String(8), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("digest", LargeBinary(32), nullable=False, unique=True),
    Column("seed", LargeBinary(32), nullable=False),
    Column("ip", String(45), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Index("ix_session_tokens_user", "account_id", "user_type", "user_id", "expires_at"),
    sqlite_autoincrement=True,
)

# Call records (CDRs). No foreign key on ``id_group`` or ``id_op``: a group or an operator may be
# deleted, and the history of their calls stays. ``id_call`` is unique platform-wide.
call_records = Table(
    "call_records",
    metadata,
    Column("id_call", String(40), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("caller_number", String(64), nullable=False),
    Column("service_number", String(64), nullable=False),
    Column("id_group", Integer, nullable=True),
    Column("id_op", Integer, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("ended_by", String(16), nullable=False),
    Column("disconnect_reason", String(64), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=False),
    Column("duration", Float, nullable=False),
    Column("duration_ring", Float, nullable=False),
    Column("duration_svi", Float, nullable=False),
    Column("duration_wait", Float, nullable=False),
    Column("duration_comm", Float, nullable=False),
    Column("duration_hold", Float, nullable=False),
    Column("post_appel", Float, nullable=False, server_default="0"),
    Column("operators_offered", JSON, nullable=False),
    Column("overflowed_from", JSON, nullable=False),
    Column("ticket_id", String(255), nullable=True),
    Column("variables", JSON, nullable=False),
    Index("ix_call_records_account_started", "account_id", "started_at"),
    Index("ix_call_records_account_op", "account_id", "id_op", "started_at"),
    Index("ix_call_records_account_group", "account_id", "id_group", "started_at"),
)

# The status each operator last chose, so that it survives a restart of the routing core.
operator_presence = Table(
    "operator_presence",
    metadata,
    Column(
        "operator_id",
        Integer,
        ForeignKey("operators.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("account_id", Integer, nullable=False),
    Column("presence", String(8), nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Index("ix_operator_presence_account_id", "account_id"),
)

# Operators' SIP phones (migration 0010). The digest HA1 of the password for ``realm``, never
# the password: a change of realm needs new passwords.
sip_devices = Table(
    "sip_devices",
    metadata,
    Column(
        "operator_id",
        Integer,
        ForeignKey("operators.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("username", String(64), nullable=False, unique=True),
    Column("realm", String(128), nullable=False),
    Column("ha1_md5", String(32), nullable=True),
    Column("ha1_sha256", String(64), nullable=True),
    Column("contact", String(512), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # SRTP with the phone: required, optional, off (migration 0015)
    Column("media_encryption", String(8), nullable=False, server_default="optional"),
    Index("ix_sip_devices_account_id", "account_id"),
)

sip_registrations = Table(
    "sip_registrations",
    metadata,
    Column(
        "operator_id",
        Integer,
        ForeignKey("sip_devices.operator_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("username", String(64), nullable=False, unique=True),
    Column("contact", String(512), nullable=False),
    Column("source_host", String(64), nullable=False),
    Column("source_port", Integer, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_sip_registrations_expires_at", "expires_at"),
)

# Webhooks (migration 0013). Subscriptions keep their signing secrets encrypted with a key
# derived from the platform's secret key (``voicemgmt.adapters.secret_box``).
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", String(200), nullable=False),
    Column("event_kinds", JSON, nullable=True),  # null: every kind
    Column("active", Boolean, nullable=False),
    Column("disabled_reason", String(32), nullable=True),  # admin, failing
    Column("secret", LargeBinary, nullable=False),
    Column("previous_secret", LargeBinary, nullable=True),
    Column("previous_secret_expires_at", UtcDateTime, nullable=True),
    Column("failing_since", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_webhook_subscriptions_account_id", "account_id"),
    sqlite_autoincrement=True,
)

# Per account: whether its webhooks may target private addresses (set by the platform's
# administrator only), and how far its event stream has been copied into the outbox.
webhook_accounts = Table(
    "webhook_accounts",
    metadata,
    Column(
        "account_id",
        Integer,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("allow_private_targets", Boolean, nullable=False),
    Column("stream_epoch", Integer, nullable=False),
    Column("stream_seq", Integer, nullable=False),
)

# The outbox: one row per event and subscription, written with the stream position.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", String(36), nullable=False, unique=True),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("account_id", Integer, nullable=False),
    Column("stream_epoch", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("event_kind", String(64), nullable=False),
    Column("order_key", String(64), nullable=True),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    UniqueConstraint("subscription_id", "stream_epoch", "seq", name="uq_webhook_deliveries_event"),
    Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    Index("ix_webhook_deliveries_order", "subscription_id", "order_key", "id"),
    sqlite_autoincrement=True,
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "delivery_row",
        Integer,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("response_code", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Index("ix_webhook_attempts_delivery_row", "delivery_row"),
    sqlite_autoincrement=True,
)

# Live calls (migration 0014): the trace of each call in progress, kept in the transaction of
# the routing step that changed it and deleted in the one that stores its record
# (services/live_calls.py), and each serving node's heartbeat.
live_calls = Table(
    "live_calls",
    metadata,
    Column("id_call", String(40), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("node", String(100), nullable=False),
    Column("trace", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_live_calls_node", "node"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
)
