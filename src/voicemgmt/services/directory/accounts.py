"""Directory use cases: accounts (create, read, update, delete)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from voicemgmt.domain.directory import (
    Account,
    check_account_settings,
    check_login,
    check_name,
    check_password,
)
from voicemgmt.domain.errors import DuplicateLogin, InvalidInput, NoSuchAccount
from voicemgmt.domain.origins import normalize_crm_url, normalize_origin
from voicemgmt.services.directory.base import DirectoryBase, DirectoryChange

MAX_ORIGINS = 50


class AccountUseCases(DirectoryBase):
    """Accounts: their login, name, password, CRM URL, allowed origins and settings."""

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
