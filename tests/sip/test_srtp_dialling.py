"""SRTP on the legs the platform dials: a trunk over verified TLS (click-to-call), and a phone
whose policy cannot be met."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.sip.certs import make_certificates
from tests.sip.peers import baresip, correlation, need, read_wav
from tests.sip.platform import CALLER_VOICE, sip_platform
from tests.test_calls_api import Operator, events, next_event, record_of

pytestmark = pytest.mark.sip


@pytest.mark.parametrize("trusted", [True, False])
def test_click_to_call_reaches_the_trunk_over_verified_tls_with_srtp(
    tmp_path: Path, trusted: bool
) -> None:
    """The customer, a baresip "carrier" listening on TLS, is dialled over TLS with SRTP
    required. Its certificate is signed by the CA the platform trusts (``VM_SIP_TLS_CA_FILE``),
    or by another one: then the platform refuses the connection and the call fails."""
    need("baresip")
    ours = make_certificates(tmp_path / "certs")  # the platform's, and the CA it trusts
    carrier_certs = ours if trusted else make_certificates(tmp_path / "stranger")
    config = (f"sip_certificate {carrier_certs.chain}", "module srtp.so")
    with baresip(
        tmp_path, "carrier", source=tmp_path / "caller.wav", answermode="auto", extra_config=config
    ) as carrier:
        overrides: dict[str, Any] = {
            "sip_trunk_outbound": f"127.0.0.1:{carrier.sip_port + 1}",  # its TLS listener
            "sip_trunk_transport": "tls",
            "sip_trunk_media_encryption": "required",
        }
        with (
            sip_platform(tmp_path, streams=True, **overrides) as platform,
            baresip(tmp_path, "ana", source=platform.operator_voice) as phone,
        ):
            carrier.add_account(
                "sip:33612345678@127.0.0.1;transport=tls", regint="0", mediaenc="srtp-mand"
            )
            carrier.start()
            phone.start()
            acme = platform.acme
            with platform.client() as client:
                client.patch(
                    "/api/v1/account",
                    auth=acme.auth,
                    json={"settings": {"caller_id": "33170200299"}},
                ).raise_for_status()
                client.put(
                    f"/api/v1/operators/{acme.id_agent}/sip-device",
                    auth=acme.auth,
                    json={"username": "ana", "contact": f"sip:ana@{phone.address}"},
                ).raise_for_status()
            ana = Operator(platform.server, acme, acme.id_agent)
            ana.status("online")
            with events(platform.server, ana.token) as ws:
                ws.recv(timeout=5)
                answer = ana.http.post("/api/v1/me/calls", json={"to": "+33612345678"})
                assert answer.status_code == 201, answer.text
                call_id = answer.json()["id_call"]
                phone.wait_event("CALL_INCOMING")
                phone.command("accept")
                if trusted:
                    carrier.wait_event("CALL_ESTABLISHED")
                    time.sleep(3.0)
                    phone.command("hangup")
                next_event(ws, "call.ended", timeout=20)
            record = record_of(platform.server, acme, call_id)
            ana.http.close()
            if trusted:
                heard = read_wav(phone.recording("dec"))[0]
                log = (carrier.dir / "baresip.log").read_text(errors="replace")
    if trusted:
        assert record["outcome"] == "answered"
        assert "SRTP is Enabled" in log
        assert correlation(CALLER_VOICE, heard[-int(2.5 * 8000) : -int(0.5 * 8000)]) > 0.9
    else:
        assert record["outcome"] == "failed"


def test_a_phone_that_requires_srtp_is_not_rung_over_udp(tmp_path: Path) -> None:
    """SDES keys are never sent in clear: a ``required`` phone reached over UDP stays silent
    (the log says why), the same phone with ``optional`` rings."""
    need("baresip")
    with (
        sip_platform(tmp_path) as platform,
        baresip(tmp_path, "caller", source=platform.caller_voice) as caller,
        baresip(tmp_path, "ana", source=platform.operator_voice) as phone,
    ):
        phone.start()
        caller.start()
        acme = platform.acme

        def device(policy: str) -> None:
            with platform.client() as client:
                client.put(
                    f"/api/v1/operators/{acme.id_agent}/sip-device",
                    auth=acme.auth,
                    json={
                        "username": "ana",
                        "contact": f"sip:ana@{phone.address}",
                        "media_encryption": policy,
                    },
                ).raise_for_status()

        device("required")
        ana = Operator(platform.server, acme, acme.id_agent)
        ana.status("online")
        caller.command("dial", platform.uri_of_number)
        caller.wait_event("CALL_ESTABLISHED")
        with pytest.raises(TimeoutError):
            phone.wait_event("CALL_INCOMING", timeout=3)
        caller.command("hangup")
        caller.wait_event("CALL_CLOSED")
        time.sleep(6)  # the driver's device cache (5 s) forgets the old policy
        device("optional")
        caller.command("dial", platform.uri_of_number)
        phone.wait_event("CALL_INCOMING")
        caller.command("hangup")
        ana.http.close()
