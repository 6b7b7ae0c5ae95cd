"""Request and response bodies of the webhook API (``/api/v1/webhooks``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from voicemgmt.domain.webhooks import ALL_KINDS, AttemptView, DeliveryView, Subscription
from voicemgmt.web.admin_schemas import StrictIn

EVENTS_DESCRIPTION = 'event kinds to send (docs/webhooks.md), or ["*"] for every kind'


class WebhookIn(StrictIn):
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="https:// URL receiving the POSTs (public addresses only)",
        examples=["https://crm.example.com/hooks/voice"],
    )
    events: list[str] = Field(
        default_factory=lambda: [ALL_KINDS],
        min_length=1,
        max_length=50,
        description=EVENTS_DESCRIPTION,
        examples=[["call.offered", "call.ended"]],
    )
    description: str = Field(default="", max_length=200)
    active: bool = True


class WebhookPatch(StrictIn):
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[str] | None = Field(
        default=None, min_length=1, max_length=50, description=EVENTS_DESCRIPTION
    )
    description: str | None = Field(default=None, max_length=200)
    active: bool | None = Field(
        default=None, description="false stops deliveries; true resumes them and clears failures"
    )


class RotateSecretIn(StrictIn):
    keep_previous_seconds: int = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="how long the previous secret keeps signing too (a second v1)",
    )


class WebhookOut(BaseModel):
    id_webhook: int
    url: str
    description: str
    events: list[str] = Field(description=EVENTS_DESCRIPTION)
    active: bool
    state: Literal["active", "disabled", "disabled_failing"] = Field(
        description="disabled_failing: disabled automatically after failing (docs/webhooks.md)"
    )
    failing_since: datetime | None = Field(
        description="since when every delivery has failed; null after a success"
    )
    previous_secret_expires_at: datetime | None = Field(
        description="until when the previous secret also signs, after a rotation"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Subscription) -> WebhookOut:
        return cls(**_fields(s))


def _fields(s: Subscription) -> dict[str, Any]:
    state = (
        "active"
        if s.active
        else ("disabled_failing" if s.disabled_reason == "failing" else "disabled")
    )
    return {
        "id_webhook": s.id,
        "url": s.url,
        "description": s.description,
        "events": [ALL_KINDS] if s.event_kinds is None else list(s.event_kinds),
        "active": s.active,
        "state": state,
        "failing_since": s.failing_since,
        "previous_secret_expires_at": s.previous_secret_expires_at
        if s.previous_secret is not None
        else None,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


class WebhookWithSecretOut(WebhookOut):
    secret: str = Field(
        description="the signing secret: shown only now (on creation and rotation); keep it"
    )

    @classmethod
    def of(cls, s: Subscription) -> WebhookWithSecretOut:
        return cls(secret=s.secret, **_fields(s))


class AttemptOut(BaseModel):
    at: datetime
    ok: bool = Field(description="the receiver answered 2xx")
    latency_ms: int
    response_code: int | None = Field(description="null when no HTTP answer came")
    error: str | None = Field(description="what went wrong, when it did")

    @classmethod
    def of(cls, a: AttemptView) -> AttemptOut:
        return cls(
            at=a.at,
            ok=a.ok,
            latency_ms=a.latency_ms,
            response_code=a.response_code,
            error=a.error,
        )


class DeliveryOut(BaseModel):
    id: str = Field(description="the VM-Webhook-Id header: the same on every attempt")
    id_webhook: int
    seq: int = Field(description="the event's seq in the account's stream")
    kind: str
    state: Literal["pending", "delivered", "failed"] = Field(
        description="failed: given up after the retry period"
    )
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, d: DeliveryView) -> DeliveryOut:
        return cls(**_delivery_fields(d))


def _delivery_fields(d: DeliveryView) -> dict[str, Any]:
    return {
        "id": d.delivery_id,
        "id_webhook": d.subscription_id,
        "seq": d.seq,
        "kind": d.kind,
        "state": d.state,
        "attempts": d.attempts,
        "created_at": d.created_at,
        "next_attempt_at": d.next_attempt_at,
        "finished_at": d.finished_at,
    }


# An event's data differs by kind; /events.schema.json has each kind's (its <Kind>Data).
EventData = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "description": "The event's fields: the data of this kind's frame in "
            "/events.schema.json (docs/events.md).",
            "properties": {
                "id_call": {"type": "string", "description": "the call, for call.* kinds"},
                "id_op": {
                    "type": ["integer", "null"],
                    "description": "the operator, when the event is about one",
                },
            },
            "additionalProperties": {"description": "per kind: see /events.schema.json"},
        }
    ),
]


class WebhookPayload(BaseModel):
    """The JSON body of a delivery: the stream's event and the delivery's id."""

    id: str = Field(description="the delivery's id (VM-Webhook-Id)")
    seq: int = Field(description="the event's seq in the account's stream")
    kind: str
    at: str = Field(description="when it happened, ISO 8601 UTC")
    data: EventData = Field(description="the event's fields, per kind (docs/events.md)")


class DeliveryDetailOut(DeliveryOut):
    payload: WebhookPayload = Field(description="the body sent (the same on every attempt)")
    attempt_log: list[AttemptOut]

    @classmethod
    def with_attempts(cls, d: DeliveryView, attempts: list[AttemptView]) -> DeliveryDetailOut:
        return cls(
            payload=WebhookPayload.model_validate(json.loads(d.body)),
            attempt_log=[AttemptOut.of(a) for a in attempts],
            **_delivery_fields(d),
        )


class DeliveryListing(BaseModel):
    items: list[DeliveryOut]
    limit: int
    offset: int


class WebhookListing(BaseModel):
    items: list[WebhookOut]
    limit: int
    offset: int


class RecentAttemptOut(AttemptOut):
    delivery: str = Field(description="the delivery's id (VM-Webhook-Id)")
    kind: str


class WebhookStatusOut(WebhookOut):
    """A subscription as the supervisor page shows it, with its latest attempts."""

    last_attempts: list[RecentAttemptOut] = Field(description="newest first")


class WebhookStatusListing(BaseModel):
    items: list[WebhookStatusOut]
