"""Directory use cases: groups, and the numbers whose calls go to them (directly or through
an IVR). A group still receiving some number's calls cannot be deleted.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from voicemgmt.domain.directory import (
    Group,
    Number,
    NumberState,
    check_name,
    check_settings,
    has_control_characters,
)
from voicemgmt.domain.errors import (
    DuplicateGroupName,
    GroupInUse,
    InvalidInput,
    NoSuchGroup,
    NoSuchNumber,
    NumberAlreadyRouted,
)
from voicemgmt.domain.ivr import parse_ivr
from voicemgmt.domain.origins import normalize_crm_url
from voicemgmt.domain.phone import normalize_e164
from voicemgmt.domain.routing.model import GroupPolicy
from voicemgmt.services.directory.base import (
    UNCHANGED,
    DirectoryBase,
    DirectoryChange,
    Unchanged,
    page,
)
from voicemgmt.services.ports import UnitOfWork


class GroupUseCases(DirectoryBase):
    """Groups and numbers of one account."""

    # groups

    async def groups(self, account_id: int, *, limit: int = 100, offset: int = 0) -> list[Group]:
        limit, offset = page(limit, offset)
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
        limit, offset = page(limit, offset)
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
