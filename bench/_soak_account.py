"""The soak's account: made once before the load, the way an administrator would.

Only the account itself is made in-process (there is no API to create one); its groups,
operators, supervisors and numbers (some with an IVR menu) go through the admin API with the
account's Basic credentials, and every user gets a session token from ``POST /vm/token``.
(``bench/`` is a folder of scripts: ``soak.py`` imports this as ``_soak_account``.)
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acd_end_to_end import basic
from voicemgmt.bootstrap import build
from voicemgmt.config import Settings

PASSWORD = "soak-api-password"
GROUP_NAMES = ("Sales", "Support", "Billing", "Technical", "Back office")
STRATEGIES = ("longest_idle", "round_robin", "fewest_calls")
RING_TIMEOUT = 6  # seconds an ignored offer rings before it goes to someone else
MENU_TIMEOUT = 2  # seconds the IVR menu waits for a key, twice, before the number's group
HANGUP_KEY = "9"  # the menu's "goodbye": the call ends in the IVR (outcome missed)
SETUP_CONCURRENCY = 16

# One request of the set-up: (method, path, headers, body) → the JSON answer; raises if refused.
Request = Callable[[str, str, bytes, Any], Awaitable[Any]]


@dataclass
class Account:
    """What the load needs to know of the account it made."""

    login: str
    headers: bytes  # Basic authorization and JSON content type, for raw HTTP requests
    group_ids: list[int] = field(default_factory=list)
    operator_ids: list[int] = field(default_factory=list)
    supervisor_ids: list[int] = field(default_factory=list)
    numbers: dict[str, bool] = field(default_factory=dict)  # e164 → has the IVR menu
    operator_tokens: dict[int, str] = field(default_factory=dict)
    supervisor_tokens: list[str] = field(default_factory=list)


async def create_account(data_dir: Path, database_url: str) -> Account:
    """The account, in the database the server will use; a fresh login, so that a database
    already holding other accounts (a PostgreSQL URL given with ``--database``) is fine."""
    login = f"soak-{secrets.token_hex(4)}"
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        argon2_time_cost=1,
        argon2_memory_kib=8 * 1024,
        argon2_parallelism=1,
        log_level="warning",
    )
    container = build(settings)
    try:
        await container.start()
        await container.directory.create_account(login=login, name="Soak", password=PASSWORD)
    finally:
        await container.close()
    return Account(login, basic(login, PASSWORD))


def ivr_menu(group_ids: list[int], home: int) -> dict[str, Any]:
    """A menu: 1 and 2 pick a group, 3 asks an order number (then Billing), 9 says goodbye;
    no key or a wrong one, twice, routes to the number's own group."""
    billing = group_ids[2 % len(group_ids)]
    return {
        "start": "menu",
        "steps": {
            "menu": {
                "type": "menu",
                "prompt": {"text": "Sales 1, support 2, an order 3, goodbye 9."},
                "options": {
                    "1": {"group": group_ids[0]},
                    "2": {"group": group_ids[1 % len(group_ids)]},
                    "3": {"step": "order"},
                    HANGUP_KEY: {"hangup": True},
                },
                "timeout": MENU_TIMEOUT,
                "attempts": 2,
                "on_failure": {"group": home},
            },
            "order": {
                "type": "collect",
                "prompt": {"text": "Your order number, then hash."},
                "variable": "order_number",
                "min_length": 4,
                "max_length": 8,
                "timeout": MENU_TIMEOUT,
                "retries": 0,
                "next": {"group": billing},
                "on_failure": {"group": billing},
            },
        },
    }


async def provision(
    account: Account, request: Request, *, operators: int, groups: int, supervisors: int
) -> None:
    """Groups, operators (tier 1 in one group, tier 2 in the next), supervisors, two numbers
    per group (the first with the IVR menu), and a session token for every user."""
    auth = account.headers
    slots = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def limited(method: str, path: str, body: Any = None, headers: bytes = auth) -> Any:
        async with slots:
            return await request(method, path, headers, body)

    for g in range(groups):
        settings = {
            "strategy": STRATEGIES[g % len(STRATEGIES)],
            "wrap_up": 1 + g % 2,
            "ring_timeout": RING_TIMEOUT,
            "max_no_answer": 3,
        }
        name = GROUP_NAMES[g] if g < len(GROUP_NAMES) else f"Group {g + 1}"
        made = await limited("POST", "/api/v1/groups", {"name": name, "settings": settings})
        account.group_ids.append(made["id_group"])
    ids = account.group_ids

    async def operator(n: int) -> int:
        home = n % groups
        memberships = [{"id_group": ids[home], "priority": 1}]
        if groups > 1:
            memberships.append({"id_group": ids[(home + 1) % groups], "priority": 2})
        body = {"name": f"Operator {n + 1}", "email": f"op{n + 1}@soak.example"}
        made = await limited("POST", "/api/v1/operators", {**body, "groups": memberships})
        return int(made["id_agent"])

    account.operator_ids = list(await asyncio.gather(*(operator(n) for n in range(operators))))
    for n in range(supervisors):
        body = {"name": f"Supervisor {n + 1}", "email": f"sup{n + 1}@soak.example"}
        made = await limited("POST", "/api/v1/supervisors", body)
        account.supervisor_ids.append(int(made["id_admin"]))
    for g, id_group in enumerate(ids):
        for k in range(2):
            e164 = f"3317030{g:02d}{k:02d}"
            line: dict[str, Any] = {
                "e164": e164,
                "id_group": id_group,
                "label": f"Line {g + 1}.{k + 1}",
            }
            if k == 0:
                line["ivr"] = ivr_menu(ids, id_group)
            await limited("POST", "/api/v1/numbers", line)
            account.numbers[e164] = k == 0

    async def operator_token(id_agent: int) -> None:
        got = await limited("POST", "/vm/token", {"id_agent": id_agent})
        account.operator_tokens[id_agent] = str(got["token"])

    await asyncio.gather(*(operator_token(i) for i in account.operator_ids))
    for id_admin in account.supervisor_ids:
        got = await limited("POST", "/vm/token", {"id_admin": id_admin})
        account.supervisor_tokens.append(str(got["token"]))
