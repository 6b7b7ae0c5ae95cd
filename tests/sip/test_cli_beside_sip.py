"""The CLI runs beside a SIP server started with the same settings: it opens no SIP socket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sip.platform import sip_platform
from tests.sip.test_hostile import Peer
from tests.test_cli import cli_env, voicemgmt

pytestmark = pytest.mark.sip


def test_cli_commands_work_while_a_sip_server_runs_with_the_same_settings(
    tmp_path: Path,
) -> None:
    with sip_platform(tmp_path) as platform:
        settings = platform.settings
        env = cli_env(
            Path(settings.data_dir),
            VM_SWITCH="sip",
            VM_SIP_LISTEN=settings.sip_listen,
            VM_RTP_PORTS=settings.rtp_ports,
            VM_SIP_TRUNK_SOURCES=json.dumps(settings.sip_trunk_sources),
        )
        listed = voicemgmt("account", "list", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        assert platform.acme.login in {row["login"] for row in json.loads(listed.stdout)}
        device = voicemgmt(
            "operator",
            "sip-device",
            "--account",
            platform.acme.login,
            "--id",
            str(platform.acme.id_agent),
            "--username",
            "ana",
            "--contact",
            "sip:ana@127.0.0.1:5080",
            "--json",
            env=env,
        )
        assert device.returncode == 0, device.stderr
        upgraded = voicemgmt("db", "upgrade", env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        # The server still holds its SIP port and answers on it.
        peer = Peer(platform)
        answer = peer.final(peer.request("OPTIONS"))
        peer.close()
        assert answer is not None
        assert answer.status == 200
