"""The demo account ``make run`` seeds once, so that a newcomer has someone to log in as."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from voicemgmt.domain.directory import Membership
from voicemgmt.domain.errors import NoSuchAccount
from voicemgmt.services.directory import DirectoryService

DEMO_LOGIN = "demo"
DEMO_NUMBER = "33170200200"
CREDENTIALS_FILE = "demo-credentials.json"


@dataclass(frozen=True)
class DemoCredentials:
    api_login: str
    api_password: str
    id_agent: int
    operator_email: str
    operator_password: str
    id_admin: int
    supervisor_email: str
    supervisor_password: str
    id_group: int
    number: str
    created: bool = False


async def seed_demo(directory: DirectoryService, data_dir: Path) -> DemoCredentials:
    """Create the demo account unless it exists; either way return its credentials.

    Passwords are random and only their argon2 hashes are stored, so they are also kept in
    ``<data_dir>/demo-credentials.json`` (mode 0600) to be shown again at the next start.
    """
    path = data_dir / CREDENTIALS_FILE
    try:
        await directory.account_by_login(DEMO_LOGIN)
    except NoSuchAccount:
        pass
    else:
        saved = await asyncio.to_thread(_load, path)
        if saved is not None:
            return saved
        raise RuntimeError(
            f"the demo account exists but {path} is gone; reset its API password with "
            "'voicemgmt account set --account demo --password ...'"
        )
    account = await directory.create_account(
        login=DEMO_LOGIN, name="Demo Company", password=secrets.token_urlsafe(12)
    )
    api_password = secrets.token_urlsafe(12)
    await directory.update_account(
        account.id,
        password=api_password,
        allowed_origins=["http://127.0.0.1:8000", "http://localhost:8000"],
    )
    group = await directory.create_group(account.id, name="Customer service")
    operator_password = secrets.token_urlsafe(9)
    operator = await directory.create_operator(
        account.id,
        name="Ana Operator",
        email="ana@demo.example",
        password=operator_password,
        memberships=[Membership(group.id, 1)],
    )
    supervisor_password = secrets.token_urlsafe(9)
    supervisor = await directory.create_supervisor(
        account.id, name="Sam Supervisor", email="sam@demo.example", password=supervisor_password
    )
    number = await directory.create_number(
        account.id, e164=DEMO_NUMBER, group_id=group.id, label="Demo hotline"
    )
    credentials = DemoCredentials(
        api_login=DEMO_LOGIN,
        api_password=api_password,
        id_agent=operator.id,
        operator_email=operator.email,
        operator_password=operator_password,
        id_admin=supervisor.id,
        supervisor_email=supervisor.email,
        supervisor_password=supervisor_password,
        id_group=group.id,
        number=number.e164,
    )
    await asyncio.to_thread(_save, path, credentials)
    return DemoCredentials(**{**asdict(credentials), "created": True})


def _load(path: Path) -> DemoCredentials | None:
    return DemoCredentials(**json.loads(path.read_text())) if path.exists() else None


def _save(path: Path, credentials: DemoCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(credentials), file, indent=2)
