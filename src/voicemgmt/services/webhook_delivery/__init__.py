"""Webhook delivery: from each account's event stream to a durable outbox, then to receivers.

Two loops, on every node that serves:

- **Recorders**, one per account with subscriptions, read the account's stream from the
  position stored in the database and write, in one transaction, one outbox row per matching
  active subscription and the new position. An event published while no recorder ran (a
  restart) is copied when the recorder resumes, as long as the bus still keeps it (Redis); an
  in-memory bus starts afresh with the process, which the recorder notices (the stored
  position is beyond the bus's latest event) and follows as a new *epoch* of the stream; so
  does a change of the bus's own epoch while the recorder runs (Redis lost the stream and
  numbers it afresh), unless another node's recorder already moved the stored epoch on.
  Writing the outbox is idempotent, so several nodes may copy the same stream.
- **The sender** claims due deliveries with a lease (``SELECT … FOR UPDATE SKIP LOCKED`` on
  PostgreSQL), so exactly one node attempts each, keeps up to ``concurrency`` attempts in
  flight (a slow receiver holds one slot, never the loop), and stores the outcomes: delivered,
  retried later (:class:`~voicemgmt.domain.webhooks.RetryPolicy`), or given up once expired.
  A subscription whose deliveries have all failed for ``disable_after`` is disabled, and a
  ``webhook.disabled`` event goes out on the account's stream.

The package: ``base`` (the sender port, the dispatcher's shared state), ``recording`` (the
stream into the outbox), ``sending`` (the outbox to the receivers), ``dispatcher``
(``WebhookDispatcher``: start, stop, reloading subscriptions).
"""

from voicemgmt.services.webhook_delivery.base import Sender, SendResult
from voicemgmt.services.webhook_delivery.dispatcher import WebhookDispatcher
from voicemgmt.services.webhook_delivery.recording import delivery_body

__all__ = ["SendResult", "Sender", "WebhookDispatcher", "delivery_body"]
