"""The webhook API: an account's subscriptions, their delivery log and redelivery (Basic)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from voicemgmt.web.admin_api import Id, Limit, Offset
from voicemgmt.web.dependencies import AccountDep, ContainerDep
from voicemgmt.web.json_body import StrictJsonRoute
from voicemgmt.web.responses import (
    BASIC_AUTH,
    JSON_BODY,
    NOT_JSON_BODY,
    PARAMS,
    SUPERVISOR_ONLY,
    errors,
)
from voicemgmt.web.supervision_api import Supervisor
from voicemgmt.web.webhook_schemas import (
    AttemptOut,
    DeliveryDetailOut,
    DeliveryListing,
    DeliveryOut,
    RecentAttemptOut,
    RotateSecretIn,
    WebhookIn,
    WebhookListing,
    WebhookOut,
    WebhookPatch,
    WebhookStatusListing,
    WebhookStatusOut,
    WebhookWithSecretOut,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=StrictJsonRoute)

DeliveryId = Annotated[str, Path(min_length=1, max_length=36)]


@router.get(
    "",
    summary="This account's webhook subscriptions",
    responses=errors(BASIC_AUTH, PARAMS),
)
async def list_webhooks(
    account: AccountDep, container: ContainerDep, limit: Limit = 100, offset: Offset = 0
) -> WebhookListing:
    found = await container.webhooks.subscriptions(account.id, limit=limit, offset=offset)
    return WebhookListing(items=[WebhookOut.of(s) for s in found], limit=limit, offset=offset)


@router.post(
    "",
    status_code=201,
    summary="Subscribe a URL to events; the answer shows the signing secret, once",
    responses=errors(BASIC_AUTH, JSON_BODY),
)
async def create_webhook(
    body: WebhookIn, account: AccountDep, container: ContainerDep, response: Response
) -> WebhookWithSecretOut:
    subscription = await container.webhooks.create(
        account.id,
        url=body.url,
        events=body.events,
        description=body.description,
        active=body.active,
    )
    response.headers["Location"] = f"/api/v1/webhooks/{subscription.id}"
    return WebhookWithSecretOut.of(subscription)


@router.get(
    "/{id_webhook}",
    summary="One subscription",
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def get_webhook(id_webhook: Id, account: AccountDep, container: ContainerDep) -> WebhookOut:
    return WebhookOut.of(await container.webhooks.subscription(account.id, id_webhook))


@router.patch(
    "/{id_webhook}",
    summary="Change URL, events, description; disable or enable",
    responses=errors(BASIC_AUTH, JSON_BODY, 404),
)
async def patch_webhook(
    id_webhook: Id, body: WebhookPatch, account: AccountDep, container: ContainerDep
) -> WebhookOut:
    subscription = await container.webhooks.update(
        account.id,
        id_webhook,
        url=body.url,
        events=body.events,
        description=body.description,
        active=body.active,
    )
    return WebhookOut.of(subscription)


@router.delete(
    "/{id_webhook}",
    status_code=204,
    summary="Remove a subscription and its log",
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def delete_webhook(id_webhook: Id, account: AccountDep, container: ContainerDep) -> None:
    await container.webhooks.delete(account.id, id_webhook)


@router.post(
    "/{id_webhook}/rotate-secret",
    summary="A new signing secret (shown once); the previous one keeps signing for a while",
    responses=errors(BASIC_AUTH, JSON_BODY, 404),
)
async def rotate_secret(
    id_webhook: Id,
    account: AccountDep,
    container: ContainerDep,
    body: RotateSecretIn | None = None,
) -> WebhookWithSecretOut:
    keep = (body or RotateSecretIn()).keep_previous_seconds
    subscription = await container.webhooks.rotate_secret(
        account.id, id_webhook, keep_previous=timedelta(seconds=keep)
    )
    return WebhookWithSecretOut.of(subscription)


@router.get(
    "/{id_webhook}/deliveries",
    summary="The subscription's deliveries, newest first",
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def list_deliveries(
    id_webhook: Id,
    account: AccountDep,
    container: ContainerDep,
    state: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DeliveryListing:
    found = await container.webhooks.deliveries(
        account.id, id_webhook, state=state, limit=limit, offset=offset
    )
    return DeliveryListing(items=[DeliveryOut.of(d) for d in found], limit=limit, offset=offset)


@router.get(
    "/{id_webhook}/deliveries/{delivery_id}",
    summary="One delivery, its payload and attempts",
    responses=errors(BASIC_AUTH, PARAMS, 404),
)
async def get_delivery(
    id_webhook: Id, delivery_id: DeliveryId, account: AccountDep, container: ContainerDep
) -> DeliveryDetailOut:
    delivery, attempts = await container.webhooks.delivery(account.id, id_webhook, delivery_id)
    return DeliveryDetailOut.with_attempts(delivery, attempts)


@router.post(
    "/{id_webhook}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivery again (same id and body), whatever became of it",
    responses=errors(BASIC_AUTH, PARAMS, NOT_JSON_BODY, 404),
)
async def redeliver(
    id_webhook: Id, delivery_id: DeliveryId, account: AccountDep, container: ContainerDep
) -> DeliveryDetailOut:
    delivery, attempts = await container.webhooks.redeliver(account.id, id_webhook, delivery_id)
    return DeliveryDetailOut.with_attempts(delivery, attempts)


# the supervisor page (a supervisor's session token)

supervision_router = APIRouter(prefix="/api/v1/supervision", route_class=StrictJsonRoute)

LAST_ATTEMPTS = 5


@supervision_router.get(
    "/webhooks",
    tags=["supervisor"],
    summary="The account's webhooks, their state and latest attempts (supervisor page)",
    responses=errors(SUPERVISOR_ONLY),
)
async def supervision_webhooks(me: Supervisor, container: ContainerDep) -> WebhookStatusListing:
    account_id = me.user.account_id
    items = []
    for subscription in await container.webhooks.subscriptions(account_id, limit=100):
        attempts = await container.webhooks.last_attempts(
            account_id, subscription.id, LAST_ATTEMPTS
        )
        items.append(
            WebhookStatusOut(
                **WebhookOut.of(subscription).model_dump(),
                last_attempts=[
                    RecentAttemptOut(delivery=delivery, kind=kind, **AttemptOut.of(a).model_dump())
                    for delivery, kind, a in attempts
                ],
            )
        )
    return WebhookStatusListing(items=items)
