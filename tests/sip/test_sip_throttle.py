"""Digest failures are throttled per (address, user): the guesser is silenced, its neighbours
behind the same address, the same user elsewhere and the trunk are not.

127.0.0.1 is the trunk; 127.0.0.2 an address shared by an attacker guessing ana's password
and bob's real phone (baresip); 127.0.0.3 ana's real phone (baresip).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sip.peers import baresip, need
from tests.sip.platform import SipPlatform, sip_platform
from tests.sip.test_hostile import Peer
from voicemgmt.adapters.switch.sip.digest import authorization
from voicemgmt.adapters.switch.sip.message import Request, Response, parse
from voicemgmt.adapters.switch.sip.throttle import MAX_FAILURES, SipThrottle

pytestmark = pytest.mark.sip
DEVICES = {
    "ana": {"username": "ana", "password": "ana-password"},
    "bob": {"username": "bob", "password": "bob-password"},
}


def register(peer: Peer, platform: SipPlatform, user: str, password: str) -> Response | None:
    """A REGISTER answered with digest the way a phone does; the final answer or None."""
    first = peer.request("REGISTER", user)
    challenge = peer.final(first, timeout=1.0)
    if challenge is None or challenge.status != 401:
        return challenge
    value = authorization(
        challenge.headers.get("www-authenticate") or "",
        method="REGISTER",
        uri=f"sip:{user}@127.0.0.1",
        username=user,
        password=password,
    )
    text = peer.request("REGISTER", user).decode()
    text = text.replace("Content-Length:", f"Authorization: {value}\r\nContent-Length:")
    return peer.final(text.encode(), timeout=1.0)


def test_a_guessed_password_silences_that_pair_only(tmp_path: Path) -> None:
    need("baresip")
    with sip_platform(tmp_path, devices=DEVICES) as platform:
        registrar = f"sip:127.0.0.1:{platform.sip_port}"
        attacker = Peer(platform, "127.0.0.2")
        answers = [register(attacker, platform, "ana", f"guess-{n}") for n in range(MAX_FAILURES)]
        assert [a.status if a else None for a in answers] == [403] * MAX_FAILURES
        # the pair (127.0.0.2, ana) is ignored now, even with the right password
        assert register(attacker, platform, "ana", "ana-password") is None
        with (
            baresip(tmp_path, "bob", source=platform.operator_voice, host="127.0.0.2") as bob,
            baresip(tmp_path, "ana", source=platform.operator_voice, host="127.0.0.3") as ana,
        ):
            for phone, user in ((bob, "bob"), (ana, "ana")):
                phone.add_account(
                    f"sip:{user}@127.0.0.1:{platform.sip_port}",
                    auth_pass=f"{user}-password",
                    outbound=registrar,
                    regint="600",
                )
                phone.start()
            bob.wait_log("[1 binding]")  # another user of the attacker's address
            ana.wait_log("[1 binding]")  # the attacked user from her own address
        # strangers' INVITEs from that address silence its anonymous requests, not its users
        for _ in range(MAX_FAILURES):
            attacker.final(attacker.request("INVITE"), timeout=0.3)
        assert attacker.final(attacker.request("OPTIONS"), timeout=1.0) is None
        answer = register(attacker, platform, "bob", "bob-password")
        assert answer is not None
        assert answer.status == 200
        attacker.close()
        trunk = Peer(platform)  # failures from the trunk's address are never counted
        for n in range(MAX_FAILURES + 2):
            assert register(trunk, platform, "ana", f"guess-{n}") is not None
        assert register(trunk, platform, "ana", "ana-password") is not None
        trunk.close()


def test_an_address_trying_many_users_is_silenced_unless_a_user_authenticated_from_it() -> None:
    throttle = SipThrottle(lambda source: source[0] == "10.0.0.1", address_failures=20)

    def request(user: str) -> Request:
        message = parse(
            (
                f"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                f"From: <sip:{user}@x>;tag=1\r\nTo: <sip:{user}@x>\r\nCall-ID: c\r\n"
                "CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
            ).encode()
        )
        assert isinstance(message, Request)
        return message

    scanner, office, trunk = ("10.0.0.9", 5060), ("10.0.0.5", 5060), ("10.0.0.1", 5060)
    throttle.succeeded(office, 0.0)  # someone in the office registered
    for n in range(25):
        for source in (scanner, office, trunk):
            throttle.failed(request(f"user{n}"), source, 1.0)
    assert throttle.blocked(request("newcomer"), scanner, 2.0)
    assert not throttle.blocked(request("newcomer"), office, 2.0)
    assert not throttle.blocked(request("newcomer"), trunk, 2.0)
    assert not throttle.blocked(request("newcomer"), scanner, 400.0)
