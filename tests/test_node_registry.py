"""The node registry, in-process and in Redis: who is alive, one live node per name."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.coordination_support import Stores, stores_of
from voicemgmt.domain.errors import InvalidInput, NodeNameInUse
from voicemgmt.services.coordination import watch_members


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    yield from stores_of(request.param)


def test_joined_nodes_are_members_with_their_metadata(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        registry = s.registry()
        one = await registry.join("vm1", ttl=5, metadata={"http": "10.0.0.1:8000"})
        two = await s.registry().join("vm2", ttl=5)
        members = await registry.members()
        assert [(m.name, m.incarnation) for m in members] == [
            ("vm1", one.incarnation),
            ("vm2", two.incarnation),
        ]
        assert members[0].metadata == {"http": "10.0.0.1:8000"}
        assert members[1].metadata == {}
        assert members[0].started_at <= members[1].started_at < members[1].expires_at

    stores.run(body)


def test_a_second_node_with_a_live_nodes_name_is_refused_with_a_clear_message(
    stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        first = await s.registry().join("vm1", ttl=5, metadata={"pid": "1"})
        with pytest.raises(NodeNameInUse) as caught:
            await s.registry().join("vm1", ttl=5, metadata={"pid": "2"})
        error = caught.value
        assert error.error_id == "node_name_in_use"
        assert "vm1" in error.message
        assert "VM_NODE" in error.message
        assert error.details["node"] == "vm1"
        assert 4 < error.details["expires_in"] <= 5
        # the first one is untouched
        (member,) = await s.registry().members()
        assert (member.incarnation, member.metadata) == (first.incarnation, {"pid": "1"})

    stores.run(body)


def test_a_node_that_stops_heartbeating_is_gone_after_its_ttl_and_its_name_is_free(
    stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        registry = s.registry()
        dead = await registry.join("vm1", ttl=0.8)
        alive = await registry.join("vm2", ttl=0.8)
        for _ in range(5):
            await asyncio.sleep(0.2)
            renewed = await registry.heartbeat(alive)
            assert renewed is not None
            alive = renewed
        assert [m.name for m in await registry.members()] == ["vm2"]
        again = await registry.join("vm1", ttl=5)  # e.g. restarted after a kill -9
        assert again.incarnation != dead.incarnation
        # the old life's heartbeat does not revive it or disturb the new one
        assert await registry.heartbeat(dead) is None
        await registry.leave(dead)
        assert [m.incarnation for m in await registry.members() if m.name == "vm1"] == [
            again.incarnation
        ]

    stores.run(body)


def test_a_node_that_leaves_frees_its_name_at_once(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        registry = s.registry()
        member = await registry.join("vm1", ttl=30)
        await registry.leave(member)
        assert await registry.members() == []
        assert await registry.heartbeat(member) is None
        await registry.join("vm1", ttl=30)

    stores.run(body)


def test_watching_members_reports_each_change_of_membership(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        registry = s.registry()
        seen: list[list[str]] = []
        changes = watch_members(registry, interval=0.02)
        seen.append([m.name for m in await anext(changes)])
        one = await registry.join("vm1", ttl=5)
        seen.append([m.name for m in await anext(changes)])
        await registry.join("vm2", ttl=0.6)  # never heartbeats
        seen.append([m.name for m in await anext(changes)])
        seen.append([m.name for m in await anext(changes)])  # vm2 lapsed
        await registry.leave(one)
        seen.append([m.name for m in await anext(changes)])
        await changes.aclose()
        assert seen == [[], ["vm1"], ["vm1", "vm2"], ["vm1"], []]

    stores.run(body)


@pytest.mark.parametrize(
    ("name", "ttl"),
    [("", 5), ("vm 1", 5), ("{vm1}", 5), ("v" * 101, 5), ("vm1", 0), ("vm1", -3), ("vm1", 1e9)],
)
def test_a_bad_name_or_ttl_is_refused_and_nothing_is_registered(
    stores: Stores, name: str, ttl: float
) -> None:
    async def body(s: Stores) -> None:
        registry = s.registry()
        with pytest.raises(InvalidInput):
            await registry.join(name, ttl)
        assert await registry.members() == []

    stores.run(body)


def test_metadata_is_kept_as_text(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        registry = s.registry()
        hostile = {"sip": 'x"\n\\ {}', "ünï": "ç" * 300}
        await registry.join("vm1", ttl=5, metadata=hostile)
        (member,) = await registry.members()
        assert member.metadata == hostile

    stores.run(body)
