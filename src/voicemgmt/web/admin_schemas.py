"""Request and response bodies of the admin REST API (``/api/v1``).

Inputs are strict (no "12" for 12, no unknown fields) so that a typo is an error, not a
silently ignored field.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from voicemgmt.domain.directory import Account, Group, Number, Operator, Supervisor
from voicemgmt.domain.sip import SipDevice

T = TypeVar("T")
MAX_ID = 2**31 - 1


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
    has_password: bool

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
    has_password: bool

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
    settings: dict[str, Any] = Field(default_factory=dict)


class GroupPatch(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    settings: dict[str, Any] | None = None


class GroupOut(BaseModel):
    id_group: int
    name: str
    settings: dict[str, Any]

    @classmethod
    def of(cls, group: Group) -> GroupOut:
        return cls(id_group=group.id, name=group.name, settings=group.settings)


class NumberIn(StrictIn):
    e164: str = Field(min_length=1, max_length=32, examples=["33170200200"])
    id_group: int = Field(ge=1, le=MAX_ID)
    label: str = Field(default="", max_length=200)
    ivr: dict[str, Any] | None = Field(
        default=None, description="an IVR script callers go through first (see the docs)"
    )


class NumberPatch(StrictIn):
    id_group: int | None = Field(default=None, ge=1, le=MAX_ID)
    label: str | None = Field(default=None, max_length=200)
    ivr: dict[str, Any] | None = Field(default=None, description="null removes the IVR")


class NumberOut(BaseModel):
    e164: str
    id_group: int
    label: str
    ivr: dict[str, Any] | None

    @classmethod
    def of(cls, number: Number) -> NumberOut:
        return cls(e164=number.e164, id_group=number.group_id, label=number.label, ivr=number.ivr)


class AccountPatch(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    crm_url: str | None = Field(
        default=None, max_length=2000, description="empty string or null removes it"
    )
    allowed_origins: list[str] | None = Field(default=None, max_length=50)
    settings: dict[str, Any] | None = None
    password: str | None = Field(
        default=None, min_length=8, max_length=256, description="new API password"
    )


class AccountOut(BaseModel):
    login: str
    name: str
    crm_url: str | None
    allowed_origins: list[str]
    settings: dict[str, Any]

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
    contact: str | None = Field(default=None, max_length=512, examples=["sip:ana@192.0.2.10:5060"])


class SipDeviceOut(BaseModel):
    id_agent: int
    username: str
    realm: str
    contact: str | None
    has_password: bool

    @classmethod
    def of(cls, device: SipDevice) -> SipDeviceOut:
        return cls(
            id_agent=device.operator_id,
            username=device.username,
            realm=device.realm,
            contact=device.contact,
            has_password=device.ha1_md5 is not None,
        )
