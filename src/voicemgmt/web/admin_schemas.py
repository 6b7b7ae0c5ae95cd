"""Request and response bodies of the admin REST API (``/api/v1``).

Inputs are strict (no "12" for 12, no unknown fields) so that a typo is an error, not a
silently ignored field.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from voicemgmt.domain.directory import Account, Group, Number, Operator, Supervisor
from voicemgmt.domain.sip import SipDevice

T = TypeVar("T")
MAX_ID = 2**31 - 1

# Settings and IVR scripts are stored as the JSON given (bounded in size), so their Python type
# stays a dict; the document names the keys the product reads. Other keys are kept as given.
_ANY_JSON: dict[str, Any] = {"description": "any JSON value, kept as given"}
GroupSettings = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "description": "How the group routes; every key is optional (README, 'Routing and "
            "IVR settings'). Other keys are kept as given.",
            "properties": {
                "strategy": {
                    "enum": ["longest_idle", "round_robin", "fewest_calls", "ring_all"],
                    "description": "default longest_idle",
                },
                "ring_timeout": {"type": "number", "description": "seconds; default 20"},
                "wrap_up": {"type": "number", "description": "seconds; default 10"},
                "max_no_answer": {
                    "type": "integer",
                    "description": "unanswered offers in a row before a break; 0 never; default 3",
                },
                "max_wait": {
                    "type": ["number", "null"],
                    "description": "seconds; null waits forever; default 600",
                },
                "overflow_group": {"type": ["integer", "null"]},
                "overflow_number": {"type": ["string", "null"], "description": "E.164 digits"},
                "when_empty": {"enum": ["wait", "overflow", "missed"]},
                "tier_delay": {
                    "type": ["number", "null"],
                    "description": "seconds before each lower priority tier is tried",
                },
                "crm_url": {
                    "type": ["string", "null"],
                    "description": "the group's own CRM URL for the screen pop",
                },
            },
            "additionalProperties": _ANY_JSON,
        }
    ),
]
AccountSettings = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "description": "The account's settings; every key is optional. Other keys are "
            "kept as given.",
            "properties": {
                "caller_id": {
                    "type": ["string", "null"],
                    "description": "E.164 digits click-to-call presents to the customer",
                },
                "screen_pop": {
                    "enum": ["presentation", "answer", "off"],
                    "description": "when the banner opens the CRM's customer file; default "
                    "presentation",
                },
            },
            "additionalProperties": _ANY_JSON,
        }
    ),
]
_PROMPT = {
    "type": "object",
    "description": '{"text": "…"} to speak, or {"audio": "<file name>"}',
    "properties": {"text": {"type": "string"}, "audio": {"type": "string"}},
}
_TARGET = {
    "type": "object",
    "description": '{"step": "<step id>"}, {"group": <id_group>} or {"hangup": true}',
    "properties": {
        "step": {"type": "string"},
        "group": {"type": "integer"},
        "hangup": {"const": True},
    },
}
IvrScriptJson = Annotated[
    dict[str, Any] | None,
    WithJsonSchema(
        {
            "type": ["object", "null"],
            "description": "An IVR script callers go through first (README, 'Routing and IVR "
            "settings'), or null: none.",
            "properties": {
                "start": {"type": "string", "description": "the step every call begins with"},
                "max_duration": {"type": "number", "description": "seconds; default 300"},
                "steps": {
                    "type": "object",
                    "description": "1 to 100 steps by id",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {
                            "type": {"enum": ["play", "menu", "collect"]},
                            "prompt": _PROMPT,
                            "next": _TARGET,
                            "options": {
                                "type": "object",
                                "description": "menu: digit → target",
                                "additionalProperties": _TARGET,
                            },
                            "variable": {
                                "type": "string",
                                "description": "collect: where the digits go",
                            },
                            "on_failure": _TARGET,
                        },
                        "required": ["type"],
                        "additionalProperties": _ANY_JSON,
                    },
                },
            },
            "required": ["start", "steps"],
        }
    ),
]


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Listing(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int


class MembershipIn(StrictIn):
    id_group: int = Field(ge=1, le=MAX_ID)
    priority: int = Field(default=1, ge=1, le=100)


class MembershipOut(BaseModel):
    id_group: int
    priority: int


class OperatorIn(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    password: str | None = Field(default=None, min_length=8, max_length=256)
    groups: list[MembershipIn] = Field(default_factory=list, max_length=200)


class OperatorPatch(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    password: str | None = Field(default=None, min_length=8, max_length=256)
    groups: list[MembershipIn] | None = Field(default=None, max_length=200)


class OperatorOut(BaseModel):
    id_agent: int
    name: str
    email: str
    groups: list[MembershipOut]
    has_password: bool = Field(
        description="a password is set, for the login form (it is never returned)"
    )

    @classmethod
    def of(cls, operator: Operator) -> OperatorOut:
        return cls(
            id_agent=operator.id,
            name=operator.name,
            email=operator.email,
            groups=[
                MembershipOut(id_group=m.group_id, priority=m.priority)
                for m in operator.memberships
            ],
            has_password=operator.password_hash is not None,
        )


class SupervisorIn(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    password: str | None = Field(default=None, min_length=8, max_length=256)


class SupervisorPatch(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    password: str | None = Field(default=None, min_length=8, max_length=256)


class SupervisorOut(BaseModel):
    id_admin: int
    name: str
    email: str
    has_password: bool = Field(
        description="a password is set, for the login form (it is never returned)"
    )

    @classmethod
    def of(cls, supervisor: Supervisor) -> SupervisorOut:
        return cls(
            id_admin=supervisor.id,
            name=supervisor.name,
            email=supervisor.email,
            has_password=supervisor.password_hash is not None,
        )


class GroupIn(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    settings: GroupSettings = Field(default_factory=dict)


class GroupPatch(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    settings: GroupSettings | None = None


class GroupOut(BaseModel):
    id_group: int
    name: str
    settings: GroupSettings

    @classmethod
    def of(cls, group: Group) -> GroupOut:
        return cls(id_group=group.id, name=group.name, settings=group.settings)


class NumberIn(StrictIn):
    e164: str = Field(min_length=1, max_length=32, examples=["33170200200"])
    id_group: int = Field(ge=1, le=MAX_ID)
    label: str = Field(default="", max_length=200)
    ivr: IvrScriptJson = Field(
        default=None, description="an IVR script callers go through first (see the docs)"
    )


class NumberPatch(StrictIn):
    id_group: int | None = Field(default=None, ge=1, le=MAX_ID)
    label: str | None = Field(default=None, max_length=200)
    ivr: IvrScriptJson = Field(default=None, description="null removes the IVR")


class NumberOut(BaseModel):
    e164: str
    id_group: int
    label: str
    ivr: IvrScriptJson

    @classmethod
    def of(cls, number: Number) -> NumberOut:
        return cls(e164=number.e164, id_group=number.group_id, label=number.label, ivr=number.ivr)


class AccountPatch(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    crm_url: str | None = Field(
        default=None, max_length=2000, description="empty string or null removes it"
    )
    allowed_origins: list[str] | None = Field(default=None, max_length=50)
    settings: AccountSettings | None = None
    password: str | None = Field(
        default=None, min_length=8, max_length=256, description="new API password"
    )


class AccountOut(BaseModel):
    login: str
    name: str
    crm_url: str | None
    allowed_origins: list[str]
    settings: AccountSettings

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            login=account.login,
            name=account.name,
            crm_url=account.crm_url,
            allowed_origins=list(account.allowed_origins),
            settings=account.settings,
        )


class SipDeviceIn(StrictIn):
    """An operator's SIP phone: it registers with ``username``/``password``, or is rung at a
    static ``contact``; the password is kept only as digest HA1 for the platform's realm."""

    username: str = Field(min_length=3, max_length=64, examples=["ana"])
    password: str | None = Field(default=None, min_length=8, max_length=256)
    contact: str | None = Field(
        default=None,
        max_length=512,
        examples=["sip:ana@192.0.2.10:5060", "sips:ana@192.0.2.10:5061"],
        description="a static contact (the phone does not register); `sips:` or "
        "`;transport=tcp|tls` to reach it over TLS or TCP",
    )
    media_encryption: Literal["required", "optional", "off"] | None = Field(
        default=None,
        description="SRTP with this phone: `required` (plain RTP refused with 488; the phone "
        "must use TLS), `optional` (SRTP when offered over TLS, else plain), `off` (plain "
        "only); omitted: unchanged (`optional` for a new phone)",
    )


class SipDeviceOut(BaseModel):
    id_agent: int
    username: str
    realm: str = Field(description="the SIP digest realm the phone authenticates in")
    contact: str | None
    has_password: bool = Field(
        description="the phone registers with a password (kept only as digest HA1)"
    )
    media_encryption: Literal["required", "optional", "off"] = Field(
        description="SRTP with this phone (see the request field)"
    )

    @classmethod
    def of(cls, device: SipDevice) -> SipDeviceOut:
        return cls(
            id_agent=device.operator_id,
            username=device.username,
            realm=device.realm,
            contact=device.contact,
            has_password=device.ha1_md5 is not None,
            media_encryption=device.media_encryption,
        )
