"""The product with its SIP driver on loopback, seeded, with phones for its operators."""

from __future__ import annotations

import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.sip.certs import Certificates, make_certificates
from tests.sip.peers import free_udp_port, tone_sequence, write_wav
from tests.support import (
    LiveServer,
    SeededAccount,
    live_server,
    make_settings,
    run_on,
    seed_two_accounts,
)
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings

PROMPT = tone_sequence([440, 660, 550, 880, 495, 740, 620, 990], 0.25)
CALLER_VOICE = tone_sequence([300, 1200, 450, 1000, 350, 1300, 500, 1100] * 6, 0.3)
OPERATOR_VOICE = tone_sequence([700, 250, 1500, 400, 1250, 600, 1400, 320] * 6, 0.3)


@dataclass
class SipPlatform:
    server: LiveServer
    settings: Settings
    acme: SeededAccount
    globex: SeededAccount
    sip_port: int
    workdir: Path
    caller_voice: Path
    operator_voice: Path
    prompt: array.array[int]

    @property
    def uri_of_number(self) -> str:
        return f"sip:+{self.acme.number}@127.0.0.1:{self.sip_port}"

    def client(self) -> Any:
        return self.server.client()


def sip_settings(
    tmp_path: Path, *, streams: bool = False, **overrides: Any
) -> tuple[Settings, int]:
    """``streams``: SIP over TCP on the UDP port too, TLS on the next one (a throwaway CA's
    certificate, in ``tmp_path/certs``)."""
    sip_port = free_udp_port(gap=2)
    rtp = free_udp_port(pairs=60)
    values: dict[str, Any] = {
        "switch": "sip",
        "sip_listen": f"127.0.0.1:{sip_port}",
        "sip_trunk_sources": ["127.0.0.1/32"],
        "rtp_ports": f"{rtp}-{rtp + 119}",
        "sip_trunk_outbound": None,
    }
    if streams:  # a test may have made them already (to give a peer the same CA)
        folder = tmp_path / "certs"
        certs = Certificates(
            folder / "ca.pem", folder / "cert.pem", folder / "key.pem", folder / "chain.pem"
        )
        if not certs.ca.exists():
            certs = make_certificates(folder)
        values.update(
            sip_tcp_port=sip_port,
            sip_tls_port=sip_port + 1,
            sip_tls_cert=certs.cert,
            sip_tls_key=certs.key,
            sip_tls_ca_file=certs.ca,
        )
    values.update(overrides)
    return make_settings(tmp_path, "", **values), sip_port


@contextmanager
def sip_platform(
    tmp_path: Path,
    *,
    devices: dict[str, dict[str, str]] | None = None,
    streams: bool = False,
    **overrides: Any,
) -> Iterator[SipPlatform]:
    """The server with ``VM_SWITCH=sip``; ``devices`` maps "ana"/"bob" to device fields."""
    settings, sip_port = sip_settings(tmp_path, streams=streams, **overrides)
    prompts = Path(settings.data_dir) / "prompts"
    prompts.mkdir(parents=True, exist_ok=True)
    write_wav(prompts / "welcome.wav", PROMPT)
    caller_voice, operator_voice = tmp_path / "caller.wav", tmp_path / "operator.wav"
    write_wav(caller_voice, CALLER_VOICE)
    write_wav(operator_voice, OPERATOR_VOICE)
    acme, globex = seed_two_accounts(settings)
    if devices:

        async def job(container: Container) -> None:
            for who, fields in devices.items():
                operator_id = acme.id_agent if who == "ana" else acme.other_id_agent
                await container.sip_devices.set_device(acme.id, operator_id, **fields)

        run_on(settings, job)
    with live_server(settings) as server:
        yield SipPlatform(
            server,
            settings,
            acme,
            globex,
            sip_port,
            tmp_path,
            caller_voice,
            operator_voice,
            PROMPT,
        )
