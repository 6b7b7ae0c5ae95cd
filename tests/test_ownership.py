"""Rendezvous hashing: who owns an account among the live nodes (domain, pure)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from voicemgmt.domain.errors import InvalidInput
from voicemgmt.domain.ownership import (
    check_lease_key,
    check_node_name,
    owner_of,
    owners,
    weight,
)

ACCOUNTS = range(1, 3001)


def test_no_node_owns_nothing() -> None:
    assert owner_of(42, []) is None
    with pytest.raises(ValueError, match="no node"):
        owners([42], [])


def test_every_node_computes_the_same_owner_whatever_the_order_it_lists_nodes_in() -> None:
    nodes = ["node-a:8000", "node-b:8000", "node-c:8000", "node-d:8000"]
    rng = random.Random(7)
    for account in range(200):
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        assert owner_of(account, shuffled) == owner_of(account, nodes)


def test_accounts_spread_evenly_over_the_nodes() -> None:
    for count in (2, 3, 5):
        nodes = [f"vm{i}:8000" for i in range(count)]
        shares = Counter(owners(ACCOUNTS, nodes).values())
        fair = len(ACCOUNTS) / count
        assert set(shares) == set(nodes)
        # 3,000 keys: a binomial share's standard deviation is under 30, 15% is over 5 of them
        assert all(abs(share - fair) < 0.15 * fair for share in shares.values()), shares


def test_a_node_that_joins_takes_only_accounts_and_only_its_fair_share() -> None:
    before = owners(ACCOUNTS, ["vm0", "vm1", "vm2"])
    after = owners(ACCOUNTS, ["vm0", "vm1", "vm2", "vm3"])
    moved = [a for a in ACCOUNTS if before[a] != after[a]]
    assert all(after[a] == "vm3" for a in moved)  # nothing moves between the old nodes
    assert abs(len(moved) - len(ACCOUNTS) / 4) < 0.15 * len(ACCOUNTS) / 4


def test_when_a_node_leaves_only_its_accounts_move_and_they_spread_over_the_others() -> None:
    before = owners(ACCOUNTS, ["vm0", "vm1", "vm2", "vm3"])
    after = owners(ACCOUNTS, ["vm0", "vm1", "vm3"])
    moved = [a for a in ACCOUNTS if before[a] != after[a]]
    assert moved == [a for a in ACCOUNTS if before[a] == "vm2"]
    heirs = Counter(after[a] for a in moved)
    assert set(heirs) == {"vm0", "vm1", "vm3"}
    assert all(count > len(moved) / 3 * 0.7 for count in heirs.values()), heirs


def test_owner_is_stable_across_processes_and_versions() -> None:
    # BLAKE2b, not hash(): fixed figures, so that nodes of different builds agree; a change
    # here moves every account at once during a rolling upgrade
    assert weight("vm0", 42) == 463906191488749089
    assert [owner_of(a, ["vm0", "vm1", "vm2"]) for a in range(1, 9)] == [
        "vm1", "vm1", "vm0", "vm2", "vm1", "vm1", "vm1", "vm2",
    ]  # fmt: skip
    assert owner_of(42, ["vm0", "vm1", "vm2"]) == owner_of("42", ["vm0", "vm1", "vm2"])


@pytest.mark.parametrize(
    "name", ["", "a b", "a{b}", "x" * 101, "é", "a\nb", "a/b", "a*", "n@rack", None, 42]
)
def test_a_node_name_that_could_break_keys_or_logs_is_refused(name: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_node_name(name)  # type: ignore[arg-type]
    assert caught.value.details["field"] == "node"


@pytest.mark.parametrize("name", ["vm1", "host.example:8000", "a", "n_1-rack-2", "9" * 100])
def test_node_names_of_hosts_and_ports_are_accepted(name: str) -> None:
    assert check_node_name(name) == name


@pytest.mark.parametrize("key", ["", "{42}", "a b", "k" * 201, "a\x00", "ünïcode"])
def test_a_lease_key_that_could_break_keys_is_refused(key: str) -> None:
    with pytest.raises(InvalidInput):
        check_lease_key(key)
