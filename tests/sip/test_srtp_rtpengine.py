"""SRTP with the rtpengine media backend: SDES and DTLS-SRTP on the caller's side."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.sip.peers import baresip, correlation, need, read_wav, rtpengine
from tests.sip.platform import CALLER_VOICE, OPERATOR_VOICE, sip_platform
from tests.sip.test_srtp import tls_config
from tests.test_calls_api import Operator, events, next_event

pytestmark = pytest.mark.sip


@pytest.mark.parametrize("mediaenc", ["srtp-mand", "dtls_srtp"])
def test_with_rtpengine_a_caller_over_tls_with_srtp_hears_a_plain_phone(
    tmp_path: Path, mediaenc: str
) -> None:
    """rtpengine decrypts the caller's SRTP (SDES: answering with its own key; DTLS-SRTP: its
    fingerprint in our answer, the handshake its own); the operator's phone (``optional``) is
    plain RTP, which is all rtpengine's ops side does here."""
    need("baresip")
    with rtpengine(tmp_path) as daemon:
        media: dict[str, Any] = {
            "media": "rtpengine",
            "rtpengine_ng": f"127.0.0.1:{daemon.ng_port}",
            "rtpengine_dtmf": f"127.0.0.1:{daemon.dtmf_port}",
        }
        with sip_platform(tmp_path, streams=True, **media) as platform:
            acme = platform.acme
            tls_port = platform.sip_port + 1
            with (
                baresip(tmp_path, "ana", source=platform.operator_voice) as phone,
                baresip(
                    tmp_path,
                    "caller",
                    source=platform.caller_voice,
                    extra_config=(*tls_config(platform), "module dtls_srtp.so"),
                ) as caller,
            ):
                phone.start()
                caller.add_account(f"sip:caller@{caller.address}", regint="0", mediaenc=mediaenc)
                caller.start()
                with platform.client() as client:
                    client.put(
                        f"/api/v1/operators/{acme.id_agent}/sip-device",
                        auth=acme.auth,
                        json={"username": "ana", "contact": f"sip:ana@{phone.address}"},
                    ).raise_for_status()
                ana = Operator(platform.server, acme, acme.id_agent)
                ana.status("online")
                with events(platform.server, ana.token) as ws:
                    ws.recv(timeout=5)
                    caller.command("dial", f"sip:+{acme.number}@127.0.0.1:{tls_port};transport=tls")
                    caller.wait_event("CALL_ESTABLISHED")
                    phone.wait_event("CALL_INCOMING")
                    time.sleep(1.0)
                    phone.command("accept")
                    next_event(ws, "call.answered", timeout=15)
                    time.sleep(4.0)
                    caller.command("hangup")
                    next_event(ws, "call.ended", timeout=15)
                ana.http.close()
                heard_by_caller = read_wav(caller.recording("dec"))[0]
                heard_by_operator = read_wav(phone.recording("dec"))[0]
                log = (caller.dir / "baresip.log").read_text(errors="replace")
    if mediaenc == "dtls_srtp":  # rtpengine's fingerprint, as our answer gave it, checked
        assert "verified sha-256 fingerprint OK" in log
        assert "DTLS-SRTP complete (audio/RTP)" in log
    else:
        assert "SRTP is Enabled" in log
    assert correlation(CALLER_VOICE, heard_by_operator[-3 * 8000 : -1 * 8000]) > 0.9
    assert correlation(OPERATOR_VOICE, heard_by_caller[-3 * 8000 : -1 * 8000]) > 0.9
