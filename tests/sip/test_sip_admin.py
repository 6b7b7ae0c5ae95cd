"""Operators' SIP devices through the admin API and the CLI, and the dial-out rules."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support import LiveServer, SeededAccount, run_on
from tests.test_cli import cli_env, voicemgmt
from voicemgmt.adapters.sql.repository import count_rows
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings
from voicemgmt.domain.errors import InvalidInput
from voicemgmt.domain.sip import DialOutRules
from voicemgmt.services.sip_digest import ha1_pair


def device_url(id_agent: int) -> str:
    return f"/api/v1/operators/{id_agent}/sip-device"


def test_a_device_is_set_read_and_deleted_and_only_ha1_is_stored(
    server: LiveServer, acme: SeededAccount, settings: Settings
) -> None:
    with server.client() as client:
        put = client.put(
            device_url(acme.id_agent),
            auth=acme.auth,
            json={"username": "ana.desk", "password": "phone-secret-1"},
        )
        assert put.status_code == 200, put.text
        assert put.json() == {
            "id_agent": acme.id_agent,
            "username": "ana.desk",
            "realm": "voicemgmt",
            "contact": None,
            "has_password": True,
            "media_encryption": "optional",
        }
        assert client.get(device_url(acme.id_agent), auth=acme.auth).json() == put.json()
        required = client.put(
            device_url(acme.id_agent),
            auth=acme.auth,
            json={"username": "ana.desk", "media_encryption": "required"},
        )
        assert required.status_code == 200, required.text  # the password is kept
        assert required.json()["media_encryption"] == "required"
        assert required.json()["has_password"] is True
        again = client.put(
            device_url(acme.id_agent),
            auth=acme.auth,
            json={"username": "ana.desk", "contact": "sips:ana@192.0.2.10:5061"},
        )
        assert again.json()["media_encryption"] == "required"  # omitted: unchanged
        assert again.json()["contact"] == "sips:ana@192.0.2.10:5061"

        async def stored(c: Container) -> tuple[str | None, str | None]:
            device = await c.sip_devices.device(acme.id, acme.id_agent)
            return device.ha1_md5, device.ha1_sha256

        assert run_on(settings, stored) == ha1_pair("ana.desk", "voicemgmt", "phone-secret-1")
        assert client.delete(device_url(acme.id_agent), auth=acme.auth).status_code == 204
        gone = client.get(device_url(acme.id_agent), auth=acme.auth)
        assert gone.status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"username": "ana"}, "invalid_input"),  # neither password nor contact
        ({"username": "a b c", "password": "phone-secret-1"}, "invalid_input"),
        ({"username": "ana", "password": "short"}, "validation_failed"),
        ({"username": "ana", "contact": "http://example.com"}, "invalid_input"),
        ({"username": "ana", "contact": "sip:ana@host:99999"}, "invalid_input"),
        ({"username": "ana", "password": "phone-secret-1", "extra": 1}, "validation_failed"),
        ({"username": 12, "password": "phone-secret-1"}, "validation_failed"),
        (
            {"username": "ana", "password": "phone-secret-1", "media_encryption": "yes"},
            "validation_failed",
        ),
        (
            {"username": "ana", "password": "phone-secret-1", "media_encryption": None, "x": 1},
            "validation_failed",
        ),
        (
            {"username": "ana", "password": "phone-secret-1", "media_encryption": "x" * 10_000},
            "validation_failed",
        ),
        ({"username": "ana", "contact": "sip:ana@host:5060;transport=sctp"}, "invalid_input"),
        ({"username": "ana", "contact": "sips:ana@host:70000"}, "invalid_input"),
    ],
)
def test_bad_device_input_is_400_and_stores_nothing(
    server: LiveServer,
    acme: SeededAccount,
    settings: Settings,
    body: dict[str, object],
    code: str,
) -> None:
    with server.client() as client:
        answer = client.put(device_url(acme.id_agent), auth=acme.auth, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["err_code"] == code

    async def rows(c: Container) -> int:
        return await count_rows(c.engine, "sip_devices")

    assert run_on(settings, rows) == 0


def test_a_username_is_unique_and_another_accounts_operator_is_not_found(
    server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    with server.client() as client:
        body = {"username": "desk-1", "password": "phone-secret-1"}
        assert client.put(device_url(acme.id_agent), auth=acme.auth, json=body).status_code == 200
        taken = client.put(device_url(acme.other_id_agent), auth=acme.auth, json=body)
        assert taken.status_code == 409
        assert taken.json()["err_code"] == "duplicate_sip_username"
        foreign = client.put(
            device_url(acme.id_agent), auth=globex.auth, json={**body, "username": "desk-2"}
        )
        assert foreign.status_code == 404
        unauthenticated = httpx.put(f"{server.base_url}{device_url(acme.id_agent)}", json=body)
        assert unauthenticated.status_code == 401


def test_the_cli_sets_a_static_contact(
    tmp_path: Path, acme: SeededAccount, settings: Settings
) -> None:
    env = cli_env(Path(settings.data_dir))
    done = voicemgmt(
        "operator",
        "sip-device",
        "--account",
        acme.login,
        "--id",
        str(acme.id_agent),
        "--username",
        "ana-static",
        "--contact",
        "sip:ana@127.0.0.1:5080",
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["contact"] == "sip:ana@127.0.0.1:5080"
    bad = voicemgmt(
        "operator",
        "sip-device",
        "--account",
        acme.login,
        "--id",
        str(acme.id_agent),
        "--username",
        "ana-static",
        "--contact",
        "not-a-uri",
        env=env,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:")
    assert "Traceback" not in bad.stderr
    tls = voicemgmt(
        "operator",
        "sip-device",
        "--account",
        acme.login,
        "--id",
        str(acme.id_agent),
        "--username",
        "ana-static",
        "--contact",
        "sip:ana@127.0.0.1:5081;transport=tls",
        "--media-encryption",
        "required",
        "--json",
        env=env,
    )
    assert tls.returncode == 0, tls.stderr
    assert json.loads(tls.stdout)["media_encryption"] == "required"
    wrong = voicemgmt(
        "operator",
        "sip-device",
        "--account",
        acme.login,
        "--id",
        str(acme.id_agent),
        "--username",
        "ana-static",
        "--contact",
        "sip:ana@127.0.0.1:5081",
        "--media-encryption",
        "sometimes",
        env=env,
    )
    assert wrong.returncode == 2
    assert "media_encryption must be required, optional or off" in wrong.stderr


@pytest.mark.parametrize(
    ("number", "refusal"),
    [
        ("33612345678", None),  # a French mobile
        ("+33170200200", None),
        ("33899123456", "premium_not_allowed"),  # French premium rate
        ("14155550123", "international_not_allowed"),
        ("12", "invalid_number"),
        ("3361234567x", "invalid_number"),
    ],
)
def test_default_dial_out_rules_allow_national_numbers_only(
    number: str, refusal: str | None
) -> None:
    assert DialOutRules().refusal(number) == refusal


def test_dial_out_rules_follow_the_account_settings() -> None:
    rules = DialOutRules.from_settings(
        {"allowed_prefixes": ["336", "337"], "allow_international": True, "allow_premium": False}
    )
    assert rules.refusal("33612345678") is None
    assert rules.refusal("33170200200") == "prefix_not_allowed"
    assert rules.refusal("14155550123") == "prefix_not_allowed"
    assert DialOutRules(allow_premium=True).refusal("33899123456") is None
    assert DialOutRules(enabled=False).refusal("33612345678") == "dial_out_disabled"


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"allowed_prefixes": "33"},
        {"allowed_prefixes": ["+33"]},
        {"allow_premium": "yes"},
        {"home_country": 0},
        {"home_country": True},
        {"something_else": 1},
    ],
)
def test_malformed_dial_out_rules_are_refused(raw: object) -> None:
    with pytest.raises(InvalidInput):
        DialOutRules.from_settings(raw)
