"""Guide §1 (SSO): POST /vm/token and DELETE /vm/token/<token>, through a real server."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest

from tests.support import LiveServer, SeededAccount, live_server, make_settings, run_on
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings

GUIDE_HOST = "https://api.axialys.com"

# The guide's commands, verbatim but for the line its layout broke inside a header value.
GUIDE_1_1 = (
    'curl -X POST -u "<login>:<pass>" -H "Content-Type: application/json" '
    """-d '{"id_agent":<id_agent>}' https://api.axialys.com/vm/token"""
)
GUIDE_1_1_EMAIL = (
    'curl -X POST -u "<login>:<pass>" -H "Content-Type: application/json" -d \'\n'
    '{"email":<email>, "user_type":"agent"}\' https://api.axialys.com/vm/token'
)
GUIDE_1_1_KEEP = (
    'curl -X POST -u "<login>:<pass>" -H "Content-Type: application/json" -d \'{"ip":"<ip>",\n'
    '"id_agent":<id_agent>, "keep":1}\' https://api.axialys.com/vm/token'
)
# The guide prints these with typographic quotes (its "formerly" form, §1.3 and the logouts).
GUIDE_1_1_FORMERLY = (
    "curl -X POST -u “<login>:<pass>” -H “Content-Type: application/json” "
    "-d ‘{“ip”:”<ip>”,”id_agent”:<id_agent>}’ https://api.axialys.com/vm/token"  # noqa: RUF001
)
GUIDE_1_2 = (
    'curl -X DELETE -u "<login>:<pass>" -H "Content-Type: application/json" -d \''
    '{"ip":"<ip>","id_agent":<id_agent>}\' https://api.axialys.com/vm/token/<token>'
)
GUIDE_1_3 = (
    "curl -X POST -u “<login>:<pass>” -H “Content-Type: application/json” "
    "-d ‘{“ip”:”<ip>”,”id_admin”:<id_admin>}’ https://api.axialys.com/vm/token"  # noqa: RUF001
)
GUIDE_1_3_EMAIL = (
    "curl -X POST -u “<login>:<pass>” -H “Content-Type: application/json” "
    "-d ‘{“ip”:”<ip>”,”email”:<email>, “user_type”:”admin”}’ "  # noqa: RUF001
    "https://api.axialys.com/vm/token"
)
GUIDE_1_4 = (
    "curl -X DELETE -u “<login>:<pass>” -H “Content-Type: application/json” "
    "-d ‘{“ip”:”<ip>”,”id_agent”:<id_agent>}’ "  # noqa: RUF001
    "https://api.axialys.com/vm/token/<token>"
)


def straighten(command: str) -> str:
    """What an integrator's editor does when pasting the typographic-quote examples."""
    table: dict[str, str | int | None] = {"“": '"', "”": '"', "‘": "'", "’": "'"}  # noqa: RUF001
    return command.translate(str.maketrans(table))


def run_guide_command(command: str, server: LiveServer, **values: Any) -> tuple[int, Any]:
    """Fill the placeholders, point the guide's host at the test server, run it with curl."""
    command = command.replace(GUIDE_HOST, server.base_url)
    for name, value in values.items():
        command = command.replace(f"<{name}>", str(value))
    assert "<" not in command, f"unfilled placeholder in {command!r}"
    result = subprocess.run(
        ["bash", "-c", command + " --silent --show-error --write-out '\\n%{http_code}'"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body)


def me(server: LiveServer, token: str) -> httpx.Response:
    with server.client() as client:
        return client.get("/vm/me", headers={"Authorization": f"Bearer {token}"})


def token_count(settings: Settings) -> int:
    from voicemgmt.adapters.sql.repository import count_rows

    async def job(container: Container) -> int:
        return await count_rows(container.engine, "session_tokens")

    return run_on(settings, job)


# The guide, as written


def test_guide_1_1_gives_an_operator_token(server: LiveServer, acme: SeededAccount) -> None:
    status, body = run_guide_command(
        GUIDE_1_1, server, login=acme.login, **{"pass": acme.password}, id_agent=acme.id_agent
    )
    assert status == 200
    assert body["id_agent"] == acme.id_agent
    assert me(server, body["token"]).json()["id_agent"] == acme.id_agent


def test_guide_1_1_by_operator_email(server: LiveServer, acme: SeededAccount) -> None:
    status, body = run_guide_command(
        GUIDE_1_1_EMAIL,
        server,
        login=acme.login,
        **{"pass": acme.password},
        email=json.dumps(acme.agent_email),
    )
    assert status == 200
    assert body["id_agent"] == acme.id_agent


def test_guide_1_1_keep_returns_the_same_token_while_it_lives(
    server: LiveServer, acme: SeededAccount
) -> None:
    values = {"login": acme.login, "pass": acme.password, "ip": "203.0.113.7"}
    first = run_guide_command(GUIDE_1_1_KEEP, server, id_agent=acme.id_agent, **values)[1]
    second = run_guide_command(GUIDE_1_1_KEEP, server, id_agent=acme.id_agent, **values)[1]
    assert first["token"] == second["token"]
    assert second["kept"] is True
    assert second["expires_at"] >= first["expires_at"]


def test_guide_1_1_formerly_form_works_once_its_quotes_are_straight(
    server: LiveServer, acme: SeededAccount
) -> None:
    status, body = run_guide_command(
        straighten(GUIDE_1_1_FORMERLY),
        server,
        login=acme.login,
        **{"pass": acme.password},
        ip="203.0.113.7",
        id_agent=acme.id_agent,
    )
    assert status == 200
    assert body["id_agent"] == acme.id_agent


def test_guide_1_2_logout_invalidates_the_token(server: LiveServer, acme: SeededAccount) -> None:
    values = {"login": acme.login, "pass": acme.password, "id_agent": acme.id_agent}
    token = run_guide_command(GUIDE_1_1, server, **values)[1]["token"]
    status, body = run_guide_command(GUIDE_1_2, server, ip="203.0.113.7", token=token, **values)
    assert (status, body["deleted"]) == (200, True)
    assert me(server, token).status_code == 401


@pytest.mark.parametrize("command", [GUIDE_1_3, GUIDE_1_3_EMAIL], ids=["id_admin", "email"])
def test_guide_1_3_gives_a_supervisor_token(
    server: LiveServer, acme: SeededAccount, command: str
) -> None:
    status, body = run_guide_command(
        straighten(command),
        server,
        login=acme.login,
        **{"pass": acme.password},
        ip="198.51.100.4",
        id_admin=acme.id_admin,
        email=json.dumps(acme.admin_email),
    )
    assert status == 200
    assert (body["user_type"], body["id_admin"]) == ("admin", acme.id_admin)


def test_guide_1_4_supervisor_logout_as_printed_with_id_agent(
    server: LiveServer, acme: SeededAccount
) -> None:
    """§1.4 copies §1.2's body: the supervisor's id arrives under id_agent, and is accepted."""
    values = {"login": acme.login, "pass": acme.password, "ip": "198.51.100.4"}
    token = run_guide_command(straighten(GUIDE_1_3), server, id_admin=acme.id_admin, **values)[1][
        "token"
    ]
    status, _ = run_guide_command(
        straighten(GUIDE_1_4), server, id_agent=acme.id_admin, token=token, **values
    )
    assert status == 200
    assert me(server, token).status_code == 401


def test_the_guides_typographic_body_is_refused_as_not_json(
    server: LiveServer, acme: SeededAccount, settings: Settings
) -> None:
    before = token_count(settings)
    body = "{“ip”:”203.0.113.7”,”id_agent”:1}".encode()
    with server.client() as client:
        answer = client.post("/vm/token", auth=acme.auth, content=body)
    assert answer.status_code == 400
    assert answer.json()["err_code"] == "invalid_json"
    assert "typographic quotes" in answer.json()["err_msg"]
    assert token_count(settings) == before


def test_typographic_quotes_around_credentials_get_a_hint(
    server: LiveServer, acme: SeededAccount
) -> None:
    with server.client() as client:
        answer = client.post(
            "/vm/token", auth=(f"“{acme.login}", f"{acme.password}”"), json={"id_agent": 1}
        )
    assert answer.status_code == 401
    assert "typographic quotes" in answer.json()["err_msg"]


# Tokens and who holds them


def test_tokens_are_long_random_and_distinct(server: LiveServer, acme: SeededAccount) -> None:
    with server.client() as client:
        tokens = {
            client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}).json()[
                "token"
            ]
            for _ in range(20)
        }
    assert len(tokens) == 20
    assert all(len(t) >= 43 for t in tokens)  # 256 bits in url-safe base64


def test_tokens_are_stored_only_as_digests(
    server: LiveServer, acme: SeededAccount, settings: Settings
) -> None:
    with server.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}).json()[
            "token"
        ]
    database = (settings.data_dir / "voicemgmt.db").read_bytes()
    wal = settings.data_dir / "voicemgmt.db-wal"
    stored = database + (wal.read_bytes() if wal.exists() else b"")
    assert token.encode() not in stored
    assert token[3:].encode() not in stored


def test_keep_without_a_live_token_mints_one(server: LiveServer, acme: SeededAccount) -> None:
    with server.client() as client:
        answer = client.post(
            "/vm/token", auth=acme.auth, json={"id_admin": acme.id_admin, "keep": 1}
        )
    assert answer.status_code == 200
    assert answer.json()["kept"] is False


def test_keep_after_logout_mints_a_new_token(server: LiveServer, acme: SeededAccount) -> None:
    body = {"id_agent": acme.id_agent, "keep": 1}
    with server.client() as client:
        first = client.post("/vm/token", auth=acme.auth, json=body).json()["token"]
        assert client.request("DELETE", f"/vm/token/{first}", auth=acme.auth).status_code == 200
        second = client.post("/vm/token", auth=acme.auth, json=body).json()["token"]
    assert second != first
    assert me(server, second).status_code == 200


def test_a_token_expires(tmp_path: Any) -> None:
    settings = make_settings(tmp_path, token_ttl_seconds=60)
    from tests.support import seed_two_accounts

    acme, _ = seed_two_accounts(settings)
    with live_server(settings) as server, server.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}).json()[
            "token"
        ]
        info = client.get(f"/vm/token/{token}", auth=acme.auth).json()
    # Expiry is an hour's sixtieth from now, not a fixed date: ttl is honoured.
    from datetime import UTC, datetime

    remaining = datetime.fromisoformat(info["expires_at"]) - datetime.now(UTC)
    assert 0 < remaining.total_seconds() <= 60


def test_a_page_can_ask_who_holds_a_token(server: LiveServer, acme: SeededAccount) -> None:
    with server.client() as client:
        token = client.post(
            "/vm/token",
            auth=acme.auth,
            json={"email": acme.agent_email.upper(), "user_type": "agent"},
        ).json()["token"]
    answer = me(server, token)
    assert answer.status_code == 200
    assert answer.json() | {"expires_at": None} == {
        "user_type": "agent",
        "id_agent": acme.id_agent,
        "name": "Ana",
        "email": acme.agent_email,
        "account": "acme Ltd",
        "expires_at": None,
    }


def test_the_account_can_look_up_its_token(server: LiveServer, acme: SeededAccount) -> None:
    with server.client() as client:
        token = client.post(
            "/vm/token", auth=acme.auth, json={"ip": "2001:db8::1", "id_admin": acme.id_admin}
        ).json()["token"]
        info = client.get(f"/vm/token/{token}", auth=acme.auth).json()
    assert (info["user_type"], info["id_admin"], info["ip"]) == (
        "admin",
        acme.id_admin,
        "2001:db8::1",
    )


def test_delete_without_a_body(server: LiveServer, acme: SeededAccount) -> None:
    with server.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}).json()[
            "token"
        ]
        answer = client.delete(f"/vm/token/{token}", auth=acme.auth)
    assert answer.status_code == 200
    assert me(server, token).status_code == 401


# Bad input: precise errors, nothing changed

BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("not an object", b"[1, 2]", "invalid_input"),
    ("a bare number", b"12", "invalid_input"),
    ("empty", b"", "invalid_input"),
    ("truncated", b'{"id_agent": 1', "invalid_json"),
    ("not utf-8", b'{"id_agent": "\xff"}', "invalid_json"),
    ("NaN", b'{"id_agent": NaN}', "invalid_json"),
    ("deeply nested", b"[" * 30_000 + b"]" * 30_000, "invalid_json"),
    (
        "both id_agent and email",
        b'{"id_agent": 1, "email": "a@b.c", "user_type": "agent"}',
        "invalid_input",
    ),
    ("both id_agent and id_admin", b'{"id_agent": 1, "id_admin": 1}', "invalid_input"),
    ("neither", b'{"ip": "10.0.0.1"}', "invalid_input"),
    ("id_agent as a string", b'{"id_agent": "1"}', "invalid_input"),
    ("id_agent negative", b'{"id_agent": -1}', "invalid_input"),
    ("id_agent zero", b'{"id_agent": 0}', "invalid_input"),
    ("id_agent a float", b'{"id_agent": 1.0}', "invalid_input"),
    ("id_agent a boolean", b'{"id_agent": true}', "invalid_input"),
    ("id_agent huge", b'{"id_agent": 99999999999999999999999}', "invalid_input"),
    ("id_agent null", b'{"id_agent": null}', "invalid_input"),
    ("email without user_type", b'{"email": "ana@acme.example"}', "invalid_input"),
    ("user_type other", b'{"email": "ana@acme.example", "user_type": "root"}', "invalid_input"),
    ("user_type contradicting", b'{"id_agent": 1, "user_type": "admin"}', "invalid_input"),
    ("email not a string", b'{"email": 5, "user_type": "agent"}', "invalid_input"),
    ("ip not an address", b'{"ip": "<script>", "id_agent": 1}', "invalid_input"),
    ("keep not 0/1", b'{"id_agent": 1, "keep": "yes"}', "invalid_input"),
    ("unknown field", b'{"id_agnet": 1}', "invalid_input"),
]


@pytest.mark.parametrize(
    ("raw", "code"), [(b, c) for _, b, c in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES]
)
def test_bad_token_requests_get_400_and_change_nothing(
    server: LiveServer, acme: SeededAccount, settings: Settings, raw: bytes, code: str
) -> None:
    before = token_count(settings)
    with server.client() as client:
        answer = client.post(
            "/vm/token", auth=acme.auth, content=raw, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["status"], body["err_code"]) == (400, code)
    assert body["err_msg"]
    assert token_count(settings) == before


def test_both_identifiers_are_named_in_the_error(server: LiveServer, acme: SeededAccount) -> None:
    with server.client() as client:
        answer = client.post(
            "/vm/token",
            auth=acme.auth,
            json={"id_agent": 1, "email": "a@b.c", "user_type": "agent"},
        )
    assert "id_agent and email" in answer.json()["err_msg"]


@pytest.mark.parametrize(
    "body",
    [{"id_agent": 999_999}, {"email": "nobody@acme.example", "user_type": "agent"}],
    ids=["id", "email"],
)
def test_an_unknown_operator_is_404(
    server: LiveServer, acme: SeededAccount, settings: Settings, body: dict[str, Any]
) -> None:
    with server.client() as client:
        answer = client.post("/vm/token", auth=acme.auth, json=body)
    assert (answer.status_code, answer.json()["err_code"]) == (404, "unknown_operator")
    assert token_count(settings) == 0


def test_another_accounts_operator_is_answered_like_an_unknown_one(
    server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    with server.client() as client:
        unknown = client.post("/vm/token", auth=acme.auth, json={"id_agent": 999_999})
        foreign = client.post("/vm/token", auth=acme.auth, json={"id_agent": globex.id_agent})
        by_email = client.post(
            "/vm/token", auth=acme.auth, json={"email": globex.agent_email, "user_type": "agent"}
        )
        admin = client.post("/vm/token", auth=acme.auth, json={"id_admin": globex.id_admin})
    assert foreign.status_code == unknown.status_code == by_email.status_code == 404
    assert foreign.json() == unknown.json() == by_email.json()
    assert admin.json()["err_code"] == "unknown_supervisor"


@pytest.mark.parametrize(
    "auth",
    [None, ("acme", "wrong"), ("nobody", "acme-api-password"), ("", "")],
    ids=["none", "wrong password", "unknown login", "empty"],
)
def test_bad_basic_auth_is_401_with_a_challenge(
    server: LiveServer, acme: SeededAccount, settings: Settings, auth: tuple[str, str] | None
) -> None:
    with server.client() as client:
        if auth is None:
            answer = client.post("/vm/token", json={"id_agent": acme.id_agent})
        else:
            answer = client.post("/vm/token", auth=auth, json={"id_agent": acme.id_agent})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    assert answer.json()["err_code"] == "authentication_failed"
    assert token_count(settings) == 0


@pytest.mark.parametrize(
    "header",
    ["Basic !!!notbase64", "Basic " + "QQ==", "Bearer abc", "Basic", "Digest x"],
    ids=["bad base64", "no colon", "bearer", "empty basic", "digest"],
)
def test_malformed_authorization_headers_are_401(
    server: LiveServer, acme: SeededAccount, header: str
) -> None:
    with server.client() as client:
        answer = client.post(
            "/vm/token", headers={"Authorization": header}, json={"id_agent": acme.id_agent}
        )
    assert answer.status_code == 401
    assert answer.json()["err_code"] == "authentication_failed"


def test_a_one_megabyte_body_is_413(server: LiveServer, acme: SeededAccount) -> None:
    big = b'{"id_agent": 1, "ip": "' + b"1" * 1_000_000 + b'"}'
    with server.client() as client:
        answer = client.post("/vm/token", auth=acme.auth, content=big)
    assert answer.status_code == 413
    assert answer.json()["err_code"] == "body_too_large"


def test_a_chunked_oversized_body_is_413(server: LiveServer, acme: SeededAccount) -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 10_000

    with server.client() as client:
        answer = client.post("/vm/token", auth=acme.auth, content=chunks())
    assert answer.status_code == 413


@pytest.mark.parametrize(
    "token",
    ["vm_" + "A" * 43, "nonsense", "x" * 5000, "vm_%00%0a", "..%2F..%2Fetc"],
    ids=["well-formed unknown", "short", "long", "control chars", "traversal"],
)
def test_deleting_an_unknown_token_is_404(
    server: LiveServer, acme: SeededAccount, token: str
) -> None:
    with server.client() as client:
        answer = client.delete(f"/vm/token/{token}", auth=acme.auth)
    assert answer.status_code == 404
    assert answer.json()["err_code"] in ("unknown_token", "not_found")


def test_deleting_a_token_twice_is_404(server: LiveServer, acme: SeededAccount) -> None:
    with server.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}).json()[
            "token"
        ]
        assert client.delete(f"/vm/token/{token}", auth=acme.auth).status_code == 200
        again = client.delete(f"/vm/token/{token}", auth=acme.auth)
    assert (again.status_code, again.json()["err_code"]) == (404, "unknown_token")


def test_another_account_cannot_delete_a_token(
    server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    with server.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}).json()[
            "token"
        ]
        answer = client.delete(f"/vm/token/{token}", auth=globex.auth)
        peek = client.get(f"/vm/token/{token}", auth=globex.auth)
    assert (answer.status_code, answer.json()["err_code"]) == (404, "unknown_token")
    assert peek.status_code == 404
    assert me(server, token).status_code == 200


def test_delete_naming_another_operator_is_refused(server: LiveServer, acme: SeededAccount) -> None:
    with server.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}).json()[
            "token"
        ]
        answer = client.request(
            "DELETE", f"/vm/token/{token}", auth=acme.auth, json={"id_agent": acme.other_id_agent}
        )
    assert (answer.status_code, answer.json()["err_code"]) == (400, "token_owner_mismatch")
    assert me(server, token).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'"a string"', b'{"id_agent": "x"}', b'{"ip": 5}', b'{"extra": 1}'],
)
def test_delete_with_a_malformed_body_is_400_and_keeps_the_token(
    server: LiveServer, acme: SeededAccount, raw: bytes
) -> None:
    with server.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}).json()[
            "token"
        ]
        answer = client.request(
            "DELETE",
            f"/vm/token/{token}",
            auth=acme.auth,
            content=raw,
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 400
    assert me(server, token).status_code == 200


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer vm_" + "B" * 43, "Basic abc", "Bearer " + "é" * 10]
)
def test_me_with_a_bad_token_is_401(server: LiveServer, header: str) -> None:
    with server.client() as client:
        answer = client.get("/vm/me", headers={b"Authorization": header.encode()} if header else {})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["err_code"] == "invalid_token"


# Throttling


def test_repeated_failures_are_throttled_per_client_without_locking_out_others(
    server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    body = {"id_agent": acme.id_agent}
    with server.client() as attacker:
        codes = [
            attacker.post("/vm/token", auth=(acme.login, f"guess{i}"), json=body).status_code
            for i in range(7)
        ]
        throttled = attacker.post("/vm/token", auth=acme.auth, json=body)
        # The same client on another account is not locked out by failures on the first.
        other_account = attacker.post(
            "/vm/token", auth=globex.auth, json={"id_agent": globex.id_agent}
        )
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["err_code"] == "too_many_attempts"
    assert other_account.status_code == 200
    with server.client(source="127.0.0.2") as colleague:
        assert colleague.post("/vm/token", auth=acme.auth, json=body).status_code == 200


def test_a_client_spraying_many_logins_is_throttled_altogether(
    server: LiveServer, acme: SeededAccount
) -> None:
    with server.client(source="127.0.0.3") as sprayer:
        codes = [
            sprayer.post("/vm/token", auth=(f"login{i}", "x"), json={"id_agent": 1}).status_code
            for i in range(32)
        ]
        after = sprayer.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent})
    assert codes[:30] == [401] * 30
    assert codes[30:] == [429, 429]
    assert after.status_code == 429
    with server.client() as other:
        assert (
            other.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}).status_code
            == 200
        )
