"""Directory use cases shared by the REST API and the CLI: accounts, operators, supervisors,
groups and numbers, each scoped to one account.

Every method validates its input before touching storage and raises a domain error when
something is wrong, so a refused request leaves the store exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from voicemgmt.domain.directory import (
    Account,
    Group,
    Membership,
    Number,
    NumberState,
    Operator,
    Supervisor,
    UserType,
    check_account_settings,
    check_email,
    check_login,
    check_memberships,
    check_name,
    check_password,
    check_settings,
    has_control_characters,
)
from voicemgmt.domain.errors import (
    DuplicateEmail,
    DuplicateGroupName,
    DuplicateLogin,
    GroupInUse,
    InvalidInput,
    NoSuchAccount,
    NoSuchGroup,
    NoSuchNumber,
    NoSuchOperator,
    NoSuchSupervisor,
    NumberAlreadyRouted,
)
from voicemgmt.domain.ivr import parse_ivr
from voicemgmt.domain.origins import normalize_crm_url, normalize_origin
from voicemgmt.domain.phone import normalize_e164
from voicemgmt.domain.routing.model import GroupPolicy
from voicemgmt.services.ports import Clock, PasswordHasher, UnitOfWork, UnitOfWorkFactory


class Unchanged(Enum):
    """Marks an optional update argument that was not given (``None`` means remove)."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


log = logging.getLogger(__name__)

MAX_PAGE = 1000
MAX_ORIGINS = 50


def _page(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE} and offset not negative")
    return limit, offset


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    """What changed in an account's directory, for those who keep a copy of it (the routing
    core, caches of accounts and sessions)."""

    account_id: int
    kind: str  # account, operator, supervisor, group, number
    id: int | str | None = None
    deleted: bool = False
    login: str | None = None  # the account's API login, for kind "account"


ChangeListener = Callable[[DirectoryChange], Awaitable[None]]


class DirectoryService:
    def __init__(self, uow: UnitOfWorkFactory, hasher: PasswordHasher, clock: Clock) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._listeners: list[ChangeListener] = []

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener`` after each change this service commits."""
        self._listeners.append(listener)

    async def _changed(self, change: DirectoryChange) -> None:
        for listener in self._listeners:
            try:
                await listener(change)
            except Exception:  # the change is committed; a stale copy heals itself later
                log.exception("a directory listener failed on %s", change)

    async def _hash(self, password: str | None) -> str | None:
        return None if password is None else await self._hasher.hash(check_password(password))

    # accounts

    async def create_account(self, *, login: str, name: str, password: str) -> Account:
        login, name = check_login(login), check_name(name)
        password_hash = await self._hasher.hash(check_password(password))
        async with self._uow() as uow:
            if await uow.directory.account_by_login(login) is not None:
                raise DuplicateLogin(f"an account with login {login!r} exists already")
            account = await uow.directory.add_account(
                login=login, name=name, password_hash=password_hash, now=self._clock.now()
            )
            await uow.commit()
        return account

    async def delete_account(self, account_id: int) -> None:
        """Remove an account and everything in it: people, groups, numbers, tokens."""
        async with self._uow() as uow:
            account = await uow.directory.account(account_id)
            if account is None or not await uow.directory.delete_account(account_id):
                raise NoSuchAccount("no such account")
            await uow.commit()
        await self._changed(
            DirectoryChange(account_id, "account", deleted=True, login=account.login)
        )

    async def accounts(self) -> list[Account]:
        async with self._uow() as uow:
            return await uow.directory.accounts()

    async def account_by_login(self, login: str) -> Account:
        async with self._uow() as uow:
            account = await uow.directory.account_by_login(login)
        if account is None:
            raise NoSuchAccount(f"no account with login {login!r}")
        return account

    async def account(self, account_id: int) -> Account:
        async with self._uow() as uow:
            account = await uow.directory.account(account_id)
        if account is None:
            raise NoSuchAccount("no such account")
        return account

    async def update_account(
        self,
        account_id: int,
        *,
        name: str | None = None,
        crm_url: str | None = None,
        allowed_origins: Sequence[str] | None = None,
        settings: dict[str, Any] | None = None,
        password: str | None = None,
    ) -> Account:
        """Change what is given; ``crm_url=""`` removes the CRM URL."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_name(name)
        if crm_url is not None:
            changes["crm_url"] = normalize_crm_url(crm_url) if crm_url != "" else None
        if allowed_origins is not None:
            if isinstance(allowed_origins, str) or len(allowed_origins) > MAX_ORIGINS:
                raise InvalidInput(
                    f"allowed_origins must be a list of at most {MAX_ORIGINS} origins",
                    field="allowed_origins",
                )
            changes["allowed_origins"] = tuple(
                dict.fromkeys(normalize_origin(o) for o in allowed_origins)
            )
        if settings is not None:
            changes["settings"] = check_account_settings(settings)
        if password is not None:
            changes["password_hash"] = await self._hasher.hash(check_password(password))
        async with self._uow() as uow:
            account = await uow.directory.account(account_id)
            if account is None:
                raise NoSuchAccount("no such account")
            account = replace(account, **changes)
            await uow.directory.save_account(account)
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "account", login=account.login))
        return account

    # operators

    async def _memberships(
        self, uow: UnitOfWork, account_id: int, memberships: Sequence[Membership]
    ) -> tuple[Membership, ...]:
        checked = check_memberships(list(memberships))
        for membership in checked:
            if await uow.directory.group(account_id, membership.group_id) is None:
                raise InvalidInput(
                    f"no group {membership.group_id} in this account", field="groups"
                )
        return checked

    async def operators(
        self, account_id: int, *, limit: int = 100, offset: int = 0
    ) -> list[Operator]:
        limit, offset = _page(limit, offset)
        async with self._uow() as uow:
            return await uow.directory.operators(account_id, limit=limit, offset=offset)

    async def operator(self, account_id: int, operator_id: int) -> Operator:
        async with self._uow() as uow:
            operator = await uow.directory.operator(account_id, operator_id)
        if operator is None:
            raise NoSuchOperator(f"no operator {operator_id} in this account")
        return operator

    async def operator_by_email(self, account_id: int, email: str) -> Operator | None:
        """The account's operator with this email (compared as ``normalize_email`` does)."""
        async with self._uow() as uow:
            return await uow.directory.operator_by_email(account_id, email)

    async def create_operator(
        self,
        account_id: int,
        *,
        name: str,
        email: str,
        password: str | None = None,
        memberships: Sequence[Membership] = (),
    ) -> Operator:
        name, email = check_name(name), check_email(email)
        password_hash = await self._hash(password)
        async with self._uow() as uow:
            checked = await self._memberships(uow, account_id, memberships)
            if await uow.directory.operator_by_email(account_id, email) is not None:
                raise DuplicateEmail(f"an operator with email {email!r} exists already")
            operator = await uow.directory.add_operator(
                account_id,
                name=name,
                email=email,
                password_hash=password_hash,
                memberships=checked,
                now=self._clock.now(),
            )
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "operator", operator.id))
        return operator

    async def update_operator(
        self,
        account_id: int,
        operator_id: int,
        *,
        name: str | None = None,
        email: str | None = None,
        password: str | None = None,
        memberships: Sequence[Membership] | None = None,
    ) -> Operator:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_name(name)
        if email is not None:
            changes["email"] = check_email(email)
        if password is not None:
            changes["password_hash"] = await self._hash(password)
        async with self._uow() as uow:
            operator = await uow.directory.operator(account_id, operator_id)
            if operator is None:
                raise NoSuchOperator(f"no operator {operator_id} in this account")
            if memberships is not None:
                changes["memberships"] = await self._memberships(uow, account_id, memberships)
            if "email" in changes:
                other = await uow.directory.operator_by_email(account_id, changes["email"])
                if other is not None and other.id != operator_id:
                    raise DuplicateEmail(f"an operator with email {email!r} exists already")
            operator = replace(operator, **changes)
            await uow.directory.save_operator(operator)
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "operator", operator_id))
        return operator

    async def delete_operator(self, account_id: int, operator_id: int) -> None:
        """Remove the operator and invalidate every token it holds."""
        async with self._uow() as uow:
            if not await uow.directory.delete_operator(account_id, operator_id):
                raise NoSuchOperator(f"no operator {operator_id} in this account")
            await uow.tokens.revoke_user(account_id, UserType.AGENT, operator_id)
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "operator", operator_id, deleted=True))

    # supervisors

    async def supervisors(
        self, account_id: int, *, limit: int = 100, offset: int = 0
    ) -> list[Supervisor]:
        limit, offset = _page(limit, offset)
        async with self._uow() as uow:
            return await uow.directory.supervisors(account_id, limit=limit, offset=offset)

    async def supervisor(self, account_id: int, supervisor_id: int) -> Supervisor:
        async with self._uow() as uow:
            supervisor = await uow.directory.supervisor(account_id, supervisor_id)
        if supervisor is None:
            raise NoSuchSupervisor(f"no supervisor {supervisor_id} in this account")
        return supervisor

    async def create_supervisor(
        self, account_id: int, *, name: str, email: str, password: str | None = None
    ) -> Supervisor:
        name, email = check_name(name), check_email(email)
        password_hash = await self._hash(password)
        async with self._uow() as uow:
            if await uow.directory.supervisor_by_email(account_id, email) is not None:
                raise DuplicateEmail(f"a supervisor with email {email!r} exists already")
            supervisor = await uow.directory.add_supervisor(
                account_id,
                name=name,
                email=email,
                password_hash=password_hash,
                now=self._clock.now(),
            )
            await uow.commit()
        return supervisor

    async def update_supervisor(
        self,
        account_id: int,
        supervisor_id: int,
        *,
        name: str | None = None,
        email: str | None = None,
        password: str | None = None,
    ) -> Supervisor:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_name(name)
        if email is not None:
            changes["email"] = check_email(email)
        if password is not None:
            changes["password_hash"] = await self._hash(password)
        async with self._uow() as uow:
            supervisor = await uow.directory.supervisor(account_id, supervisor_id)
            if supervisor is None:
                raise NoSuchSupervisor(f"no supervisor {supervisor_id} in this account")
            if "email" in changes:
                other = await uow.directory.supervisor_by_email(account_id, changes["email"])
                if other is not None and other.id != supervisor_id:
                    raise DuplicateEmail(f"a supervisor with email {email!r} exists already")
            supervisor = replace(supervisor, **changes)
            await uow.directory.save_supervisor(supervisor)
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "supervisor", supervisor_id))
        return supervisor

    async def delete_supervisor(self, account_id: int, supervisor_id: int) -> None:
        async with self._uow() as uow:
            if not await uow.directory.delete_supervisor(account_id, supervisor_id):
                raise NoSuchSupervisor(f"no supervisor {supervisor_id} in this account")
            await uow.tokens.revoke_user(account_id, UserType.ADMIN, supervisor_id)
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "supervisor", supervisor_id, deleted=True))

    # groups

    async def groups(self, account_id: int, *, limit: int = 100, offset: int = 0) -> list[Group]:
        limit, offset = _page(limit, offset)
        async with self._uow() as uow:
            return await uow.directory.groups(account_id, limit=limit, offset=offset)

    async def group(self, account_id: int, group_id: int) -> Group:
        async with self._uow() as uow:
            group = await uow.directory.group(account_id, group_id)
        if group is None:
            raise NoSuchGroup(f"no group {group_id} in this account")
        return group

    async def create_group(
        self, account_id: int, *, name: str, settings: dict[str, Any] | None = None
    ) -> Group:
        name = check_name(name)
        checked = _group_settings(settings if settings is not None else {})
        async with self._uow() as uow:
            if await uow.directory.group_by_name(account_id, name) is not None:
                raise DuplicateGroupName(f"a group named {name!r} exists already")
            group = await uow.directory.add_group(
                account_id, name=name, settings=checked, now=self._clock.now()
            )
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "group", group.id))
        return group

    async def update_group(
        self,
        account_id: int,
        group_id: int,
        *,
        name: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Group:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_name(name)
        if settings is not None:
            changes["settings"] = _group_settings(settings)
        async with self._uow() as uow:
            group = await uow.directory.group(account_id, group_id)
            if group is None:
                raise NoSuchGroup(f"no group {group_id} in this account")
            if "name" in changes:
                other = await uow.directory.group_by_name(account_id, changes["name"])
                if other is not None and other.id != group_id:
                    raise DuplicateGroupName(f"a group named {name!r} exists already")
            group = replace(group, **changes)
            await uow.directory.save_group(group)
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "group", group_id))
        return group

    async def delete_group(self, account_id: int, group_id: int) -> None:
        async with self._uow() as uow:
            if await uow.directory.group(account_id, group_id) is None:
                raise NoSuchGroup(f"no group {group_id} in this account")
            routed = await uow.directory.numbers_of_group(account_id, group_id)
            numbers = await uow.directory.numbers(account_id, limit=100_000, offset=0)
            routed += [
                n
                for n in numbers
                if n.ivr is not None and n not in routed and group_id in _ivr_groups(n.ivr)
            ]
            if routed:
                raise GroupInUse(
                    f"group {group_id} still receives calls of "
                    + ", ".join(n.e164 for n in routed[:5])
                    + "; route those numbers elsewhere first",
                    numbers=[n.e164 for n in routed],
                )
            await uow.directory.delete_group(account_id, group_id)
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "group", group_id, deleted=True))

    # numbers

    async def numbers(self, account_id: int, *, limit: int = 100, offset: int = 0) -> list[Number]:
        limit, offset = _page(limit, offset)
        async with self._uow() as uow:
            return await uow.directory.numbers(account_id, limit=limit, offset=offset)

    async def number(self, account_id: int, e164: str) -> Number:
        digits = normalize_e164(e164)
        async with self._uow() as uow:
            number = await uow.directory.number(digits)
        if number is None or number.account_id != account_id:
            raise NoSuchNumber(f"no number {digits} in this account")
        return number

    async def number_in_service(self, e164: str) -> bool:
        """Whether any account already has this number (numbers are platform-wide)."""
        digits = normalize_e164(e164)
        async with self._uow() as uow:
            return await uow.directory.number(digits) is not None

    async def create_number(
        self,
        account_id: int,
        *,
        e164: str,
        group_id: int,
        label: str = "",
        ivr: dict[str, Any] | None = None,
        state: NumberState | str = NumberState.ACTIVE,
        record: bool = False,
    ) -> Number:
        digits = normalize_e164(e164)
        state = _number_state(state)
        record = _record_flag(record)
        label = _label(label)
        async with self._uow() as uow:
            if await uow.directory.group(account_id, group_id) is None:
                raise InvalidInput(f"no group {group_id} in this account", field="group")
            if ivr is not None:
                await _check_ivr(uow, account_id, ivr)
            if await uow.directory.number(digits) is not None:
                raise NumberAlreadyRouted(f"number {digits} is already in service")
            number = Number(digits, account_id, group_id, label, ivr, state, record)
            await uow.directory.add_number(number, now=self._clock.now())
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "number", digits))
        return number

    async def update_number(
        self,
        account_id: int,
        e164: str,
        *,
        group_id: int | None = None,
        label: str | None = None,
        ivr: dict[str, Any] | Unchanged | None = UNCHANGED,
        state: NumberState | str | None = None,
        record: bool | None = None,
    ) -> Number:
        """Change what is given; ``ivr=None`` removes the number's IVR.

        A number made ``suspended`` takes no new call from then on (calls already in progress
        go on); ``record`` is only stored (see ``Number.record``).
        """
        digits = normalize_e164(e164)
        new_state = None if state is None else _number_state(state)
        if record is not None:
            record = _record_flag(record)
        async with self._uow() as uow:
            number = await uow.directory.number(digits)
            if number is None or number.account_id != account_id:
                raise NoSuchNumber(f"no number {digits} in this account")
            if group_id is not None:
                if await uow.directory.group(account_id, group_id) is None:
                    raise InvalidInput(f"no group {group_id} in this account", field="group")
                number = replace(number, group_id=group_id)
            if label is not None:
                number = replace(number, label=_label(label))
            if not isinstance(ivr, Unchanged):
                if ivr is not None:
                    await _check_ivr(uow, account_id, ivr)
                number = replace(number, ivr=ivr)
            if new_state is not None:
                number = replace(number, state=new_state)
            if record is not None:
                number = replace(number, record=record)
            await uow.directory.save_number(number)
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "number", digits))
        return number

    async def delete_number(self, account_id: int, e164: str) -> None:
        digits = normalize_e164(e164)
        async with self._uow() as uow:
            if not await uow.directory.delete_number(account_id, digits):
                raise NoSuchNumber(f"no number {digits} in this account")
            await uow.commit()
        await self._changed(DirectoryChange(account_id, "number", digits, deleted=True))


def _number_state(state: object) -> NumberState:
    try:
        return NumberState(str(state))
    except ValueError:
        choices = ", ".join(s.value for s in NumberState)
        raise InvalidInput(f"state must be one of {choices}", field="state") from None


def _record_flag(record: object) -> bool:
    if not isinstance(record, bool):
        raise InvalidInput("record must be true or false", field="record")
    return record


async def _check_ivr(uow: UnitOfWork, account_id: int, raw: dict[str, Any]) -> None:
    """A valid script whose every group belongs to the account."""
    script = parse_ivr(raw)
    for group_id in sorted(script.group_ids):
        if await uow.directory.group(account_id, group_id) is None:
            raise InvalidInput(
                f"the IVR sends callers to group {group_id}, which is not in this account",
                field="ivr",
            )


def _ivr_groups(raw: dict[str, Any]) -> frozenset[int]:
    try:
        return parse_ivr(raw).group_ids
    except InvalidInput:
        return frozenset()


def _label(label: object) -> str:
    if not isinstance(label, str) or len(label) > 200 or has_control_characters(label):
        raise InvalidInput("label must be at most 200 printable characters", field="label")
    return label.strip()


def _group_settings(settings: object) -> dict[str, Any]:
    """A group's settings; its own CRM URL (screen-pop, SPEC §3) is checked like the
    account's."""
    checked = check_settings(settings)
    if "crm_url" in checked and checked["crm_url"] is not None:
        checked["crm_url"] = normalize_crm_url(checked["crm_url"])
    GroupPolicy.from_settings(0, checked)  # routing settings the core can route with
    return checked
