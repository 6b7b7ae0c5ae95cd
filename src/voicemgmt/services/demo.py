"""The demo account ``make run`` seeds once, so that a newcomer has someone to log in as."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicemgmt.domain.directory import Membership, UserType
from voicemgmt.domain.errors import Conflict, NoSuchAccount, NumberAlreadyRouted
from voicemgmt.services.directory import DirectoryService
from voicemgmt.services.tokens import TokenRequest

if TYPE_CHECKING:
    from voicemgmt.bootstrap import Container

DEMO_LOGIN = "demo"
DEMO_NUMBER = "33170200200"
CREDENTIALS_FILE = "demo-credentials.json"
DEMO_ORIGINS = (
    "http://127.0.0.1:8000",
    "http://localhost:8000",
    "http://127.0.0.1:8001",
    "http://localhost:8001",
)
# Who calls the demo number (the example CRM has their files), with an order number to key.
DEMO_CALLERS = (
    ("33612345678", "1042"),
    ("33611223344", "2231"),
    ("33699887766", "3307"),
    ("14155550123", "4410"),
    ("33677001122", ""),  # someone the CRM does not know yet
)


def demo_ivr(group_id: int) -> dict[str, Any]:
    """A greeting, then the caller's order number (optional), then the group's queue."""
    return {
        "start": "welcome",
        "steps": {
            "welcome": {
                "type": "play",
                "prompt": {"text": "Welcome to Demo Company."},
                "next": {"step": "order"},
            },
            "order": {
                "type": "collect",
                "prompt": {"text": "Key your order number, then hash, or just wait."},
                "variable": "order_number",
                "min_length": 4,
                "max_length": 8,
                "timeout": 4,
                "retries": 0,
                "next": {"group": group_id},
                "on_failure": {"group": group_id},
            },
        },
    }


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


def credentials_path(data_dir: Path, database_url: str) -> Path:
    """Where one database's demo passwords are kept; the default database's has a fixed name."""
    if not database_url:
        return data_dir / CREDENTIALS_FILE
    key = hashlib.sha256(database_url.encode()).hexdigest()[:12]
    return data_dir / f"demo-credentials-{key}.json"


async def seed_demo(
    directory: DirectoryService, path: Path, base_url: str = "http://127.0.0.1:8000"
) -> DemoCredentials:
    """Create the demo account unless it exists; either way return its credentials.

    Passwords are random and only their argon2 hashes are stored, so they are also kept in
    ``path`` (mode 0600) to be shown again at the next start. Seeding is all or nothing: if a
    step fails, the half-made account is removed.
    """
    try:
        await directory.account_by_login(DEMO_LOGIN)
    except NoSuchAccount:
        pass
    else:
        saved = await asyncio.to_thread(load_credentials, path)
        if saved is not None:
            return saved
        raise Conflict(
            f"the demo account exists but {path} is gone; reset its API password with "
            "'voicemgmt account set --account demo --password ...'"
        )
    if await directory.number_in_service(DEMO_NUMBER):
        raise NumberAlreadyRouted(f"the demo number {DEMO_NUMBER} belongs to another account")
    api_password = secrets.token_urlsafe(12)
    account = await directory.create_account(
        login=DEMO_LOGIN, name="Demo Company", password=api_password
    )
    try:
        credentials = await _fill(directory, account.id, api_password, base_url)
        await asyncio.to_thread(_save, path, credentials)
    except BaseException:
        await directory.delete_account(account.id)
        raise
    return DemoCredentials(**{**asdict(credentials), "created": True})


async def _fill(
    directory: DirectoryService, account_id: int, api_password: str, base_url: str
) -> DemoCredentials:
    await directory.update_account(
        account_id,
        # the product's own example CRM, and the same page served from another origin
        allowed_origins=[*DEMO_ORIGINS, base_url],
        crm_url=f"{base_url}/example/index.htm",
        settings={"caller_id": DEMO_NUMBER, "screen_pop": "answer"},
    )
    group = await directory.create_group(account_id, name="Customer service")
    operator_password = secrets.token_urlsafe(9)
    operator = await directory.create_operator(
        account_id,
        name="Ana Operator",
        email="ana@demo.example",
        password=operator_password,
        memberships=[Membership(group.id, 1)],
    )
    supervisor_password = secrets.token_urlsafe(9)
    supervisor = await directory.create_supervisor(
        account_id, name="Sam Supervisor", email="sam@demo.example", password=supervisor_password
    )
    number = await directory.create_number(
        account_id, e164=DEMO_NUMBER, group_id=group.id, label="Demo hotline"
    )
    await directory.update_number(account_id, number.e164, ivr=demo_ivr(group.id))
    return DemoCredentials(
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


def load_credentials(path: Path) -> DemoCredentials | None:
    return DemoCredentials(**json.loads(path.read_text())) if path.exists() else None


def _save(path: Path, credentials: DemoCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(credentials), file, indent=2)


async def demo_token(
    container: Container, credentials: DemoCredentials, user_type: UserType = UserType.AGENT
) -> str:
    """The demo operator's (or supervisor's) session token, the same one while it lives."""
    account = await container.directory.account_by_login(credentials.api_login)
    user_id = credentials.id_agent if user_type is UserType.AGENT else credentials.id_admin
    request = TokenRequest(user_type, user_id=user_id, keep=True)
    return (await container.tokens.issue(account, request)).token
