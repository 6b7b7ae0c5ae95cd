from __future__ import annotations

from tests.support import LiveServer, SeededAccount


def test_an_operator_token_is_issued_over_real_http(
    server: LiveServer, acme: SeededAccount
) -> None:
    with server.client() as client:
        answer = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent})
    assert answer.status_code == 200
    assert answer.json()["token"].startswith("vm_")
