"""Which node owns what: rendezvous (highest random weight) hashing, and the names involved.

Every node scores every (node, key) pair with the same hash and the key goes to the node with
the highest score. Nodes need no shared table and agree as long as they see the same members;
when a node joins, only the keys it now wins move (to it), and when one leaves, only its keys
move, each to the node that scored second for it. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from voicemgmt.domain.errors import InvalidInput

# Node names and lease keys go into Redis key names: no braces (a cluster hash tag), no spaces
# or control characters, short enough to log and show.
_NODE_NAME = re.compile(r"[A-Za-z0-9._:-]{1,100}")  # as VM_NODE
_LEASE_KEY = re.compile(r"[A-Za-z0-9._:@/-]{1,200}")


def check_node_name(name: str) -> str:
    """``name`` if it can name a node (1 to 100 of ``A-Z a-z 0-9 . _ : -``, as ``VM_NODE``);
    ``InvalidInput`` otherwise."""
    if not isinstance(name, str) or not _NODE_NAME.fullmatch(name):
        raise InvalidInput(
            f"a node name is 1 to 100 letters, digits or . _ : -, not {str(name)[:80]!r}",
            field="node",
        )
    return name


def check_lease_key(key: str) -> str:
    """``key`` if it can name a lease (1 to 200 of ``A-Z a-z 0-9 . _ : @ / -``)."""
    if not isinstance(key, str) or not _LEASE_KEY.fullmatch(key):
        raise InvalidInput(
            f"a lease key is 1 to 200 letters, digits or . _ : @ / -, not {str(key)[:80]!r}",
            field="key",
        )
    return key


def weight(node: str, key: int | str) -> int:
    """The node's score for the key: 64 bits of BLAKE2b over both, stable across processes
    and versions (unlike ``hash()``)."""
    digest = hashlib.blake2b(f"{node}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner_of(key: int | str, nodes: Iterable[str]) -> str | None:
    """The node that owns ``key`` among ``nodes`` (``None`` if there is none). Ties, which
    would need two equal 64-bit hashes, go to the smaller name, so the answer never depends on
    the order of ``nodes``."""
    best: tuple[int, str] | None = None
    for node in nodes:
        score = weight(node, key)
        if best is None or score > best[0] or (score == best[0] and node < best[1]):
            best = (score, node)
    return None if best is None else best[1]


def owners(keys: Iterable[int | str], nodes: Iterable[str]) -> dict[int | str, str]:
    """``owner_of`` for many keys at once (needs at least one node)."""
    members = sorted(set(nodes))
    if not members:
        raise ValueError("no node to own anything")
    result: dict[int | str, str] = {}
    for key in keys:
        owner = owner_of(key, members)
        assert owner is not None
        result[key] = owner
    return result
