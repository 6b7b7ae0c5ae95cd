"""``POST /vm/token`` and ``DELETE /vm/token/<token>`` take JSON bodies only (415 otherwise),
so that a cross-site form cannot make a browser's Basic credentials mint or delete tokens;
the guide's commands, which send ``Content-Type: application/json``, keep working."""

from __future__ import annotations

import pytest

from tests.support import LiveServer, SeededAccount
from tests.test_token_api import GUIDE_1_1, GUIDE_1_2, me, run_guide_command, token_count
from voicemgmt.config import Settings

FORMS = {
    "text/plain": ('{"id_agent": 1}', "text/plain"),
    "urlencoded": ("id_agent=1", "application/x-www-form-urlencoded"),
    "multipart": (
        '--b\r\nContent-Disposition: form-data; name="id_agent"\r\n\r\n1\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
    "no content type": ('{"id_agent": 1}', None),
}


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_a_token_is_not_minted_from_a_non_json_body(
    server: LiveServer, acme: SeededAccount, settings: Settings, form: tuple[str, str | None]
) -> None:
    body, content_type = form
    before = token_count(settings)
    headers = {"Content-Type": content_type} if content_type else {}
    with server.client() as client:
        answer = client.post("/vm/token", auth=acme.auth, content=body, headers=headers)
    assert answer.status_code == 415
    assert answer.json() == {
        "status": 415,
        "err_code": "unsupported_media_type",
        "err_msg": "send the body as JSON, with the header Content-Type: application/json",
        "details": {},
    }
    assert token_count(settings) == before


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_a_token_is_not_deleted_with_a_non_json_body(
    server: LiveServer, acme: SeededAccount, form: tuple[str, str | None]
) -> None:
    body, content_type = form
    with server.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent})
        token_value = token.json()["token"]
        headers = {"Content-Type": content_type} if content_type else {}
        answer = client.request(
            "DELETE", f"/vm/token/{token_value}", auth=acme.auth, content=body, headers=headers
        )
    assert answer.status_code == 415
    assert answer.json()["err_code"] == "unsupported_media_type"
    assert me(server, token_value).status_code == 200


def test_a_delete_without_a_body_needs_no_content_type(
    server: LiveServer, acme: SeededAccount
) -> None:
    with server.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent})
        answer = client.delete(f"/vm/token/{token.json()['token']}", auth=acme.auth)
    assert answer.status_code == 200
    assert me(server, token.json()["token"]).status_code == 401


def test_json_with_a_charset_or_a_json_suffix_is_json(
    server: LiveServer, acme: SeededAccount
) -> None:
    with server.client() as client:
        for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
            answer = client.post(
                "/vm/token",
                auth=acme.auth,
                content=b'{"id_agent": 1}',
                headers={"Content-Type": content_type},
            )
            assert answer.status_code == 200, answer.text


def test_the_guides_curl_commands_still_mint_and_delete(
    server: LiveServer, acme: SeededAccount
) -> None:
    status, body = run_guide_command(
        GUIDE_1_1, server, login=acme.login, **{"pass": acme.password}, id_agent=acme.id_agent
    )
    assert status == 200
    status, deleted = run_guide_command(
        GUIDE_1_2,
        server,
        login=acme.login,
        **{"pass": acme.password},
        ip="203.0.113.7",
        id_agent=acme.id_agent,
        token=body["token"],
    )
    assert (status, deleted["deleted"]) == (200, True)


def test_the_openapi_document_lists_the_415(server: LiveServer) -> None:
    with server.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert "415" in paths["/vm/token"]["post"]["responses"]
    assert "415" in paths["/vm/token/{token}"]["delete"]["responses"]
