"""The product's exceptions, one tree, each with a stable ``error_id``.

Only the web layer maps them to HTTP statuses (``voicemgmt.web.errors``) and only the CLI maps
them to exit codes; adapters translate their own exceptions into these at the boundary.

    VoiceManagementError
    ├── InvalidInput                 the caller sent something malformed or out of range
    │   ├── InvalidJson
    │   ├── InvalidPhoneNumber
    │   ├── TokenOwnerMismatch
    │   ├── InvalidWebhookUrl        not an acceptable webhook URL (scheme, syntax, name)
    │   ├── WebhookTargetRefused     a webhook URL pointing at a private address (SSRF)
    │   ├── InvalidSavedState        a routing core's saved state that cannot be loaded
    │   └── MessageTooLarge          a message between nodes over the messenger's size limit
    ├── NotFound                     (answered the same whether absent or another account's)
    │   ├── NoSuchAccount
    │   ├── NoSuchOperator
    │   ├── NoSuchSupervisor
    │   ├── NoSuchGroup
    │   ├── NoSuchNumber
    │   ├── NoSuchToken
    │   ├── NoSuchCall
    │   ├── NoSuchIvrStep            a saved IVR session's step is not in the script any more
    │   ├── NoSuchWebhook
    │   └── NoSuchWebhookDelivery
    ├── Conflict                     the request is well-formed but clashes with stored state
    │   ├── DuplicateEmail
    │   ├── DuplicateLogin
    │   ├── DuplicateGroupName
    │   ├── NumberAlreadyRouted
    │   ├── GroupInUse
    │   ├── DuplicateSipUsername
    │   ├── InvalidCallAction        the call is not in a state where that can be done
    │   └── NodeNameInUse            a live node already has that name (VM_NODE)
    ├── PermissionDenied             authenticated, but not allowed to do that
    │   └── NumberNotAllowed         the dial-out rules refuse the number (click-to-call)
    ├── AuthenticationFailed         missing or wrong credentials
    │   └── InvalidSessionToken      a page's token is unknown, expired or deleted
    ├── TooManyAttempts              throttled after repeated failures
    ├── ResumeTooOld                 an event stream cannot resume that far back
    ├── SubscriberTooSlow            an event stream's reader fell too far behind
    └── Unavailable                  something shared is out of reach for now: try again
        ├── CoordinationUnavailable  the coordination store (Redis) cannot be reached
        └── NodeDidNotAnswer         a request to another node got no answer in time
"""

from __future__ import annotations

from typing import Any, ClassVar


class VoiceManagementError(Exception):
    """Base of every error the product reports to a user."""

    error_id: ClassVar[str] = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(VoiceManagementError):
    error_id = "invalid_input"


class InvalidJson(InvalidInput):
    error_id = "invalid_json"


class InvalidPhoneNumber(InvalidInput):
    error_id = "invalid_phone_number"


class TokenOwnerMismatch(InvalidInput):
    error_id = "token_owner_mismatch"


class MessageTooLarge(InvalidInput):
    """A message to another node is larger than the messenger carries."""

    error_id = "message_too_large"


class InvalidWebhookUrl(InvalidInput):
    error_id = "invalid_webhook_url"


class WebhookTargetRefused(InvalidInput):
    """The URL is well formed but points where webhooks may not go (SSRF protection)."""

    error_id = "webhook_target_refused"


class InvalidSavedState(InvalidInput):
    """A routing core's saved state (or a call's or IVR session's) that this version cannot
    load: another format, a missing or mistyped field, a number out of range, a reference to
    something the state does not hold. Nothing was loaded."""

    error_id = "invalid_saved_state"


class NotFound(VoiceManagementError):
    error_id = "not_found"


class NoSuchAccount(NotFound):
    error_id = "unknown_account"


class NoSuchOperator(NotFound):
    error_id = "unknown_operator"


class NoSuchSupervisor(NotFound):
    error_id = "unknown_supervisor"


class NoSuchGroup(NotFound):
    error_id = "unknown_group"


class NoSuchNumber(NotFound):
    error_id = "unknown_number"


class NoSuchToken(NotFound):
    error_id = "unknown_token"


class NoSuchCall(NotFound):
    error_id = "unknown_call"


class NoSuchIvrStep(NotFound):
    """A saved IVR session stood at a step its number's script no longer has (or has as
    another kind of step): the script was edited since."""

    error_id = "unknown_ivr_step"


class NoSuchWebhook(NotFound):
    error_id = "unknown_webhook"


class NoSuchWebhookDelivery(NotFound):
    error_id = "unknown_webhook_delivery"


class Conflict(VoiceManagementError):
    error_id = "conflict"


class DuplicateEmail(Conflict):
    error_id = "duplicate_email"


class DuplicateLogin(Conflict):
    error_id = "duplicate_login"


class DuplicateGroupName(Conflict):
    error_id = "duplicate_group_name"


class NumberAlreadyRouted(Conflict):
    error_id = "number_already_exists"


class GroupInUse(Conflict):
    error_id = "group_in_use"


class DuplicateSipUsername(Conflict):
    error_id = "duplicate_sip_username"


class InvalidCallAction(Conflict):
    error_id = "invalid_call_action"


class NodeNameInUse(Conflict):
    """Another live node is registered under that name; ``details``: ``node``, and
    ``expires_in`` (seconds until its registration lapses if it stopped heartbeating)."""

    error_id = "node_name_in_use"


class PermissionDenied(VoiceManagementError):
    error_id = "forbidden"


class NumberNotAllowed(PermissionDenied):
    """Click-to-call to a number the account's dial-out rules (or the phone system) refuse;
    ``details["reason"]`` says why (``premium_not_allowed``, ``no_trunk``, …)."""

    error_id = "number_not_allowed"


class AuthenticationFailed(VoiceManagementError):
    error_id = "authentication_failed"


class InvalidSessionToken(AuthenticationFailed):
    error_id = "invalid_token"


class TooManyAttempts(VoiceManagementError):
    error_id = "too_many_attempts"

    def __init__(self, message: str, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class ResumeTooOld(VoiceManagementError):
    """Some events after the requested position are gone: the client must start afresh."""

    error_id = "resume_too_old"


class SubscriberTooSlow(VoiceManagementError):
    """The subscription fell too far behind and was ended; resume from the last seq seen."""

    error_id = "subscriber_too_slow"


class Unavailable(VoiceManagementError):
    """A shared part of the platform cannot be reached now; nothing was changed by the
    request that saw it, and trying again later is the remedy."""

    error_id = "unavailable"


class CoordinationUnavailable(Unavailable):
    """The coordination store (Redis: node registry, leases, messenger) did not answer."""

    error_id = "coordination_unavailable"


class NodeDidNotAnswer(Unavailable):
    """A request sent to another node got no answer within its timeout; ``details``: ``node``,
    ``request_id`` (send it again with the same id: the receiver answers a repeat from what it
    stored, see ``docs/cluster.md``) and ``timeout_seconds``."""

    error_id = "node_did_not_answer"
