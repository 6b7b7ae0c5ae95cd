"""The admin REST API (``/api/v1``) through a real server: CRUD, tenant isolation, bad input.

Every refused request is checked for its exact status and ``err_code`` and for having changed
nothing, both as the API shows it and as the database stores it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx
import pytest

from tests.support import LiveServer, SeededAccount, run_on
from voicemgmt.adapters.sql.repository import count_rows
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings

API = "/api/v1"
KINDS = ("operators", "supervisors", "groups", "numbers")
TABLES = (
    "accounts",
    "operators",
    "supervisors",
    "groups",
    "memberships",
    "numbers",
    "session_tokens",
)
ERROR_KEYS = {"status", "err_code", "err_msg", "details"}
MAX_ID = 2**31 - 1
FREE_NUMBER = "33170200210"  # valid, and in neither seeded account
JSON_HEADERS = {"Content-Type": "application/json"}


# helpers


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def settle(response: httpx.Response) -> None:
    """After a 500, give the server thread time to log its traceback before this one fails.

    CPython 3.11.7's ``ast`` module (which ``traceback`` uses for its ^^^ markers) tracks its
    recursion depth process-wide, so two threads formatting tracebacks at once can crash
    pytest with "SystemError: AST constructor recursion depth mismatch".
    """
    if response.status_code >= 500:
        time.sleep(1)


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a successful answer, after checking its status."""
    settle(response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def expect_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check that ``response`` is an error in the API's one JSON shape, and return its body."""
    settle(response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict)
    assert set(body) <= ERROR_KEYS
    assert body["status"] == status
    assert body["err_code"] == code, body
    assert isinstance(body["err_msg"], str)
    assert body["err_msg"]
    return body


def fill(template: str, account: SeededAccount) -> str:
    """An ``/api/v1`` path with the account's ids in place of ``{id_agent}`` and the like."""
    return API + template.format(
        id_agent=account.id_agent,
        id_admin=account.id_admin,
        id_group=account.id_group,
        number=account.number,
    )


def resolve(body: Any, account: SeededAccount) -> Any:
    """``body`` with the string ``"$group"`` replaced by the account's group id, anywhere."""
    if body == "$group":
        return account.id_group
    if isinstance(body, dict):
        return {key: resolve(value, account) for key, value in body.items()}
    if isinstance(body, list):
        return [resolve(value, account) for value in body]
    return body


def raw(
    client: httpx.Client, method: str, path: str, account: SeededAccount, content: bytes
) -> httpx.Response:
    return client.request(method, path, auth=account.auth, content=content, headers=JSON_HEADERS)


def operator_body(**fields: Any) -> dict[str, Any]:
    return {"name": "Eve", "email": "eve@example.org", **fields}


def supervisor_body(**fields: Any) -> dict[str, Any]:
    return {"name": "Sue", "email": "sue@example.org", **fields}


def group_body(**fields: Any) -> dict[str, Any]:
    return {"name": "Sales", **fields}


def number_body(**fields: Any) -> dict[str, Any]:
    return {"e164": FREE_NUMBER, "id_group": "$group", **fields}


def api_view(client: httpx.Client, account: SeededAccount) -> dict[str, Any]:
    """Everything the account can see of itself through the API."""
    view: dict[str, Any] = {"account": ok(client.get(f"{API}/account", auth=account.auth))}
    for kind in KINDS:
        listing = ok(client.get(f"{API}/{kind}", params={"limit": 1000}, auth=account.auth))
        view[kind] = listing["items"]
    return view


def stored(settings: Settings) -> dict[str, Any]:
    """Row counts of every table and every stored account (password hash included)."""

    async def job(container: Container) -> dict[str, Any]:
        counts = {table: await count_rows(container.engine, table) for table in TABLES}
        return {"rows": counts, "accounts": await container.directory.accounts()}

    return run_on(settings, job)


@contextmanager
def nothing_changes(
    client: httpx.Client, settings: Settings, *accounts: SeededAccount
) -> Iterator[None]:
    """Assert that the block leaves the store, and what each account sees, exactly as it was."""
    before_api = [api_view(client, a) for a in accounts]
    before_db = stored(settings)
    yield
    assert stored(settings) == before_db
    assert [api_view(client, a) for a in accounts] == before_api


def token_for(client: httpx.Client, account: SeededAccount, **who: int) -> str:
    answer = ok(client.post("/vm/token", auth=account.auth, json=who))
    token: str = answer["token"]
    return token


def me(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/vm/me", headers={"Authorization": f"Bearer {token}"})


# operators


def test_creating_an_operator_answers_201_with_its_location(
    client: httpx.Client, acme: SeededAccount
) -> None:
    answer = client.post(
        f"{API}/operators",
        auth=acme.auth,
        json={
            "name": "Eve",
            "email": "eve@acme.example",
            "password": "eve-password",
            "groups": [{"id_group": acme.id_group, "priority": 3}],
        },
    )
    created = ok(answer, 201)
    assert answer.headers["Location"] == f"{API}/operators/{created['id_agent']}"
    assert created == {
        "id_agent": created["id_agent"],
        "name": "Eve",
        "email": "eve@acme.example",
        "groups": [{"id_group": acme.id_group, "priority": 3}],
        "has_password": True,
    }
    assert ok(client.get(answer.headers["Location"], auth=acme.auth)) == created


def test_an_operator_needs_neither_password_nor_groups(
    client: httpx.Client, acme: SeededAccount
) -> None:
    created = ok(client.post(f"{API}/operators", auth=acme.auth, json=operator_body()), 201)
    assert created["groups"] == []
    assert created["has_password"] is False


def test_a_membership_priority_defaults_to_the_first_tier(
    client: httpx.Client, acme: SeededAccount
) -> None:
    body = operator_body(groups=[{"id_group": acme.id_group}])
    created = ok(client.post(f"{API}/operators", auth=acme.auth, json=body), 201)
    assert created["groups"] == [{"id_group": acme.id_group, "priority": 1}]


def test_getting_an_operator_shows_its_memberships(
    client: httpx.Client, acme: SeededAccount
) -> None:
    ana = ok(client.get(f"{API}/operators/{acme.id_agent}", auth=acme.auth))
    assert ana == {
        "id_agent": acme.id_agent,
        "name": "Ana",
        "email": acme.agent_email,
        "groups": [{"id_group": acme.id_group, "priority": 1}],
        "has_password": True,
    }


def test_listing_operators_pages_with_limit_and_offset(
    client: httpx.Client, acme: SeededAccount
) -> None:
    for name in ("Cid", "Dee", "Eli"):
        body = {"name": name, "email": f"{name.lower()}@acme.example"}
        ok(client.post(f"{API}/operators", auth=acme.auth, json=body), 201)
    everyone = ok(client.get(f"{API}/operators", auth=acme.auth))
    assert [o["name"] for o in everyone["items"]] == ["Ana", "Bob", "Cid", "Dee", "Eli"]
    assert (everyone["limit"], everyone["offset"]) == (100, 0)
    page = ok(client.get(f"{API}/operators", params={"limit": 2, "offset": 1}, auth=acme.auth))
    assert [o["name"] for o in page["items"]] == ["Bob", "Cid"]
    assert (page["limit"], page["offset"]) == (2, 1)
    beyond = ok(client.get(f"{API}/operators", params={"offset": 5}, auth=acme.auth))
    assert beyond["items"] == []


def test_patching_an_operator_changes_only_the_given_fields(
    client: httpx.Client, acme: SeededAccount
) -> None:
    path = f"{API}/operators/{acme.id_agent}"
    before = ok(client.get(path, auth=acme.auth))
    patched = ok(client.patch(path, auth=acme.auth, json={"name": "Ana Lopez"}))
    assert patched == {**before, "name": "Ana Lopez"}
    assert ok(client.get(path, auth=acme.auth)) == patched


def test_an_empty_patch_changes_nothing(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    path = f"{API}/operators/{acme.id_agent}"
    before = ok(client.get(path, auth=acme.auth))
    with nothing_changes(client, settings, acme):
        assert ok(client.patch(path, auth=acme.auth, json={})) == before


def test_patching_memberships_replaces_them_with_their_priorities(
    client: httpx.Client, acme: SeededAccount
) -> None:
    sales = ok(client.post(f"{API}/groups", auth=acme.auth, json={"name": "Sales"}), 201)
    path = f"{API}/operators/{acme.id_agent}"
    groups = [
        {"id_group": sales["id_group"], "priority": 1},
        {"id_group": acme.id_group, "priority": 5},
    ]
    patched = ok(client.patch(path, auth=acme.auth, json={"groups": groups}))
    assert patched["groups"] == groups
    assert ok(client.get(path, auth=acme.auth))["groups"] == groups
    cleared = ok(client.patch(path, auth=acme.auth, json={"groups": []}))
    assert cleared["groups"] == []


def test_an_operator_can_be_given_a_password_later(
    client: httpx.Client, acme: SeededAccount
) -> None:
    path = f"{API}/operators/{acme.other_id_agent}"
    assert ok(client.get(path, auth=acme.auth))["has_password"] is False
    patched = ok(client.patch(path, auth=acme.auth, json={"password": "bob-password"}))
    assert patched["has_password"] is True


def test_deleting_an_operator_answers_204_and_it_is_gone(
    client: httpx.Client, acme: SeededAccount
) -> None:
    path = f"{API}/operators/{acme.other_id_agent}"
    answer = client.delete(path, auth=acme.auth)
    assert answer.status_code == 204
    assert answer.content == b""
    expect_error(client.get(path, auth=acme.auth), 404, "unknown_operator")
    expect_error(client.delete(path, auth=acme.auth), 404, "unknown_operator")
    listed = ok(client.get(f"{API}/operators", auth=acme.auth))["items"]
    assert [o["id_agent"] for o in listed] == [acme.id_agent]


def test_deleting_an_operator_invalidates_its_tokens(
    client: httpx.Client, acme: SeededAccount
) -> None:
    token = token_for(client, acme, id_agent=acme.id_agent)
    assert ok(me(client, token))["id_agent"] == acme.id_agent
    assert client.delete(f"{API}/operators/{acme.id_agent}", auth=acme.auth).status_code == 204
    refused = me(client, token)
    expect_error(refused, 401, "invalid_token")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_deleting_a_supervisor_invalidates_its_tokens(
    client: httpx.Client, acme: SeededAccount
) -> None:
    token = token_for(client, acme, id_admin=acme.id_admin)
    assert ok(me(client, token))["id_admin"] == acme.id_admin
    assert client.delete(f"{API}/supervisors/{acme.id_admin}", auth=acme.auth).status_code == 204
    expect_error(me(client, token), 401, "invalid_token")


def test_deleting_an_operator_leaves_other_operators_tokens_alone(
    client: httpx.Client, acme: SeededAccount
) -> None:
    token = token_for(client, acme, id_agent=acme.id_agent)
    path = f"{API}/operators/{acme.other_id_agent}"
    assert client.delete(path, auth=acme.auth).status_code == 204
    assert ok(me(client, token))["id_agent"] == acme.id_agent


# supervisors


def test_supervisors_can_be_created_read_listed_updated_and_deleted(
    client: httpx.Client, acme: SeededAccount
) -> None:
    answer = client.post(
        f"{API}/supervisors",
        auth=acme.auth,
        json={"name": "Sue", "email": "sue@acme.example", "password": "sue-password"},
    )
    sue = ok(answer, 201)
    location = answer.headers["Location"]
    assert location == f"{API}/supervisors/{sue['id_admin']}"
    assert sue == {
        "id_admin": sue["id_admin"],
        "name": "Sue",
        "email": "sue@acme.example",
        "has_password": True,
    }
    assert ok(client.get(location, auth=acme.auth)) == sue
    listed = ok(client.get(f"{API}/supervisors", auth=acme.auth))["items"]
    assert [s["id_admin"] for s in listed] == [acme.id_admin, sue["id_admin"]]
    patched = ok(client.patch(location, auth=acme.auth, json={"email": "susan@acme.example"}))
    assert patched == {**sue, "email": "susan@acme.example"}
    assert client.delete(location, auth=acme.auth).status_code == 204
    expect_error(client.get(location, auth=acme.auth), 404, "unknown_supervisor")


def test_listing_supervisors_pages_with_limit_and_offset(
    client: httpx.Client, acme: SeededAccount
) -> None:
    for name in ("Tia", "Uma"):
        body = {"name": name, "email": f"{name.lower()}@acme.example"}
        ok(client.post(f"{API}/supervisors", auth=acme.auth, json=body), 201)
    page = ok(client.get(f"{API}/supervisors", params={"limit": 1, "offset": 1}, auth=acme.auth))
    assert [s["name"] for s in page["items"]] == ["Tia"]


# groups


def test_groups_can_be_created_read_listed_updated_and_deleted(
    client: httpx.Client, acme: SeededAccount
) -> None:
    answer = client.post(
        f"{API}/groups", auth=acme.auth, json={"name": "Sales", "settings": {"moh": "jazz"}}
    )
    sales = ok(answer, 201)
    location = answer.headers["Location"]
    assert location == f"{API}/groups/{sales['id_group']}"
    assert sales == {"id_group": sales["id_group"], "name": "Sales", "settings": {"moh": "jazz"}}
    assert ok(client.get(location, auth=acme.auth)) == sales
    listed = ok(client.get(f"{API}/groups", auth=acme.auth))["items"]
    assert [g["id_group"] for g in listed] == [acme.id_group, sales["id_group"]]
    patched = ok(
        client.patch(location, auth=acme.auth, json={"name": "Sales EU", "settings": {"a": [1]}})
    )
    assert patched == {"id_group": sales["id_group"], "name": "Sales EU", "settings": {"a": [1]}}
    assert client.delete(location, auth=acme.auth).status_code == 204
    expect_error(client.get(location, auth=acme.auth), 404, "unknown_group")


def test_listing_groups_pages_with_limit_and_offset(
    client: httpx.Client, acme: SeededAccount
) -> None:
    for name in ("B", "C", "D"):
        ok(client.post(f"{API}/groups", auth=acme.auth, json={"name": name}), 201)
    page = ok(client.get(f"{API}/groups", params={"limit": 2, "offset": 2}, auth=acme.auth))
    assert [g["name"] for g in page["items"]] == ["C", "D"]


def test_a_group_name_is_unique_in_an_account_whatever_its_case(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.post(f"{API}/groups", auth=acme.auth, json={"name": "SUPPORT"})
        expect_error(answer, 409, "duplicate_group_name")


def test_deleting_a_group_removes_it_from_its_operators(
    client: httpx.Client, acme: SeededAccount
) -> None:
    sales = ok(client.post(f"{API}/groups", auth=acme.auth, json={"name": "Sales"}), 201)
    path = f"{API}/operators/{acme.id_agent}"
    groups = [{"id_group": acme.id_group, "priority": 1}, {"id_group": sales["id_group"]}]
    ok(client.patch(path, auth=acme.auth, json={"groups": groups}))
    deleted = client.delete(f"{API}/groups/{sales['id_group']}", auth=acme.auth)
    assert deleted.status_code == 204
    ana = ok(client.get(path, auth=acme.auth))
    assert ana["groups"] == [{"id_group": acme.id_group, "priority": 1}]


def test_deleting_a_group_that_still_has_numbers_is_409_and_deletes_nothing(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.delete(f"{API}/groups/{acme.id_group}", auth=acme.auth)
        refused = expect_error(answer, 409, "group_in_use")
    assert refused["details"] == {"numbers": [acme.number]}
    assert acme.number in refused["err_msg"]


def test_a_group_can_be_deleted_once_its_numbers_are_routed_elsewhere(
    client: httpx.Client, acme: SeededAccount
) -> None:
    sales = ok(client.post(f"{API}/groups", auth=acme.auth, json={"name": "Sales"}), 201)
    number = f"{API}/numbers/{acme.number}"
    ok(client.patch(number, auth=acme.auth, json={"id_group": sales["id_group"]}))
    assert client.delete(f"{API}/groups/{acme.id_group}", auth=acme.auth).status_code == 204
    assert ok(client.get(number, auth=acme.auth))["id_group"] == sales["id_group"]


# numbers


def test_creating_a_number_normalises_it_to_e164_digits(
    client: httpx.Client, acme: SeededAccount
) -> None:
    answer = client.post(
        f"{API}/numbers",
        auth=acme.auth,
        json={"e164": "+33 1 70 20 02 10", "id_group": acme.id_group, "label": "Sales line"},
    )
    created = ok(answer, 201)
    assert created == {
        "e164": FREE_NUMBER,
        "id_group": acme.id_group,
        "label": "Sales line",
        "ivr": None,
    }
    assert answer.headers["Location"] == f"{API}/numbers/{FREE_NUMBER}"
    assert ok(client.get(answer.headers["Location"], auth=acme.auth)) == created


@pytest.mark.parametrize(
    "written", [FREE_NUMBER, "+33170200210", "+33 1 70 20 02 10", "33-1-70-20-02-10"]
)
def test_a_number_is_found_by_its_e164_in_the_path_however_written(
    client: httpx.Client, acme: SeededAccount, written: str
) -> None:
    body = {"e164": FREE_NUMBER, "id_group": acme.id_group}
    ok(client.post(f"{API}/numbers", auth=acme.auth, json=body), 201)
    found = ok(client.get(f"{API}/numbers/{written}", auth=acme.auth))
    assert found["e164"] == FREE_NUMBER


def test_numbers_are_listed_in_order_and_paged(client: httpx.Client, acme: SeededAccount) -> None:
    for e164 in ("33170200212", "33170200211"):
        body = {"e164": e164, "id_group": acme.id_group}
        ok(client.post(f"{API}/numbers", auth=acme.auth, json=body), 201)
    everything = ok(client.get(f"{API}/numbers", auth=acme.auth))["items"]
    assert [n["e164"] for n in everything] == [acme.number, "33170200211", "33170200212"]
    page = ok(client.get(f"{API}/numbers", params={"limit": 1, "offset": 1}, auth=acme.auth))
    assert [n["e164"] for n in page["items"]] == ["33170200211"]


def test_patching_a_number_reroutes_and_relabels_it(
    client: httpx.Client, acme: SeededAccount
) -> None:
    sales = ok(client.post(f"{API}/groups", auth=acme.auth, json={"name": "Sales"}), 201)
    path = f"{API}/numbers/{acme.number}"
    patched = ok(client.patch(path, auth=acme.auth, json={"id_group": sales["id_group"]}))
    assert patched == {
        "e164": acme.number,
        "id_group": sales["id_group"],
        "label": "Hotline",
        "ivr": None,
    }
    relabelled = ok(client.patch(path, auth=acme.auth, json={"label": "Night line"}))
    assert relabelled == {**patched, "label": "Night line"}
    assert ok(client.get(path, auth=acme.auth)) == relabelled


def test_deleting_a_number_answers_204_and_it_is_gone(
    client: httpx.Client, acme: SeededAccount
) -> None:
    path = f"{API}/numbers/{acme.number}"
    assert client.delete(path, auth=acme.auth).status_code == 204
    expect_error(client.get(path, auth=acme.auth), 404, "unknown_number")
    assert ok(client.get(f"{API}/numbers", auth=acme.auth))["items"] == []


def test_a_number_cannot_be_created_twice(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    body = {"e164": "+" + acme.number, "id_group": acme.id_group}
    with nothing_changes(client, settings, acme):
        expect_error(
            client.post(f"{API}/numbers", auth=acme.auth, json=body), 409, "number_already_exists"
        )


# the account


def test_the_account_shows_its_settings(client: httpx.Client, acme: SeededAccount) -> None:
    assert ok(client.get(f"{API}/account", auth=acme.auth)) == {
        "login": "acme",
        "name": "acme Ltd",
        "crm_url": None,
        "allowed_origins": [],
        "settings": {},
    }


def test_patching_the_account_changes_name_and_settings(
    client: httpx.Client, acme: SeededAccount
) -> None:
    body = {"name": "Acme Corporation", "settings": {"locale": "fr", "screen_pop": "answer"}}
    patched = ok(client.patch(f"{API}/account", auth=acme.auth, json=body))
    assert patched["name"] == "Acme Corporation"
    assert patched["settings"] == {"locale": "fr", "screen_pop": "answer"}
    assert ok(client.get(f"{API}/account", auth=acme.auth)) == patched


@pytest.mark.parametrize("cleared_with", [None, ""], ids=["null", "empty string"])
def test_the_crm_url_is_set_and_cleared(
    client: httpx.Client, acme: SeededAccount, cleared_with: str | None
) -> None:
    url = "https://crm.acme.example/calls?number={number}"
    path = f"{API}/account"
    assert ok(client.patch(path, auth=acme.auth, json={"crm_url": url}))["crm_url"] == url
    assert ok(client.patch(path, auth=acme.auth, json={"name": "Acme"}))["crm_url"] == url
    cleared = ok(client.patch(path, auth=acme.auth, json={"crm_url": cleared_with}))
    assert cleared["crm_url"] is None
    assert ok(client.get(path, auth=acme.auth))["crm_url"] is None


def test_allowed_origins_are_normalised_and_deduplicated(
    client: httpx.Client, acme: SeededAccount
) -> None:
    given = [
        "HTTPS://CRM.Acme.Example",
        "https://crm.acme.example/",
        " https://crm.acme.example ",
        "http://localhost:8080",
        "http://[::1]:3000",
        "http://localhost:8080",
    ]
    patched = ok(client.patch(f"{API}/account", auth=acme.auth, json={"allowed_origins": given}))
    expected = ["https://crm.acme.example", "http://localhost:8080", "http://[::1]:3000"]
    assert patched["allowed_origins"] == expected
    assert ok(client.get(f"{API}/account", auth=acme.auth))["allowed_origins"] == expected
    emptied = ok(client.patch(f"{API}/account", auth=acme.auth, json={"allowed_origins": []}))
    assert emptied["allowed_origins"] == []


def test_changing_the_api_password_retires_the_old_one(
    client: httpx.Client, acme: SeededAccount
) -> None:
    new = "a-brand-new-api-password"
    ok(client.patch(f"{API}/account", auth=acme.auth, json={"password": new}))
    refused = client.get(f"{API}/account", auth=acme.auth)
    expect_error(refused, 401, "authentication_failed")
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert ok(client.get(f"{API}/account", auth=(acme.login, new)))["login"] == "acme"


# tenant isolation

OTHER_ACCOUNTS_THINGS = [
    pytest.param("/operators/{id_agent}", f"/operators/{MAX_ID}", {"name": "X"}, id="operator"),
    pytest.param("/supervisors/{id_admin}", f"/supervisors/{MAX_ID}", {"name": "X"}, id="admin"),
    pytest.param("/groups/{id_group}", f"/groups/{MAX_ID}", {"name": "X"}, id="group"),
    pytest.param("/numbers/{number}", f"/numbers/{FREE_NUMBER}", {"label": "X"}, id="number"),
]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize(("theirs", "nonexistent", "patch"), OTHER_ACCOUNTS_THINGS)
def test_another_accounts_resource_is_answered_exactly_like_a_nonexistent_one(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    globex: SeededAccount,
    method: str,
    theirs: str,
    nonexistent: str,
    patch: dict[str, Any],
) -> None:
    body = patch if method == "PATCH" else None
    absent = client.request(method, API + nonexistent, auth=globex.auth, json=body)
    code = absent.json()["err_code"]
    assert code == "unknown_" + nonexistent.split("/")[1].removesuffix("s")
    expect_error(absent, 404, code)
    with nothing_changes(client, settings, acme, globex):
        foreign = client.request(method, fill(theirs, acme), auth=globex.auth, json=body)
    expect_error(foreign, 404, code)


def test_another_accounts_group_with_numbers_is_404_not_409(
    client: httpx.Client, settings: Settings, acme: SeededAccount, globex: SeededAccount
) -> None:
    with nothing_changes(client, settings, acme, globex):
        answer = client.delete(f"{API}/groups/{acme.id_group}", auth=globex.auth)
    expect_error(answer, 404, "unknown_group")


@pytest.mark.parametrize("kind", KINDS)
def test_lists_show_only_the_accounts_own_data(
    client: httpx.Client, acme: SeededAccount, globex: SeededAccount, kind: str
) -> None:
    mine = api_view(client, globex)[kind]
    theirs = api_view(client, acme)[kind]
    assert mine
    assert theirs
    assert not any(item in theirs for item in mine)
    if kind == "numbers":
        assert [n["e164"] for n in mine] == [globex.number]
        assert [n["id_group"] for n in mine] == [globex.id_group]


def test_the_account_endpoint_shows_the_callers_own_account(
    client: httpx.Client, acme: SeededAccount, globex: SeededAccount
) -> None:
    assert ok(client.get(f"{API}/account", auth=globex.auth))["login"] == "globex"
    ok(client.patch(f"{API}/account", auth=globex.auth, json={"name": "Globex Inc"}))
    assert ok(client.get(f"{API}/account", auth=acme.auth))["name"] == "acme Ltd"


def test_an_operator_cannot_join_another_accounts_group(
    client: httpx.Client, settings: Settings, acme: SeededAccount, globex: SeededAccount
) -> None:
    foreign = operator_body(groups=[{"id_group": acme.id_group}])
    absent = operator_body(groups=[{"id_group": MAX_ID}])
    with nothing_changes(client, settings, acme, globex):
        refused = client.post(f"{API}/operators", auth=globex.auth, json=foreign)
        patched = client.patch(
            f"{API}/operators/{globex.id_agent}",
            auth=globex.auth,
            json={"groups": [{"id_group": acme.id_group}]},
        )
        unknown = client.post(f"{API}/operators", auth=globex.auth, json=absent)
    for answer in (refused, patched, unknown):
        expect_error(answer, 400, "invalid_input")


def test_a_number_cannot_be_routed_to_another_accounts_group(
    client: httpx.Client, settings: Settings, acme: SeededAccount, globex: SeededAccount
) -> None:
    with nothing_changes(client, settings, acme, globex):
        created = client.post(
            f"{API}/numbers",
            auth=globex.auth,
            json={"e164": FREE_NUMBER, "id_group": acme.id_group},
        )
        moved = client.patch(
            f"{API}/numbers/{globex.number}", auth=globex.auth, json={"id_group": acme.id_group}
        )
    expect_error(created, 400, "invalid_input")
    expect_error(moved, 400, "invalid_input")


def test_a_number_of_another_account_cannot_be_created_again(
    client: httpx.Client, settings: Settings, acme: SeededAccount, globex: SeededAccount
) -> None:
    body = {"e164": acme.number, "id_group": globex.id_group, "label": "Stolen"}
    with nothing_changes(client, settings, acme, globex):
        answer = client.post(f"{API}/numbers", auth=globex.auth, json=body)
    expect_error(answer, 409, "number_already_exists")
    kept = ok(client.get(f"{API}/numbers/{acme.number}", auth=acme.auth))
    assert kept == {"e164": acme.number, "id_group": acme.id_group, "label": "Hotline", "ivr": None}


def test_emails_are_unique_per_account_not_across_accounts(
    client: httpx.Client, acme: SeededAccount, globex: SeededAccount
) -> None:
    body = {"name": "Ana", "email": acme.agent_email}
    ok(client.post(f"{API}/operators", auth=globex.auth, json=body), 201)
    body = {"name": "Sam", "email": acme.admin_email}
    ok(client.post(f"{API}/supervisors", auth=globex.auth, json=body), 201)


# authentication

ADMIN_ROUTES = [
    ("GET", "/account"),
    ("PATCH", "/account"),
    ("GET", "/operators"),
    ("POST", "/operators"),
    ("GET", "/operators/{id_agent}"),
    ("PATCH", "/operators/{id_agent}"),
    ("DELETE", "/operators/{id_agent}"),
    ("GET", "/supervisors"),
    ("POST", "/supervisors"),
    ("GET", "/supervisors/{id_admin}"),
    ("PATCH", "/supervisors/{id_admin}"),
    ("DELETE", "/supervisors/{id_admin}"),
    ("GET", "/groups"),
    ("POST", "/groups"),
    ("GET", "/groups/{id_group}"),
    ("PATCH", "/groups/{id_group}"),
    ("DELETE", "/groups/{id_group}"),
    ("GET", "/numbers"),
    ("POST", "/numbers"),
    ("GET", "/numbers/{number}"),
    ("PATCH", "/numbers/{number}"),
    ("DELETE", "/numbers/{number}"),
]


@pytest.mark.parametrize(("method", "route"), ADMIN_ROUTES, ids=[" ".join(r) for r in ADMIN_ROUTES])
def test_every_admin_route_needs_basic_auth(
    client: httpx.Client, acme: SeededAccount, method: str, route: str
) -> None:
    body = {"name": "X"} if method in ("POST", "PATCH") else None
    answer = client.request(method, fill(route, acme), json=body)
    expect_error(answer, 401, "authentication_failed")
    assert answer.headers["WWW-Authenticate"].startswith("Basic")


BAD_AUTHORIZATIONS = [
    pytest.param({}, id="none"),
    pytest.param({"Authorization": "Basic"}, id="basic without credentials"),
    pytest.param({"Authorization": "Basic !!!not-base64!!!"}, id="not base64"),
    pytest.param({"Authorization": "Basic YWNtZQ=="}, id="no colon"),
    pytest.param({"Authorization": "Bearer vm_abc"}, id="bearer"),
    pytest.param({"Authorization": "Digest username=acme"}, id="digest"),
]


@pytest.mark.parametrize("headers", BAD_AUTHORIZATIONS)
def test_missing_or_malformed_credentials_are_401_with_a_challenge(
    client: httpx.Client, settings: Settings, acme: SeededAccount, headers: dict[str, str]
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.post(f"{API}/operators", headers=headers, json=operator_body())
    expect_error(answer, 401, "authentication_failed")
    assert answer.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(("acme", "wrong-password"), id="wrong password"),
        pytest.param(("nobody", "acme-api-password"), id="unknown login"),
        pytest.param(("acme", ""), id="empty password"),
        pytest.param(("ACME", "acme-api-password"), id="login in another case"),
        pytest.param(("globex", "acme-api-password"), id="another accounts login"),
    ],
)
def test_wrong_credentials_are_401_with_a_challenge(
    client: httpx.Client, settings: Settings, acme: SeededAccount, credentials: tuple[str, str]
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.post(f"{API}/operators", auth=credentials, json=operator_body())
    expect_error(answer, 401, "authentication_failed")
    assert answer.headers["WWW-Authenticate"].startswith("Basic")


# bad input: malformed bodies


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"name": ', id="truncated"),
        pytest.param(b"{'name': 'Sales'}", id="single quotes"),
        pytest.param(b'{"name": "Sales",}', id="trailing comma"),
        pytest.param(b'{name: "Sales"}', id="bare key"),
        pytest.param("{“name”: “Sales”}".encode(), id="typographic quotes"),
        pytest.param(b'{"name": "Sales"} trailing', id="trailing text"),
    ],
)
@pytest.mark.parametrize(
    ("method", "route"),
    [("POST", "/groups"), ("PATCH", "/operators/{id_agent}"), ("PATCH", "/account")],
)
def test_a_body_that_is_not_json_is_400_invalid_json(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    content: bytes,
    method: str,
    route: str,
) -> None:
    with nothing_changes(client, settings, acme):
        answer = raw(client, method, fill(route, acme), acme, content)
    expect_error(answer, 400, "invalid_json")


@pytest.mark.parametrize(
    "content",
    [b"[]", b'[{"name": "Sales"}]', b'"Sales"', b"42", b"true", b"null", b""],
    ids=["empty list", "list of object", "string", "number", "bool", "null", "empty body"],
)
def test_json_that_is_not_an_object_is_400_validation_failed(
    client: httpx.Client, settings: Settings, acme: SeededAccount, content: bytes
) -> None:
    with nothing_changes(client, settings, acme):
        answer = raw(client, "POST", f"{API}/groups", acme, content)
    expect_error(answer, 400, "validation_failed")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_sent_as_another_media_type_is_refused(
    client: httpx.Client, settings: Settings, acme: SeededAccount, content_type: str
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.post(
            f"{API}/groups",
            auth=acme.auth,
            content=b'{"name": "Sales"}',
            headers={"Content-Type": content_type},
        )
    expect_error(answer, 415, "unsupported_media_type")


class Bad(NamedTuple):
    """A refused request: ``route`` and ``body`` may name the account's ids (see fill, resolve)."""

    method: str
    route: str
    body: Any
    code: str


def bad(name: str, method: str, route: str, body: Any, code: str = "validation_failed") -> Any:
    return pytest.param(Bad(method, route, body, code), id=name)


def member(**fields: Any) -> list[dict[str, Any]]:
    """A one-membership ``groups`` list in the account's group, with ``fields`` changed."""
    return [{"id_group": "$group", **fields}]


OP, SUP, GRP, NUM, ACC = "/operators", "/supervisors", "/groups", "/numbers", "/account"
ANA, SAM = "/operators/{id_agent}", "/supervisors/{id_admin}"
SUPPORT, HOTLINE = "/groups/{id_group}", "/numbers/{number}"
II = "invalid_input"
MANY_SETTINGS = {f"k{i}": i for i in range(65)}
MANY_ORIGINS = [f"https://o{i}.example" for i in range(51)]

BAD_BODIES = [
    # unknown fields: a typo is an error, not an ignored field
    bad("operator unknown field", "POST", OP, operator_body(nickname="Evie")),
    bad("operator patch unknown field", "PATCH", ANA, {"nmae": "Ana"}),
    bad("supervisor unknown field", "POST", SUP, supervisor_body(role="boss")),
    bad("group unknown field", "POST", GRP, group_body(id_group=7)),
    bad("number unknown field", "POST", NUM, number_body(group=1)),
    bad("account login is not patchable", "PATCH", ACC, {"login": "evil"}),
    bad("account unknown field", "PATCH", ACC, {"password_hash": "x"}),
    bad("membership unknown field", "POST", OP, operator_body(groups=member(x=1))),
    # missing fields
    bad("operator without email", "POST", OP, {"name": "Eve"}),
    bad("operator without name", "POST", OP, {"email": "eve@example.org"}),
    bad("group without name", "POST", GRP, {}),
    bad("number without group", "POST", NUM, {"e164": FREE_NUMBER}),
    bad("membership without group", "POST", OP, operator_body(groups=[{"priority": 1}])),
    # wrong types, strictly: no "1" for 1
    bad("string for id_group", "POST", NUM, number_body(id_group="1")),
    bad("float for id_group", "POST", NUM, number_body(id_group=1.0)),
    bad("bool for id_group", "POST", NUM, number_body(id_group=True)),
    bad("null for id_group", "POST", NUM, number_body(id_group=None)),
    bad("int for e164", "POST", NUM, number_body(e164=33170200210)),
    bad("string for priority", "POST", OP, operator_body(groups=member(priority="1"))),
    bad("string for membership group", "POST", OP, operator_body(groups=[{"id_group": "1"}])),
    bad("object for groups", "POST", OP, operator_body(groups={"id_group": 1})),
    bad("int in groups", "POST", OP, operator_body(groups=[1])),
    bad("int for name", "POST", OP, operator_body(name=42)),
    bad("list for name", "POST", OP, operator_body(name=["Eve"])),
    bad("int for password", "POST", SUP, supervisor_body(password=12345678)),
    bad("list for settings", "POST", GRP, group_body(settings=[1, 2])),
    bad("string for settings", "POST", GRP, group_body(settings="{}")),
    bad("string for origins", "PATCH", ACC, {"allowed_origins": "https://a.example"}),
    bad("int origin", "PATCH", ACC, {"allowed_origins": [1]}),
    bad("int for crm_url", "PATCH", ACC, {"crm_url": 1}),
    bad("list for account settings", "PATCH", ACC, {"settings": []}),
    bad("int for label", "PATCH", HOTLINE, {"label": 5}),
    # ranges
    bad("priority 0", "POST", OP, operator_body(groups=member(priority=0))),
    bad("priority 101", "POST", OP, operator_body(groups=member(priority=101))),
    bad("negative priority", "POST", OP, operator_body(groups=member(priority=-1))),
    bad("patch priority 1000", "PATCH", ANA, {"groups": member(priority=1000)}),
    bad("membership group 0", "POST", OP, operator_body(groups=[{"id_group": 0}])),
    bad("number group -1", "POST", NUM, number_body(id_group=-1)),
    bad("201 memberships", "POST", OP, operator_body(groups=member() * 201)),
    bad("duplicate group", "POST", OP, operator_body(groups=member() + member(priority=2)), II),
    bad("patch duplicate group", "PATCH", ANA, {"groups": member() + member()}, II),
    bad("unknown group", "POST", OP, operator_body(groups=[{"id_group": MAX_ID}]), II),
    bad("number to unknown group", "POST", NUM, number_body(id_group=MAX_ID), II),
    # names and labels
    bad("empty operator name", "POST", OP, operator_body(name="")),
    bad("blank operator name", "POST", OP, operator_body(name="   "), II),
    bad("oversized operator name", "POST", OP, operator_body(name="x" * 201)),
    bad("patch empty operator name", "PATCH", ANA, {"name": ""}),
    bad("patch oversized operator name", "PATCH", ANA, {"name": "x" * 10_000}),
    bad("empty supervisor name", "POST", SUP, supervisor_body(name="")),
    bad("oversized supervisor name", "PATCH", SAM, {"name": "y" * 201}),
    bad("empty group name", "POST", GRP, group_body(name="")),
    bad("blank group name", "POST", GRP, group_body(name="\t "), II),
    bad("oversized group name", "PATCH", SUPPORT, {"name": "z" * 201}),
    bad("empty account name", "PATCH", ACC, {"name": ""}),
    bad("oversized account name", "PATCH", ACC, {"name": "a" * 201}),
    bad("oversized label", "POST", NUM, number_body(label="l" * 201)),
    bad("label with a newline", "PATCH", HOTLINE, {"label": "night\nline"}, II),
    bad("label with a null byte", "POST", NUM, number_body(label="\x00"), II),
    # emails
    bad("email without at", "POST", OP, operator_body(email="not-an-email"), II),
    bad("email without local part", "POST", OP, operator_body(email="@example.org"), II),
    bad("email without a dot", "POST", OP, operator_body(email="eve@localhost"), II),
    bad("email with a space", "POST", OP, operator_body(email="eve smith@example.org"), II),
    bad("email in brackets", "POST", OP, operator_body(email="<eve@example.org>"), II),
    bad("email with a null byte", "POST", OP, operator_body(email="eve@example.org\x00"), II),
    bad("two character email", "POST", OP, operator_body(email="ab")),
    bad("oversized email", "POST", OP, operator_body(email="e" * 320 + "@example.org")),
    bad("patch invalid email", "PATCH", ANA, {"email": "ana"}, II),
    bad("invalid supervisor email", "POST", SUP, supervisor_body(email="sue@"), II),
    bad("patch invalid supervisor email", "PATCH", SAM, {"email": "sam at acme"}, II),
    # passwords
    bad("short operator password", "POST", OP, operator_body(password="short")),
    bad("oversized password", "POST", SUP, supervisor_body(password="p" * 257)),
    bad("short api password", "PATCH", ACC, {"password": "short"}),
    # settings and lists
    bad("65 group settings", "POST", GRP, group_body(settings=MANY_SETTINGS), II),
    bad("65 account settings", "PATCH", ACC, {"settings": MANY_SETTINGS}, II),
    bad("51 origins", "PATCH", ACC, {"allowed_origins": MANY_ORIGINS}),
    bad("oversized crm_url", "PATCH", ACC, {"crm_url": "https://crm.example/" + "p" * 2000}),
]


@pytest.mark.parametrize("case", BAD_BODIES)
def test_a_bad_body_is_refused_precisely_and_changes_nothing(
    client: httpx.Client, settings: Settings, acme: SeededAccount, case: Bad
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.request(
            case.method, fill(case.route, acme), auth=acme.auth, json=resolve(case.body, acme)
        )
    refused = expect_error(answer, 400, case.code)
    if case.code == "validation_failed":
        problems = refused["details"]["errors"]
        assert problems
        assert all(set(p) == {"field", "problem"} for p in problems)


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("POST", OP, {"name": "Eve", "email": "ANA@acme.example"}),
        ("POST", OP, {"name": "Eve", "email": " ana@acme.example "}),
        ("PATCH", "/operators/{other}", {"email": "Ana@Acme.Example"}),
        ("POST", SUP, {"name": "Sue", "email": "SAM@acme.example"}),
    ],
    ids=["operator upper case", "operator blanks", "operator patch", "supervisor"],
)
def test_a_duplicate_email_is_409_and_changes_nothing(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    method: str,
    route: str,
    body: dict[str, Any],
) -> None:
    path = API + route.replace("{other}", str(acme.other_id_agent))
    with nothing_changes(client, settings, acme):
        answer = client.request(method, path, auth=acme.auth, json=body)
    expect_error(answer, 409, "duplicate_email")


def test_a_supervisor_cannot_take_another_supervisors_email(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    body = {"name": "Sue", "email": "sue@acme.example"}
    sue = ok(client.post(f"{API}/supervisors", auth=acme.auth, json=body), 201)
    path = f"{API}/supervisors/{sue['id_admin']}"
    with nothing_changes(client, settings, acme):
        answer = client.patch(path, auth=acme.auth, json={"email": acme.admin_email.upper()})
    expect_error(answer, 409, "duplicate_email")


def test_renaming_a_group_to_an_existing_name_is_409(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    sales = ok(client.post(f"{API}/groups", auth=acme.auth, json={"name": "Sales"}), 201)
    with nothing_changes(client, settings, acme):
        answer = client.patch(
            f"{API}/groups/{sales['id_group']}", auth=acme.auth, json={"name": "support"}
        )
    expect_error(answer, 409, "duplicate_group_name")


# bad input: phone numbers

INVALID_NUMBERS = [
    pytest.param("abc", id="letters"),
    pytest.param("3317020020a", id="trailing letter"),
    pytest.param("33 1 70 2O 02 10", id="letter O for zero"),
    pytest.param("331", id="too short"),
    pytest.param("1", id="one digit"),
    pytest.param("3317020021012345", id="16 digits"),
    pytest.param("+", id="plus alone"),
    pytest.param("++33170200210", id="two pluses"),
    pytest.param("33170200210;DROP", id="sql tail"),
    pytest.param("0033170200210", id="international prefix"),
    pytest.param("99999999999", id="no such country"),
    pytest.param("+33\x00170200210", id="null byte"),
    pytest.param("٣٣١٧٠٢٠٠٢١٠", id="arabic-indic digits"),
]


@pytest.mark.parametrize("e164", INVALID_NUMBERS)
def test_creating_an_invalid_phone_number_is_400_invalid_phone_number(
    client: httpx.Client, settings: Settings, acme: SeededAccount, e164: str
) -> None:
    body = {"e164": e164, "id_group": acme.id_group}
    with nothing_changes(client, settings, acme):
        answer = client.post(f"{API}/numbers", auth=acme.auth, json=body)
    expect_error(answer, 400, "invalid_phone_number")


@pytest.mark.parametrize("e164", ["", "3" * 33], ids=["empty", "33 characters"])
def test_an_empty_or_overlong_e164_is_refused_by_the_schema(
    client: httpx.Client, settings: Settings, acme: SeededAccount, e164: str
) -> None:
    body = {"e164": e164, "id_group": acme.id_group}
    with nothing_changes(client, settings, acme):
        answer = client.post(f"{API}/numbers", auth=acme.auth, json=body)
    refused = expect_error(answer, 400, "validation_failed")
    assert refused["details"]["errors"][0]["field"] == "e164"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    ("segment", "code"),
    [
        ("abc", "invalid_phone_number"),
        ("331", "invalid_phone_number"),
        ("%2B", "invalid_phone_number"),
        ("%00", "invalid_phone_number"),
        ("%27%20OR%201%3D1", "invalid_phone_number"),
        ("9" * 33, "validation_failed"),
    ],
    ids=["letters", "too short", "plus", "null byte", "sql", "33 characters"],
)
def test_an_invalid_phone_number_in_the_path_is_400(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    method: str,
    segment: str,
    code: str,
) -> None:
    body = {"label": "X"} if method == "PATCH" else None
    with nothing_changes(client, settings, acme):
        answer = client.request(method, f"{API}/numbers/{segment}", auth=acme.auth, json=body)
    expect_error(answer, 400, code)


# bad input: the account's CRM addresses

HOSTILE_ORIGINS = [
    "javascript:alert(1)",
    "https://a.com/path",
    "https://*.a.com",
    "https://user@a.com",
    "https://user:secret@a.com",
    "*",
    "null",
    "",
    "a.com",
    "//a.com",
    "ftp://a.com",
    "file:///etc/passwd",
    "data:text/html,<script>alert(1)</script>",
    "https://a.com?x=1",
    "https://a.com#top",
    "https://a.com:99999",
    "https://a.com:port",
    "https://a.com,https://b.com",
    "https://a.com;script-src",
    "https://a.com'",
    "https://<script>.com",
    "https://" + "a" * 300 + ".com",
]


@pytest.mark.parametrize("origin", HOSTILE_ORIGINS)
def test_a_hostile_allowed_origin_is_400_and_changes_nothing(
    client: httpx.Client, settings: Settings, acme: SeededAccount, origin: str
) -> None:
    body = {"allowed_origins": ["https://crm.acme.example", origin]}
    with nothing_changes(client, settings, acme):
        answer = client.patch(f"{API}/account", auth=acme.auth, json=body)
    expect_error(answer, 400, "invalid_input")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://crm.acme.example",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "crm.acme.example",
        "//crm.acme.example/calls",
        "https://",
        "https://crm.acme.example/a b",
        'https://crm.acme.example/"onmouseover="alert(1)',
        "   ",
    ],
)
def test_a_crm_url_that_is_not_absolute_http_is_400_and_changes_nothing(
    client: httpx.Client, settings: Settings, acme: SeededAccount, url: str
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.patch(f"{API}/account", auth=acme.auth, json={"crm_url": url})
    expect_error(answer, 400, "invalid_input")


def test_a_refused_account_patch_applies_none_of_its_valid_fields(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    body = {
        "name": "Renamed",
        "crm_url": "https://crm.acme.example",
        "password": "a-brand-new-api-password",
        "allowed_origins": ["https://crm.acme.example", "https://*.evil.example"],
    }
    with nothing_changes(client, settings, acme):
        answer = client.patch(f"{API}/account", auth=acme.auth, json=body)
    expect_error(answer, 400, "invalid_input")


# bad input: paths and query strings

BAD_IDS = [
    pytest.param("0", id="zero"),
    pytest.param("-1", id="negative"),
    pytest.param(str(MAX_ID + 1), id="2**31"),
    pytest.param("9" * 30, id="huge"),
    pytest.param("abc", id="letters"),
    pytest.param("1.5", id="decimal"),
    pytest.param("1e3", id="exponent"),
    pytest.param("0x10", id="hex"),
    pytest.param("%F0%9F%98%80", id="emoji"),
    pytest.param("%00", id="null byte"),
    pytest.param("1%20OR%201%3D1", id="sql"),
]
ID_ROUTES = ["/operators/{}", "/supervisors/{}", "/groups/{}"]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("route", ID_ROUTES)
@pytest.mark.parametrize("segment", BAD_IDS)
def test_an_id_that_is_not_a_positive_32_bit_integer_is_400(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    method: str,
    route: str,
    segment: str,
) -> None:
    body = {"name": "X"} if method == "PATCH" else None
    with nothing_changes(client, settings, acme):
        answer = client.request(method, API + route.format(segment), auth=acme.auth, json=body)
    refused = expect_error(answer, 400, "validation_failed")
    assert refused["details"]["errors"][0]["field"].startswith("path.")


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    ("route", "code"),
    list(zip(ID_ROUTES, ["unknown_operator", "unknown_supervisor", "unknown_group"], strict=True)),
)
def test_the_largest_id_is_simply_not_found(
    client: httpx.Client, acme: SeededAccount, method: str, route: str, code: str
) -> None:
    body = {"name": "X"} if method == "PATCH" else None
    answer = client.request(method, API + route.format(MAX_ID), auth=acme.auth, json=body)
    expect_error(answer, 404, code)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": -1},
        {"limit": "ten"},
        {"limit": "9" * 40},
        {"offset": -1},
        {"offset": 10_000_001},
        {"offset": "x"},
        # Plain digits only: int() and pydantic's lax mode read all of these as numbers.
        {"limit": "1_0"},
        {"limit": " 5"},
        {"limit": "+5"},
        {"limit": "5.0"},
        {"limit": "\u0665"},  # Arabic-Indic 5
        {"offset": "0_1"},
    ],
    ids=str,
)
def test_a_bad_page_is_400(
    client: httpx.Client, acme: SeededAccount, kind: str, params: dict[str, Any]
) -> None:
    answer = client.get(f"{API}/{kind}", params=params, auth=acme.auth)
    expect_error(answer, 400, "validation_failed")


@pytest.mark.parametrize("kind", ["operators", "supervisors", "groups"])
@pytest.mark.parametrize(
    "written", ["0_{}", " {}", "{} ", "+{}", "{}.0", "0x{}", "{}\u0660"], ids=repr
)
def test_an_id_not_written_in_plain_digits_is_400(
    client: httpx.Client, acme: SeededAccount, kind: str, written: str
) -> None:
    """``0_3`` would be id 3 for int(): an id in the path is the digits 0-9 only."""
    first = ok(client.get(f"{API}/{kind}", auth=acme.auth))["items"][0]
    id_ = next(v for k, v in first.items() if k.startswith("id_"))
    ok(client.get(f"{API}/{kind}/{id_}", auth=acme.auth))
    answer = client.get(f"{API}/{kind}/{quote(written.format(id_))}", auth=acme.auth)
    expect_error(answer, 400, "validation_failed")


# bad input: size and depth


@pytest.mark.parametrize(
    ("method", "route"),
    [("POST", "/operators"), ("PATCH", "/account"), ("PATCH", "/groups/{id_group}")],
)
def test_a_body_over_one_megabyte_is_413(
    client: httpx.Client, settings: Settings, acme: SeededAccount, method: str, route: str
) -> None:
    content = b'{"name": "' + b"a" * (1024 * 1024 + 1) + b'"}'
    with nothing_changes(client, settings, acme):
        answer = raw(client, method, fill(route, acme), acme, content)
    expect_error(answer, 413, "body_too_large")


def test_a_chunked_body_over_one_megabyte_is_413(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    content = b'{"name": "' + b"a" * (1024 * 1024 + 1) + b'"}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(content), 16 * 1024):
            yield content[start : start + 16 * 1024]

    with nothing_changes(client, settings, acme):
        answer = client.post(
            f"{API}/groups", auth=acme.auth, content=chunks(), headers=JSON_HEADERS
        )
    expect_error(answer, 413, "body_too_large")


def test_a_hundred_thousand_nested_brackets_are_refused_without_a_500(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    with nothing_changes(client, settings, acme):
        answer = raw(client, "POST", f"{API}/groups", acme, b"[" * 100_000)
    expect_error(answer, 413, "body_too_large")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[" * 30_000 + b"]" * 30_000, id="balanced brackets"),
        pytest.param(b"[" * 60_000, id="unclosed brackets"),
        pytest.param(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, id="nested objects"),
        pytest.param(
            b'{"name": "Deep", "settings": {"x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}}",
            id="deep settings",
        ),
    ],
)
def test_deeply_nested_json_within_the_size_limit_is_400(
    client: httpx.Client, settings: Settings, acme: SeededAccount, content: bytes
) -> None:
    with nothing_changes(client, settings, acme):
        answer = raw(client, "POST", f"{API}/groups", acme, content)
    settle(answer)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) <= ERROR_KEYS
    assert body["status"] == 400


@pytest.mark.parametrize(
    ("method", "route", "field"),
    [("POST", "/groups", "group"), ("PATCH", "/account", "account")],
    ids=["group settings", "account settings"],
)
def test_settings_nested_too_deeply_are_400_and_not_stored(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    method: str,
    route: str,
    field: str,
) -> None:
    deep = b"[" * 300 + b"]" * 300
    name = b'"name": "Deep", ' if field == "group" else b""
    content = b"{" + name + b'"settings": {"x": ' + deep + b"}}"
    with nothing_changes(client, settings, acme):
        answer = raw(client, method, API + route, acme, content)
    expect_error(answer, 400, "invalid_input")


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_json_number_constants_are_400_invalid_json(
    client: httpx.Client, settings: Settings, acme: SeededAccount, constant: bytes
) -> None:
    content = b'{"name": "Odd", "settings": {"x": ' + constant + b"}}"
    with nothing_changes(client, settings, acme):
        answer = raw(client, "POST", f"{API}/groups", acme, content)
    expect_error(answer, 400, "invalid_json")


def test_a_body_that_is_not_utf8_is_400_invalid_json(
    client: httpx.Client, settings: Settings, acme: SeededAccount
) -> None:
    with nothing_changes(client, settings, acme):
        answer = raw(client, "POST", f"{API}/groups", acme, b'{"name": "\xff\xfe"}')
    expect_error(answer, 400, "invalid_json")


@pytest.mark.parametrize(
    ("method", "route", "content"),
    [
        ("POST", GRP, rb'{"name": "a\ud800b"}'),
        ("PATCH", ACC, rb'{"name": "\udfff"}'),
        ("POST", OP, rb'{"name": "Eve", "email": "e\ud800@example.org"}'),
        ("PATCH", ANA, rb'{"password": "\ud800\ud800\ud800\ud800\ud800\ud800\ud800\ud800"}'),
        ("POST", NUM, rb'{"e164": "\ud800", "id_group": 1}'),
        ("PATCH", HOTLINE, rb'{"label": "\udc00"}'),
        ("PATCH", ACC, rb'{"crm_url": "https://crm.example/\ud800"}'),
    ],
    ids=["group name", "account name", "email", "password", "e164", "label", "crm_url"],
)
def test_a_lone_surrogate_in_a_text_field_is_400(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    method: str,
    route: str,
    content: bytes,
) -> None:
    with nothing_changes(client, settings, acme):
        answer = raw(client, method, fill(route, acme), acme, content)
    expect_error(answer, 400, "invalid_json")


@pytest.mark.parametrize(
    ("method", "route", "content"),
    [
        ("PATCH", ACC, rb'{"allowed_origins": ["https://a\ud800.example"]}'),
        ("PATCH", ACC, rb'{"settings": {"x": ["\udc00"]}}'),
        ("POST", GRP, rb'{"name": "Odd", "settings": {"x": "\ud800"}}'),
        ("POST", GRP, rb'{"name": "Odd", "settings": {"\ud800": 1}}'),
    ],
    ids=["allowed origin", "account settings", "group settings value", "group settings key"],
)
def test_a_lone_surrogate_nested_in_a_body_is_400_and_not_stored(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    method: str,
    route: str,
    content: bytes,
) -> None:
    with nothing_changes(client, settings, acme):
        answer = raw(client, method, fill(route, acme), acme, content)
    settle(answer)
    assert answer.status_code == 400, answer.text
    assert answer.json()["err_code"] in ("invalid_json", "validation_failed", "invalid_input")


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("POST", OP, operator_body(groups=[{"id_group": 2**63}])),
        ("PATCH", ANA, {"groups": [{"id_group": 2**63}]}),
        ("POST", NUM, {"e164": FREE_NUMBER, "id_group": 2**63}),
        ("PATCH", HOTLINE, {"id_group": 2**64}),
    ],
    ids=["operator membership", "operator patch", "number", "number patch"],
)
def test_a_huge_group_id_in_a_body_is_400(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    method: str,
    route: str,
    body: dict[str, Any],
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.request(method, fill(route, acme), auth=acme.auth, json=body)
    settle(answer)
    assert answer.status_code == 400, answer.text
    assert answer.json()["err_code"] in ("validation_failed", "invalid_input")


# hostile and unusual text

NAMED_RESOURCES = [
    pytest.param("POST", OP, operator_body(), "name", id="operator"),
    pytest.param("POST", SUP, supervisor_body(), "name", id="supervisor"),
    pytest.param("POST", GRP, group_body(), "name", id="group"),
    pytest.param("PATCH", ANA, {}, "name", id="operator patch"),
    pytest.param("PATCH", "/account", {}, "name", id="account"),
    pytest.param("POST", NUM, number_body(), "label", id="number label"),
]


@pytest.mark.parametrize(("method", "route", "base", "field"), NAMED_RESOURCES)
@pytest.mark.parametrize(
    "text",
    ["Ana\x00", "\x00", "Ana\x1b[31mRed", "Ana\nBob", "Ana\rBob", "Ana\tBob", "\x07bell"],
    ids=["trailing null", "null", "escape", "newline", "carriage return", "tab", "bell"],
)
def test_control_characters_in_names_are_400_and_change_nothing(
    client: httpx.Client,
    settings: Settings,
    acme: SeededAccount,
    method: str,
    route: str,
    base: dict[str, Any],
    field: str,
    text: str,
) -> None:
    body = resolve({**base, field: text}, acme)
    with nothing_changes(client, settings, acme):
        answer = client.request(method, fill(route, acme), auth=acme.auth, json=body)
    expect_error(answer, 400, "invalid_input")


@pytest.mark.parametrize(
    "text", ["Ana\x7f", "Ana\x9b31mRed", "Ana\x85Bob"], ids=["DEL", "CSI", "NEL"]
)
def test_del_and_c1_control_characters_in_names_are_400(
    client: httpx.Client, settings: Settings, acme: SeededAccount, text: str
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.post(f"{API}/groups", auth=acme.auth, json={"name": text})
    expect_error(answer, 400, "invalid_input")


TEXTS_KEPT_VERBATIM = [
    pytest.param("Zoë Ñúñez", id="accents"),
    pytest.param("李小龍", id="cjk"),
    pytest.param("مركز الاتصال", id="arabic"),
    pytest.param("Support 🎧📞", id="emoji"),
    pytest.param("e\u0301cole", id="combining accent"),
    pytest.param("<script>alert('x')</script>", id="script tag"),
    pytest.param('"><img src=x onerror=alert(1)>', id="attribute breakout"),
    pytest.param("Robert'); DROP TABLE operators;--", id="sql"),
    pytest.param("{{7*7}} ${7*7}", id="templates"),
    pytest.param("a" * 200, id="200 characters"),
    pytest.param("é" * 200, id="200 two-byte characters"),
]


@pytest.mark.parametrize(("method", "route", "base", "field"), NAMED_RESOURCES)
@pytest.mark.parametrize("text", TEXTS_KEPT_VERBATIM)
def test_unicode_and_markup_in_names_are_stored_verbatim(
    client: httpx.Client,
    acme: SeededAccount,
    method: str,
    route: str,
    base: dict[str, Any],
    field: str,
    text: str,
) -> None:
    body = resolve({**base, field: text}, acme)
    answer = client.request(method, fill(route, acme), auth=acme.auth, json=body)
    saved = ok(answer, 201 if method == "POST" else 200)
    assert saved[field] == text
    location = answer.headers.get("Location") or fill(route, acme)
    assert ok(client.get(location, auth=acme.auth))[field] == text


def test_names_are_trimmed_of_surrounding_blanks(client: httpx.Client, acme: SeededAccount) -> None:
    created = ok(client.post(f"{API}/groups", auth=acme.auth, json={"name": "  Sales  "}), 201)
    assert created["name"] == "Sales"


# the API's surface


def test_docs_are_served_as_html(client: httpx.Client) -> None:
    answer = client.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in answer.text


def test_the_openapi_document_lists_the_admin_and_token_paths(client: httpx.Client) -> None:
    paths = ok(client.get("/openapi.json"))["paths"]
    expected = {
        "/api/v1/account": {"get", "patch"},
        "/api/v1/operators": {"get", "post"},
        "/api/v1/operators/{id_agent}": {"get", "patch", "delete"},
        "/api/v1/supervisors": {"get", "post"},
        "/api/v1/supervisors/{id_admin}": {"get", "patch", "delete"},
        "/api/v1/groups": {"get", "post"},
        "/api/v1/groups/{id_group}": {"get", "patch", "delete"},
        "/api/v1/numbers": {"get", "post"},
        "/api/v1/numbers/{e164}": {"get", "patch", "delete"},
        "/vm/token": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v1/nope", "/api/v2/operators", "/api/v1/operators/1/extra"]
)
def test_an_unknown_route_is_a_json_404(
    client: httpx.Client, acme: SeededAccount, path: str
) -> None:
    expect_error(client.get(path, auth=acme.auth), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("PUT", "/account"),
        ("DELETE", "/account"),
        ("POST", "/account"),
        ("PUT", "/operators/{id_agent}"),
        ("POST", "/operators/{id_agent}"),
        ("DELETE", "/operators"),
        ("PATCH", "/groups"),
        ("PUT", "/numbers/{number}"),
    ],
)
def test_a_wrong_method_is_a_json_405(
    client: httpx.Client, settings: Settings, acme: SeededAccount, method: str, route: str
) -> None:
    with nothing_changes(client, settings, acme):
        answer = client.request(method, fill(route, acme), auth=acme.auth, json={"name": "X"})
    expect_error(answer, 405, "method_not_allowed")
    assert answer.headers.get("Allow")
