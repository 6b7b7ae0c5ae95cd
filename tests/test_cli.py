"""The ``voicemgmt`` console script, run for real in a subprocess, read as its specification.

Human tables by default, ``--json`` for scripts; every command honours ``--database`` and
``VM_DATABASE_URL``; wrong input gives one line on stderr and exit code 2, never a traceback,
and leaves the database as it was.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import SeededAccount, free_port, make_settings, run_on, seed_account
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings
from voicemgmt.domain.directory import Account, Group, Membership, Number, Operator, Supervisor
from voicemgmt.services.demo import DemoCredentials, credentials_path, seed_demo

VOICEMGMT = Path(sys.executable).with_name("voicemgmt")
UNREACHABLE_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/voicemgmt"

Result = subprocess.CompletedProcess[str]


# running the console script


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any VM_* setting, plus a data dir and cheap argon2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VM_") and k != "FORCE_COLOR"}
    env.update(
        VM_DATA_DIR=str(data_dir),
        VM_ARGON2_TIME_COST="1",
        VM_ARGON2_MEMORY_KIB="8192",
        VM_ARGON2_PARALLELISM="1",
    )
    env.update(extra)
    return env


def voicemgmt(*args: str, env: dict[str, str], timeout: float = 60) -> Result:
    return subprocess.run(
        [str(VOICEMGMT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def voicemgmt_all(commands: Sequence[Sequence[str]], env: dict[str, str]) -> list[Result]:
    """Run read-only commands side by side (each start costs a second of imports)."""
    processes: list[subprocess.Popen[str]] = []
    try:
        for args in commands:
            processes.append(
                subprocess.Popen(
                    [str(VOICEMGMT), *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        results = []
        for process in processes:
            out, err = process.communicate(timeout=60)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def ok_json(result: Result) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


def assert_one_line_error(result: Result) -> None:
    """Exit code 2, exactly one ``error: ...`` line on stderr, nothing on stdout."""
    assert_no_traceback(result)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""


# looking into the database


DirectoryState = list[tuple[Account, list[Group], list[Operator], list[Supervisor], list[Number]]]


def directory_state(settings: Settings) -> DirectoryState:
    """Everything the directory holds, to compare before and after a refused command."""

    async def job(container: Container) -> DirectoryState:
        directory = container.directory
        state: DirectoryState = []
        for account in await directory.accounts():
            state.append(
                (
                    account,
                    await directory.groups(account.id, limit=1000),
                    await directory.operators(account.id, limit=1000),
                    await directory.supervisors(account.id, limit=1000),
                    await directory.numbers(account.id, limit=1000),
                )
            )
        return state

    return run_on(settings, job)


def account_logins(settings: Settings) -> list[str]:
    async def job(container: Container) -> list[Account]:
        return await container.directory.accounts()

    return [account.login for account in run_on(settings, job)]


def authenticates(settings: Settings, login: str, password: str) -> Account:
    async def job(container: Container) -> Account:
        return await container.authenticator.authenticate(login, password, client="test")

    return run_on(settings, job)


def seed(settings: Settings, login: str = "acme", number: str = "33170200200") -> SeededAccount:
    async def job(container: Container) -> SeededAccount:
        return await seed_account(container, login, number)

    return run_on(settings, job)


@dataclass(frozen=True)
class Seeded:
    """A database (SQLite or PostgreSQL) holding the ``acme`` account of ``seed_account``."""

    settings: Settings
    url: str
    env: dict[str, str]
    acme: SeededAccount


@pytest.fixture
def on_both(tmp_path: Path, database_url: str) -> Seeded:
    settings = make_settings(tmp_path, database_url)
    return Seeded(settings, database_url, cli_env(tmp_path), seed(settings))


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Seeded:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vm.db'}"
    settings = make_settings(tmp_path, url)
    return Seeded(settings, url, cli_env(tmp_path), seed(settings))


# the issue's scenario


def test_the_issue_commands_create_and_list_the_directory_as_json(
    tmp_path: Path, database_url: str
) -> None:
    env = cli_env(tmp_path)
    db = ("--database", database_url)

    account = ok_json(
        voicemgmt(
            "account", "create", "--name", "Acme Ltd", "--login", "acme",
            "--password", "acme-api-password", "--json", *db, env=env,
        )
    )  # fmt: skip
    assert account == {
        "login": "acme",
        "name": "Acme Ltd",
        "crm_url": None,
        "allowed_origins": [],
        "screen_pop": "presentation",
    }

    support = ok_json(
        voicemgmt(
            "group", "create", "--account", "acme", "--name", "Support", "--json", *db, env=env
        )
    )
    sales = ok_json(
        voicemgmt("group", "create", "--account", "acme", "--name", "Sales", "--json", *db, env=env)
    )
    assert isinstance(support["id_group"], int)
    assert isinstance(sales["id_group"], int)
    assert support["id_group"] != sales["id_group"]
    assert support["name"] == "Support"
    assert sales["name"] == "Sales"
    support_id, sales_id = support["id_group"], sales["id_group"]

    operator = ok_json(
        voicemgmt(
            "operator", "create", "--account", "acme", "--name", "Ana Operator",
            "--email", "ana@acme.example", "--password", "ana-password",
            "--group", str(support_id), "--group", f"{sales_id}:3", "--json", *db, env=env,
        )
    )  # fmt: skip
    assert isinstance(operator["id_agent"], int)
    assert operator == {
        "id_agent": operator["id_agent"],
        "name": "Ana Operator",
        "email": "ana@acme.example",
        "groups": [f"{support_id}:1", f"{sales_id}:3"],
    }

    admin = ok_json(
        voicemgmt(
            "admin", "create", "--account", "acme", "--name", "Sam Supervisor",
            "--email", "sam@acme.example", "--password", "sam-password", "--json", *db, env=env,
        )
    )  # fmt: skip
    assert isinstance(admin["id_admin"], int)
    assert set(admin) == {"id_admin", "name", "email"}
    assert (admin["name"], admin["email"]) == ("Sam Supervisor", "sam@acme.example")

    number = ok_json(
        voicemgmt(
            "number", "create", "--account", "acme", "--e164", "+33 1 70 20 02 00",
            "--group", str(support_id), "--label", "Hotline", "--json", *db, env=env,
        )
    )  # fmt: skip
    assert number == {"e164": "33170200200", "id_group": support_id, "label": "Hotline"}

    listed = [
        ok_json(result)
        for result in voicemgmt_all(
            [
                ("account", "list", "--json", *db),
                ("group", "list", "--account", "acme", "--json", *db),
                ("operator", "list", "--account", "acme", "--json", *db),
                ("admin", "list", "--account", "acme", "--json", *db),
                ("number", "list", "--account", "acme", "--json", *db),
            ],
            env,
        )
    ]
    assert listed == [[account], [support, sales], [operator], [admin], [number]]

    settings = make_settings(tmp_path, database_url)
    [(stored, groups, operators, supervisors, numbers)] = directory_state(settings)
    assert (stored.login, stored.name) == ("acme", "Acme Ltd")
    assert [(g.id, g.name) for g in groups] == [(support_id, "Support"), (sales_id, "Sales")]
    [ana] = operators
    assert (ana.id, ana.name, ana.email) == (
        operator["id_agent"],
        "Ana Operator",
        operator["email"],
    )
    assert ana.memberships == (Membership(support_id, 1), Membership(sales_id, 3))
    assert ana.password_hash is not None
    [sam] = supervisors
    assert (sam.id, sam.name, sam.email) == (admin["id_admin"], admin["name"], admin["email"])
    assert numbers == [Number("33170200200", stored.id, support_id, "Hotline")]
    assert authenticates(settings, "acme", "acme-api-password").id == stored.id


# which database


def test_vm_database_url_is_used_when_database_is_absent(tmp_path: Path, database_url: str) -> None:
    seed(make_settings(tmp_path, database_url))

    result = voicemgmt(
        "account", "list", "--json", env=cli_env(tmp_path, VM_DATABASE_URL=database_url)
    )

    assert [row["login"] for row in ok_json(result)] == ["acme"]
    assert not (tmp_path / "voicemgmt.db").exists()


def test_database_option_wins_over_vm_database_url(tmp_path: Path) -> None:
    from_env = f"sqlite+aiosqlite:///{tmp_path / 'env.db'}"
    from_option = f"sqlite+aiosqlite:///{tmp_path / 'option.db'}"
    env = cli_env(tmp_path, VM_DATABASE_URL=from_env)

    created = voicemgmt(
        "account", "create", "--name", "Option Ltd", "--login", "option",
        "--password", "option-password", "--json", "--database", from_option, env=env,
    )  # fmt: skip

    assert ok_json(created)["login"] == "option"
    assert account_logins(make_settings(tmp_path, from_option)) == ["option"]
    assert account_logins(make_settings(tmp_path, from_env)) == []


# human output


def test_lists_print_a_table_with_the_values_without_json(on_sqlite: Seeded) -> None:
    acme = on_sqlite.acme

    result = voicemgmt(
        "operator", "list", "--account", "acme", "--database", on_sqlite.url, env=on_sqlite.env
    )

    assert result.returncode == 0, result.stderr
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)
    lines = result.stdout.splitlines()
    assert any(re.search(r"id_agent.+name.+email.+groups", line) for line in lines)
    ana = rf"\b{acme.id_agent}\b.+Ana.+{re.escape(acme.agent_email)}.+\b{acme.id_group}:1\b"
    bob = rf"\b{acme.other_id_agent}\b.+Bob.+bob@acme\.example.+\b{acme.id_group}:2\b"
    assert any(re.search(ana, line) for line in lines), result.stdout
    assert any(re.search(bob, line) for line in lines), result.stdout


# wrong input: one line, exit code 2, nothing changed


def test_a_duplicate_account_login_is_refused(on_both: Seeded) -> None:
    before = directory_state(on_both.settings)

    result = voicemgmt(
        "account", "create", "--name", "Other Acme", "--login", "acme",
        "--password", "other-password", "--database", on_both.url, env=on_both.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert "acme" in result.stderr
    assert directory_state(on_both.settings) == before


def test_a_number_already_in_service_is_refused(on_both: Seeded) -> None:
    before = directory_state(on_both.settings)

    result = voicemgmt(
        "number", "create", "--account", "acme", "--e164", "+33 1 70 20 02 00",
        "--group", str(on_both.acme.id_group), "--database", on_both.url, env=on_both.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert "33170200200" in result.stderr
    assert directory_state(on_both.settings) == before


def test_a_duplicate_operator_email_is_refused_whatever_its_case(on_sqlite: Seeded) -> None:
    before = directory_state(on_sqlite.settings)

    result = voicemgmt(
        "operator", "create", "--account", "acme", "--name", "Ana Again",
        "--email", "ANA@acme.example", "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert directory_state(on_sqlite.settings) == before


def test_an_unknown_account_is_refused(on_sqlite: Seeded) -> None:
    before = directory_state(on_sqlite.settings)

    result = voicemgmt(
        "group", "create", "--account", "nobody", "--name", "Sales",
        "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert "nobody" in result.stderr
    assert directory_state(on_sqlite.settings) == before


def test_an_unknown_group_id_is_refused(on_sqlite: Seeded) -> None:
    before = directory_state(on_sqlite.settings)

    result = voicemgmt(
        "operator", "create", "--account", "acme", "--name", "Carl",
        "--email", "carl@acme.example", "--group", "999",
        "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert "999" in result.stderr
    assert directory_state(on_sqlite.settings) == before


def test_a_group_option_that_is_not_id_or_id_priority_is_refused(on_sqlite: Seeded) -> None:
    before = directory_state(on_sqlite.settings)

    result = voicemgmt(
        "operator", "create", "--account", "acme", "--name", "Carl",
        "--email", "carl@acme.example", "--group", f"{on_sqlite.acme.id_group}:first",
        "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert "--group" in result.stderr
    assert directory_state(on_sqlite.settings) == before


def test_an_invalid_phone_number_is_refused(on_sqlite: Seeded) -> None:
    before = directory_state(on_sqlite.settings)

    result = voicemgmt(
        "number", "create", "--account", "acme", "--e164", "12345",
        "--group", str(on_sqlite.acme.id_group), "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert directory_state(on_sqlite.settings) == before


def test_a_password_shorter_than_eight_characters_is_refused(on_sqlite: Seeded) -> None:
    before = directory_state(on_sqlite.settings)

    result = voicemgmt(
        "account", "create", "--name", "Short Ltd", "--login", "short",
        "--password", "1234567", "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert "password" in result.stderr
    assert directory_state(on_sqlite.settings) == before


def test_a_missing_required_option_is_a_usage_error(on_sqlite: Seeded) -> None:
    before = directory_state(on_sqlite.settings)

    result = voicemgmt(
        "operator", "create", "--account", "acme", "--name", "Carl",
        "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert_no_traceback(result)
    assert result.returncode == 2
    assert "--email" in result.stderr
    assert directory_state(on_sqlite.settings) == before


def test_a_database_url_of_another_scheme_is_refused(tmp_path: Path) -> None:
    result = voicemgmt(
        "account", "list", "--database", "mysql://root@127.0.0.1/voicemgmt", env=cli_env(tmp_path)
    )

    assert_one_line_error(result)
    assert "database_url" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_postgresql_is_refused(tmp_path: Path) -> None:
    result = voicemgmt("account", "list", "--database", UNREACHABLE_POSTGRES, env=cli_env(tmp_path))

    assert_one_line_error(result)
    assert "database" in result.stderr


def test_a_database_url_with_a_non_numeric_port_is_refused(tmp_path: Path) -> None:
    result = voicemgmt(
        "account", "list", "--database", "postgresql+asyncpg://postgres@127.0.0.1:pg/voicemgmt",
        env=cli_env(tmp_path),
    )  # fmt: skip

    assert_one_line_error(result)


def test_a_too_short_secret_key_is_refused(on_sqlite: Seeded) -> None:
    env = {**on_sqlite.env, "VM_SECRET_KEY": "too-short"}

    result = voicemgmt("account", "list", "--database", on_sqlite.url, env=env)

    assert_one_line_error(result)
    assert "VM_SECRET_KEY" in result.stderr


# account set


def test_account_set_changes_allowed_origins_and_crm_url(on_sqlite: Seeded) -> None:
    result = voicemgmt(
        "account", "set", "--account", "acme",
        "--allowed-origin", "https://CRM.example.com", "--allowed-origin", "http://localhost:8080",
        "--crm-url", "https://crm.example.com/calls?number={number}",
        "--json", "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    expected_origins = ["https://crm.example.com", "http://localhost:8080"]
    shown = ok_json(result)
    assert shown["allowed_origins"] == expected_origins
    assert shown["crm_url"] == "https://crm.example.com/calls?number={number}"
    stored = directory_state(on_sqlite.settings)[0][0]
    assert stored.allowed_origins == tuple(expected_origins)
    assert stored.crm_url == "https://crm.example.com/calls?number={number}"


def test_account_set_refuses_an_origin_that_is_not_http(on_sqlite: Seeded) -> None:
    before = directory_state(on_sqlite.settings)

    result = voicemgmt(
        "account", "set", "--account", "acme", "--allowed-origin", "javascript:alert(1)",
        "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert directory_state(on_sqlite.settings) == before


def test_account_set_chooses_when_the_screen_pop_opens(on_sqlite: Seeded) -> None:
    result = voicemgmt(
        "account", "set", "--account", "acme", "--screen-pop", "answer",
        "--json", "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert ok_json(result)["screen_pop"] == "answer"
    assert directory_state(on_sqlite.settings)[0][0].settings == {"screen_pop": "answer"}


def test_account_set_refuses_an_unknown_screen_pop(on_sqlite: Seeded) -> None:
    before = directory_state(on_sqlite.settings)

    result = voicemgmt(
        "account", "set", "--account", "acme", "--screen-pop", "always",
        "--database", on_sqlite.url, env=on_sqlite.env,
    )  # fmt: skip

    assert_one_line_error(result)
    assert "screen_pop" in result.stderr
    assert directory_state(on_sqlite.settings) == before


# demo


@dataclass(frozen=True)
class DemoRun:
    data_dir: Path
    url: str
    env: dict[str, str]
    settings: Settings
    credentials: dict[str, Any]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``voicemgmt demo --json`` run once on a fresh SQLite database, shared by the demo tests."""
    data_dir = tmp_path_factory.mktemp("demo")
    url = f"sqlite+aiosqlite:///{data_dir / 'vm.db'}"
    env = cli_env(data_dir)
    credentials = ok_json(voicemgmt("demo", "--json", "--database", url, env=env))
    return DemoRun(data_dir, url, env, make_settings(data_dir, url), credentials)


def test_demo_json_gives_the_credentials_a_script_needs(demo_run: DemoRun) -> None:
    credentials = demo_run.credentials

    assert credentials["api_login"] == "demo"
    assert isinstance(credentials["api_password"], str)
    assert len(credentials["api_password"]) >= 8
    assert isinstance(credentials["id_agent"], int)
    assert isinstance(credentials["id_admin"], int)
    assert credentials["created"] is True


def test_demo_gives_a_banner_url_logged_in_as_the_demo_operator(demo_run: DemoRun) -> None:
    url = demo_run.credentials["banner_url"]
    assert url.startswith("http://127.0.0.1:8000/operateurs/index.htm?token_session=vm_")
    again = voicemgmt("demo", "--json", "--database", demo_run.url, env=demo_run.env)
    assert ok_json(again)["banner_url"] == url  # the same session while it lives


def test_demo_gives_a_supervisor_page_url_with_the_supervisors_session(demo_run: DemoRun) -> None:
    url = demo_run.credentials["supervisor_url"]
    assert url.startswith("http://127.0.0.1:8000/superviseur/index.htm?token_session=vm_")
    token = url.rsplit("=", 1)[1]
    assert token not in demo_run.credentials["banner_url"]
    shown = voicemgmt("demo", "--database", demo_run.url, env=demo_run.env)
    assert url in shown.stdout


def test_demo_credentials_file_is_readable_by_its_owner_only(demo_run: DemoRun) -> None:
    mode = credentials_path(demo_run.data_dir, demo_run.url).stat().st_mode

    assert stat.S_IMODE(mode) == 0o600


def test_demo_api_password_authenticates(demo_run: DemoRun) -> None:
    credentials = demo_run.credentials

    account = authenticates(
        demo_run.settings, credentials["api_login"], credentials["api_password"]
    )

    assert account.login == "demo"


def test_demo_seeds_once_and_shows_the_same_credentials_again(demo_run: DemoRun) -> None:
    before = directory_state(demo_run.settings)
    credentials = demo_run.credentials

    again = voicemgmt("demo", "--database", demo_run.url, env=demo_run.env)

    assert again.returncode == 0, again.stderr
    assert "already there" in again.stdout
    assert f"{credentials['api_login']} / {credentials['api_password']}" in again.stdout
    assert f"id_agent {credentials['id_agent']}" in again.stdout
    assert f"id_admin {credentials['id_admin']}" in again.stdout
    assert directory_state(demo_run.settings) == before


def test_demo_on_an_unreachable_database_gives_one_error_line(tmp_path: Path) -> None:
    result = voicemgmt("demo", "--database", UNREACHABLE_POSTGRES, env=cli_env(tmp_path))

    assert_one_line_error(result)


def test_a_refused_demo_seed_leaves_no_demo_account_behind(on_sqlite: Seeded) -> None:
    # on_sqlite's acme already routes 33170200200, the demo's number
    result = voicemgmt("demo", "--database", on_sqlite.url, env=on_sqlite.env)

    assert result.returncode == 2
    assert_no_traceback(result)
    assert account_logins(on_sqlite.settings) == ["acme"]


def test_demo_prints_credentials_that_work_on_the_database_it_is_given(tmp_path: Path) -> None:
    first = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'first.db'}")
    second = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'second.db'}")

    def seed_the_demo(settings: Settings) -> DemoCredentials:
        path = credentials_path(tmp_path, settings.database_url)

        async def job(container: Container) -> DemoCredentials:
            return await seed_demo(container.directory, path)

        return run_on(settings, job)

    seed_the_demo(first)
    seed_the_demo(second)

    result = voicemgmt("demo", "--json", "--database", first.database_url, env=cli_env(tmp_path))
    credentials = ok_json(result)

    account = authenticates(first, credentials["api_login"], credentials["api_password"])
    assert account.login == "demo"


# serve


def test_serve_answers_healthz(tmp_path: Path) -> None:
    port = free_port()
    serve_log = tmp_path / "serve.log"
    url = f"sqlite+aiosqlite:///{tmp_path / 'vm.db'}"
    command = [str(VOICEMGMT), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with serve_log.open("w") as log:
        server = subprocess.Popen(
            [*command, "--database", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cli_env(tmp_path),
        )
        try:
            answer = None
            deadline = time.monotonic() + 60  # a loaded machine starts slowly
            while answer is None and time.monotonic() < deadline:
                assert server.poll() is None, serve_log.read_text()
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                except httpx.TransportError:
                    time.sleep(0.1)
            assert answer is not None, serve_log.read_text()
            assert answer.status_code == 200
            assert answer.json() == {"status": "ok"}
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def test_serve_on_an_unreachable_database_gives_one_error_line(tmp_path: Path) -> None:
    result = voicemgmt(
        "serve", "--host", "127.0.0.1", "--port", str(free_port()),
        "--database", UNREACHABLE_POSTGRES, env=cli_env(tmp_path), timeout=30,
    )  # fmt: skip

    assert_one_line_error(result)
