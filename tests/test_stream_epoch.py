"""The event stream's identity (``epoch``) in ``hello``: a client resuming across a restart is
told to reload (4410) rather than silently given the new stream's events after its old number.

Issue 14: after a restart the in-process stream starts again at seq 1; resuming with ``after``
alone was refused (4400) while the new stream was behind and, once it had passed that number,
accepted with every event before it silently missed.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support import (
    LiveServer,
    SeededAccount,
    live_server,
    make_settings,
    run_on,
    seed_two_accounts,
)
from tests.test_calls_api import FAST, bearer, token_for
from tests.test_event_bus import REDIS_URL, delete_keys, redis_reachable
from tests.test_webhook_delivery import call_events, fast_retries, publish, subscribe
from tests.webhook_receiver import Receiver, wait_for
from voicemgmt.adapters.events.redis import RedisEventBus
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings
from voicemgmt.services.events import ResumeTooOld

EPOCH = re.compile(r"[A-Za-z0-9_-]{1,64}")


def stream(server: LiveServer, token: str, **params: Any) -> ClientConnection:
    query = f"token_session={token}" + "".join(f"&{k}={quote(str(v))}" for k, v in params.items())
    return connect(f"ws://127.0.0.1:{server.port}/vm/events?{query}", open_timeout=5)


def hello(server: LiveServer, token: str, **params: Any) -> dict[str, Any]:
    with stream(server, token, **params) as ws:
        frame: dict[str, Any] = json.loads(ws.recv(timeout=5))
    assert frame["kind"] == "hello", frame
    return frame


def refused(server: LiveServer, token: str, **params: Any) -> tuple[int, str, list[Any]]:
    """How the server closes a connection: its code, reason and whatever frames came first."""
    with stream(server, token, **params) as ws:
        return drain(ws, timeout=5)


def drain(ws: ClientConnection, timeout: float) -> tuple[int, str, list[Any]]:
    """Frames until the server closes the connection; its code and reason."""
    frames: list[Any] = []
    closed: ConnectionClosed | None = None
    try:
        while True:
            frames.append(json.loads(ws.recv(timeout=timeout)))
    except ConnectionClosed as exc:
        closed = exc
    except TimeoutError:
        raise AssertionError(f"the stream stayed open; it sent {frames}") from None
    assert closed.rcvd is not None
    return closed.rcvd.code, closed.rcvd.reason, frames


def state(server: LiveServer, token: str, path: str) -> dict[str, Any]:
    with server.client(headers=bearer(token)) as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def toggle_status(server: LiveServer, token: str, times: int) -> None:
    """``times`` status changes of the operator: at least as many events on the stream."""
    with server.client(headers=bearer(token)) as client:
        for i in range(times):
            status = "busy" if i % 2 == 0 else "online"
            answer = client.put("/api/v1/me/status", json={"status": status})
            assert answer.status_code == 200, answer.text


def latest_seq(server: LiveServer, supervisor: str) -> int:
    seq: int = state(server, supervisor, "/api/v1/supervision/live")["seq"]
    return seq


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", **FAST)


def test_hello_and_both_state_endpoints_give_one_epoch(
    server: LiveServer, acme: SeededAccount
) -> None:
    ana = token_for(server, acme, id_agent=acme.id_agent)
    sam = token_for(server, acme, id_admin=acme.id_admin)
    toggle_status(server, ana, 2)
    first = hello(server, sam)
    assert EPOCH.fullmatch(first["epoch"])
    assert hello(server, ana)["epoch"] == first["epoch"]
    mine = state(server, ana, "/api/v1/me/state")
    live = state(server, sam, "/api/v1/supervision/live")
    assert mine["epoch"] == live["epoch"] == first["epoch"]
    assert live["seq"] == first["seq"] >= 2
    # Resuming with the right epoch replays what came after, as without one.
    with stream(server, sam, after=first["seq"] - 2, epoch=first["epoch"]) as ws:
        frames = [json.loads(ws.recv(timeout=5)) for _ in range(3)]
    assert frames[0] == {"kind": "hello", "seq": first["seq"], "epoch": first["epoch"]}
    assert [f["seq"] for f in frames[1:]] == [first["seq"] - 1, first["seq"]]


def test_another_epoch_is_told_to_reload_and_a_malformed_one_is_400(
    server: LiveServer, acme: SeededAccount
) -> None:
    sam = token_for(server, acme, id_admin=acme.id_admin)
    ana = token_for(server, acme, id_agent=acme.id_agent)
    toggle_status(server, ana, 3)
    for params in ({"after": 1, "epoch": "someOtherStream"}, {"epoch": "someOtherStream"}):
        code, reason, frames = refused(server, sam, **params)
        assert (code, frames) == (4410, []), (code, reason, frames)
        assert "restarted" in reason
    for bad in ["", "a" * 65, "not an epoch", "é", "../x"]:
        code, reason, frames = refused(server, sam, after=1, epoch=bad)
        assert (code, frames) == (4400, []), (bad, code, reason)
        assert "epoch" in reason
    assert hello(server, sam, after=1)["seq"] >= 3  # no epoch: resumed as before


@pytest.mark.parametrize(
    "bad",
    # Each but the last three was position 1 for int(), which reads Arabic-Indic digits too.
    [" 1", "1 ", "\t1", "+1", "0_1", "\u0661", "0\u0661", "-1", "1.0", "9" * 30],
    ids=repr,
)
def test_after_not_written_in_plain_digits_is_4400(
    server: LiveServer, acme: SeededAccount, bad: str
) -> None:
    sam = token_for(server, acme, id_admin=acme.id_admin)
    toggle_status(server, token_for(server, acme, id_agent=acme.id_agent), 2)
    assert hello(server, sam, after="1")["seq"] >= 2  # in plain digits, position 1 resumes
    code, reason, frames = refused(server, sam, after=bad)
    assert (code, frames) == (4400, []), (bad, code, reason)
    assert "after" in reason


def test_resuming_across_a_restart_with_the_old_epoch_always_reloads(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **FAST)
    acme, _globex = seed_two_accounts(settings)
    with live_server(settings) as server:
        ana = token_for(server, acme, id_agent=acme.id_agent)
        sam = token_for(server, acme, id_admin=acme.id_admin)
        toggle_status(server, ana, 12)
        with stream(server, sam) as ws:  # the supervisor's client, as it last saw the stream
            before = json.loads(ws.recv(timeout=5))
        old_epoch, old_seq = before["epoch"], before["seq"]
        assert old_seq >= 12
    with live_server(settings) as server:  # restarted on the same SQLite file
        new = hello(server, sam)
        assert new["epoch"] != old_epoch
        assert new["seq"] < old_seq  # the in-process stream started again
        assert state(server, sam, "/api/v1/supervision/live")["epoch"] == new["epoch"]
        assert state(server, ana, "/api/v1/me/state")["epoch"] == new["epoch"]

        # The new stream is behind the client's position: reload (was 4400, undocumented).
        code, reason, frames = refused(server, sam, after=old_seq, epoch=old_epoch)
        assert (code, frames) == (4410, []), (code, reason, frames)
        code, _, frames = refused(server, ana, after=old_seq, epoch=old_epoch)
        assert (code, frames) == (4410, [])

        # The new stream has passed it: still reload, never the events after it.
        toggle_status(server, ana, old_seq + 4)
        assert latest_seq(server, sam) > old_seq + 2
        for after in (old_seq, old_seq // 2, 0):
            code, reason, frames = refused(server, sam, after=after, epoch=old_epoch)
            assert (code, frames) == (4410, []), (after, code, reason, frames)

        # The reload: the state's seq and epoch, then the stream from there.
        live = state(server, sam, "/api/v1/supervision/live")
        toggle_status(server, ana, 1)
        with stream(server, sam, after=live["seq"], epoch=live["epoch"]) as ws:
            assert json.loads(ws.recv(timeout=5))["epoch"] == live["epoch"]
            assert json.loads(ws.recv(timeout=5))["seq"] == live["seq"] + 1


# Redis: one epoch for every node, kept across restarts, changed when Redis loses the stream.


@pytest.fixture
def redis_db() -> Iterator[str]:
    """A Redis database of its own (the servers use the default prefix, ``vm:``)."""
    redis_reachable()
    url = REDIS_URL.rsplit("/", 1)[0] + "/11"

    async def clear() -> None:
        client = Redis.from_url(url)
        try:
            keys = [key async for key in client.scan_iter(match="vm:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(clear())
    yield url
    asyncio.run(clear())


def delete_key(url: str, key: str) -> None:
    async def job() -> int:
        client = Redis.from_url(url)
        try:
            return int(await client.delete(key))
        finally:
            await client.aclose()

    assert asyncio.run(job()) == 1


def test_with_redis_two_nodes_share_the_epoch_until_the_stream_is_lost(
    tmp_path: Path, redis_db: str
) -> None:
    settings = make_settings(tmp_path, event_bus="redis", redis_url=redis_db, **FAST)
    acme, _globex = seed_two_accounts(settings)
    with live_server(settings) as one, live_server(settings) as two:
        sam = token_for(one, acme, id_admin=acme.id_admin)
        ana = token_for(one, acme, id_agent=acme.id_agent)
        toggle_status(one, ana, 3)
        first = hello(one, sam)
        assert hello(two, sam)["epoch"] == first["epoch"]
        assert state(two, ana, "/api/v1/me/state")["epoch"] == first["epoch"]
    with live_server(settings) as three:  # a restart: Redis kept the stream, so the epoch
        with stream(three, sam, after=first["seq"] - 1, epoch=first["epoch"]) as watching:
            resumed = json.loads(watching.recv(timeout=5))
            assert resumed["epoch"] == first["epoch"]
            assert resumed["seq"] >= first["seq"]
            assert json.loads(watching.recv(timeout=5))["seq"] == first["seq"]

            delete_key(redis_db, f"vm:events:{{{acme.id}}}")  # Redis lost the stream
            # A client following it is told too, once the node's feed waited for nothing
            # (at most its 5 s block): reload, as for a resume with the old epoch.
            code, reason, frames = drain(watching, timeout=12)
            assert (code, reason) == (4410, "the event stream restarted: reload and reconnect")
            assert all(frame["kind"] == "ping" for frame in frames), frames
        lost = hello(three, sam)
        assert lost["epoch"] != first["epoch"]
        code, _, frames = refused(three, sam, after=first["seq"], epoch=first["epoch"])
        assert (code, frames) == (4410, [])
        toggle_status(three, ana, 1)
        again = hello(three, sam)
        assert again["epoch"] == lost["epoch"]  # drawn once, then kept
        assert state(three, sam, "/api/v1/supervision/live")["epoch"] == lost["epoch"]


@pytest.mark.arbitrary_events
@pytest.mark.parametrize("published", [1, 8])  # the new stream behind the cursor (5), past it
def test_a_redis_subscription_ends_with_resume_too_old_when_redis_loses_the_stream(
    published: int,
) -> None:
    redis_reachable()
    prefix = f"vmtest:{uuid.uuid4().hex[:12]}:"

    async def body() -> None:
        node = RedisEventBus(REDIS_URL, key_prefix=prefix, block_ms=50)
        other = RedisEventBus(REDIS_URL, key_prefix=prefix, block_ms=50)
        try:
            for n in range(5):
                await other.publish(7, "test.thing", {"n": n}, datetime.now(UTC))
            async with node.subscribe(7, after=4) as following:
                assert (await anext(following)).seq == 5
                await node.client.delete(node.stream_key(7), node.counter_key(7))  # a flush
                for n in range(published):  # numbered from 1 again
                    await other.publish(7, "test.thing", {"n": n}, datetime.now(UTC))
                with pytest.raises(ResumeTooOld) as told:
                    async with asyncio.timeout(5):
                        await anext(following)
                assert told.value.details["epoch"] == await other.epoch(7)
        finally:
            await node.aclose()
            await other.aclose()
            await delete_keys(prefix + "*")

    asyncio.run(body())


@pytest.mark.arbitrary_events
def test_redis_epoch_is_drawn_once_by_concurrent_nodes_and_again_after_a_flush() -> None:
    redis_reachable()
    prefix = f"vmtest:{uuid.uuid4().hex[:12]}:"

    async def body() -> None:
        nodes = [RedisEventBus(REDIS_URL, key_prefix=prefix) for _ in range(4)]
        try:
            drawn = await asyncio.gather(*(node.epoch(7) for node in nodes))
            assert len(set(drawn)) == 1  # four nodes at once: one epoch
            await nodes[0].publish(7, "test.thing", {"n": 1}, datetime.now(UTC))
            assert await nodes[1].epoch(7) == drawn[0]
            client = nodes[0].client
            await client.delete(nodes[0].stream_key(7), nodes[0].counter_key(7))
            await client.delete(nodes[0].epoch_key(7))  # everything flushed
            await nodes[2].publish(
                7, "test.thing", {"n": 2}, datetime.now(UTC)
            )  # numbering restarts
            assert await nodes[2].last_seq(7) == 1
            flushed = await nodes[3].epoch(7)
            assert flushed != drawn[0]
            assert await nodes[0].epoch(7) == flushed
            # Keys written before epochs existed: one is drawn, and kept.
            await client.delete(nodes[0].epoch_key(7))
            upgraded = await nodes[1].epoch(7)
            assert upgraded not in (drawn[0], flushed)
            await nodes[1].publish(7, "test.thing", {"n": 3}, datetime.now(UTC))
            assert await nodes[2].epoch(7) == upgraded
        finally:
            for node in nodes:
                await node.aclose()
            await delete_keys(prefix + "*")

    asyncio.run(body())


def test_the_state_endpoints_describe_seq_and_epoch_in_openapi(server: LiveServer) -> None:
    with server.client() as client:
        document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, model in (
        ("/api/v1/me/state", "MyState"),
        ("/api/v1/supervision/live", "LiveSnapshot"),
    ):
        answer = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert answer["schema"] == {"$ref": f"#/components/schemas/{model}"}
        fields = schemas[model]["properties"]
        assert fields["epoch"]["pattern"] == EPOCH.pattern.join("^$")
        assert fields["seq"]["minimum"] == 0
        assert "epoch" in schemas[model]["required"]


def test_webhooks_follow_a_redis_stream_numbered_afresh_after_redis_lost_it(
    tmp_path: Path, redis_db: str
) -> None:
    settings = fast_retries(tmp_path, "", event_bus="redis", redis_url=redis_db)
    acme, _globex = seed_two_accounts(settings)

    async def allow_loopback(c: Container) -> None:
        await c.webhooks.allow_private_targets(acme.id, True)

    run_on(settings, allow_loopback)
    receiver = Receiver()
    receiver.start()
    try:
        with live_server(settings) as server:
            subscribe(server, acme, receiver.url)
            publish(server, acme, *call_events(2, 3))
            wait_for(lambda: len(receiver.snapshot()) >= 6, what="the first six deliveries")
            delete_key(redis_db, f"vm:events:{{{acme.id}}}")  # Redis lost everything:
            delete_key(redis_db, f"vm:seq:{{{acme.id}}}")  # the numbering starts again,
            publish(server, acme, *call_events(2, 4))  # and passes the recorder's position
            wait_for(lambda: len(receiver.snapshot()) >= 14, what="the events after the loss")
            time.sleep(0.5)
        bodies = [json.loads(r.body) for r in receiver.snapshot()]
        assert len(bodies) == 14
        assert sorted(b["seq"] for b in bodies[6:]) == list(range(1, 9))
    finally:
        receiver.stop()
