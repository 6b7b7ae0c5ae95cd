"""Directory use cases: an account's people, operators (with their groups) and supervisors.

Deleting a person revokes every session token they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from voicemgmt.domain.directory import (
    Membership,
    Operator,
    Supervisor,
    UserType,
    check_email,
    check_memberships,
    check_name,
)
from voicemgmt.domain.errors import DuplicateEmail, InvalidInput, NoSuchOperator, NoSuchSupervisor
from voicemgmt.services.directory.base import DirectoryBase, DirectoryChange, page
from voicemgmt.services.ports import UnitOfWork


class PeopleUseCases(DirectoryBase):
    """Operators and supervisors of one account."""

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
        limit, offset = page(limit, offset)
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
        limit, offset = page(limit, offset)
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
