"""Registrations are durable: a restart keeps a registered phone reachable until its expiry,
and expired registrations are purged.

A real baresip phone registers (regint 600: it will not register again during the test), the
server stops and starts again on the same database, and a caller's call rings the phone at the
contact it registered before the restart.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.sip.peers import baresip, need, write_wav
from tests.sip.platform import CALLER_VOICE, sip_platform, sip_settings
from tests.support import free_port, live_server, make_settings, run_on, seed_two_accounts
from tests.test_calls_api import Operator
from tests.test_cli import VOICEMGMT, cli_env
from voicemgmt.adapters.sql.repository import count_rows
from voicemgmt.adapters.sql.sip_registrations import SqlSipRegistrations
from voicemgmt.adapters.switch.sip.digest import DigestServer
from voicemgmt.adapters.switch.sip.registrar import Registrar
from voicemgmt.bootstrap import Container
from voicemgmt.domain.sip import SipRegistration

pytestmark = pytest.mark.sip
DEVICES = {
    "ana": {"username": "ana", "password": "ana-password"},
    "bob": {"username": "bob", "password": "bob-password"},
}


def test_a_restart_keeps_a_registered_phone_reachable_and_purges_expired_ones(
    tmp_path: Path,
) -> None:
    need("baresip")
    with contextlib.ExitStack() as phones:
        with sip_platform(tmp_path, devices=DEVICES) as platform:
            acme = platform.acme
            phone = phones.enter_context(baresip(tmp_path, "ana", source=platform.operator_voice))
            phone.add_account(
                f"sip:ana@127.0.0.1:{platform.sip_port}",
                auth_pass="ana-password",
                outbound=f"sip:127.0.0.1:{platform.sip_port}",
                regint="600",
            )
            phone.start()
            phone.wait_log("[1 binding]")
        settings = platform.settings

        async def leave_an_expired_one(container: Container) -> int:
            store = SqlSipRegistrations(container.engine)
            await store.save(
                SipRegistration(
                    acme.other_id_agent,
                    acme.id,
                    "bob",
                    "sip:bob@127.0.0.1:5999",
                    "127.0.0.1",
                    5999,
                    datetime.now(UTC) - timedelta(seconds=1),
                )
            )
            return await count_rows(container.engine, "sip_registrations")

        assert run_on(settings, leave_an_expired_one) == 2
        with (
            live_server(settings) as server,
            baresip(tmp_path, "caller", source=platform.caller_voice) as caller,
        ):
            caller.start()
            ana = Operator(server, acme, acme.id_agent)
            ana.status("online")
            caller.command("dial", platform.uri_of_number)
            phone.wait_event("CALL_INCOMING")  # rung where it registered before the restart
            caller.command("hangup")
            phone.wait_event("CALL_CLOSED")
            ana.http.close()

            async def rows(container: Container) -> int:
                return await count_rows(container.engine, "sip_registrations")

            assert run_on(settings, rows) == 1  # bob's expired registration is gone


def test_a_restored_registration_lasts_only_until_its_expiry(
    tmp_path: Path, database_url: str
) -> None:
    """The registrar restored from the real store (SQLite and PostgreSQL), its wall clock
    moved on by hand; deleting the device deletes its registration."""
    settings = make_settings(tmp_path, database_url)
    acme, _ = seed_two_accounts(settings)
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    async def job(container: Container) -> tuple[int, bool, bool, int, int]:
        await container.sip_devices.set_device(
            acme.id, acme.id_agent, username="ana", password="ana-password"
        )
        store = SqlSipRegistrations(container.engine)
        await store.save(
            SipRegistration(
                acme.id_agent, acme.id, "ana", "sip:ana@192.0.2.5:5062", "192.0.2.5", 5062, start
            )
        )
        wall = {"now": start - timedelta(seconds=100)}  # 100 s before it expires
        registrar = Registrar(
            DigestServer("voicemgmt", b"k" * 32),
            container.sip_devices,
            store,
            wall=lambda: wall["now"],
        )
        restored = await registrar.restore(1000.0)
        binding = registrar.binding("ana", 1099.0)
        reachable = binding is not None and binding.source == ("192.0.2.5", 5062)
        gone = registrar.binding("ana", 1101.0) is None
        wall["now"] = start + timedelta(seconds=1)
        await registrar.purge(1101.0)
        purged = await count_rows(container.engine, "sip_registrations")
        await store.save(
            SipRegistration(
                acme.id_agent, acme.id, "ana", "sip:ana@192.0.2.5:5062", "192.0.2.5", 5062, start
            )
        )
        await container.sip_devices.delete_device(acme.id, acme.id_agent)
        cascaded = await count_rows(container.engine, "sip_registrations")
        return restored, reachable, gone, purged, cascaded

    assert run_on(settings, job) == (1, True, True, 0, 0)


def test_a_registration_survives_a_kill_9_of_the_server(tmp_path: Path) -> None:
    """``voicemgmt serve`` with SIP is killed with SIGKILL right after the phone registered;
    the server started again on the same database rings the phone."""
    need("baresip")
    settings, sip_port = sip_settings(tmp_path)
    acme, _ = seed_two_accounts(settings)

    async def give_ana_a_phone(container: Container) -> None:
        await container.sip_devices.set_device(
            acme.id, acme.id_agent, username="ana", password="ana-password"
        )

    run_on(settings, give_ana_a_phone)
    assert settings.secret_key is not None
    env = cli_env(
        Path(settings.data_dir),
        VM_SWITCH="sip",
        VM_SIP_LISTEN=settings.sip_listen,
        VM_RTP_PORTS=settings.rtp_ports,
        VM_SIP_TRUNK_SOURCES=json.dumps(settings.sip_trunk_sources),
        VM_SECRET_KEY=settings.secret_key.get_secret_value(),
        VM_PORT=str(free_port()),
    )
    voice = tmp_path / "voice.wav"
    write_wav(voice, CALLER_VOICE)
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(VOICEMGMT), "serve"], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        with (
            baresip(tmp_path, "ana", source=voice) as phone,
            baresip(tmp_path, "caller", source=voice) as caller,
        ):
            phone.add_account(
                f"sip:ana@127.0.0.1:{sip_port}",
                auth_pass="ana-password",
                outbound=f"sip:127.0.0.1:{sip_port}",
                regint="600",
            )
            deadline = time.monotonic() + 20
            while "SIP listening" not in (tmp_path / "serve.log").read_text():
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
            phone.start()
            phone.wait_log("[1 binding]")
            server.send_signal(signal.SIGKILL)
            server.wait()
            with live_server(settings) as restarted:
                caller.start()
                ana = Operator(restarted, acme, acme.id_agent)
                ana.status("online")
                caller.command("dial", f"sip:+{acme.number}@127.0.0.1:{sip_port}")
                phone.wait_event("CALL_INCOMING")  # registered before the crash
                caller.command("hangup")
                phone.wait_event("CALL_CLOSED")
                ana.http.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
