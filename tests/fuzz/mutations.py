"""Byte-level hypothesis strategies seeded from real inputs: a corpus case, mutated.

Random bytes never get past a parser's first line; a real message with a few bytes flipped,
a line dropped or doubled, a number swapped for an odd one, a header value grown to the limit,
or two messages spliced together reaches every branch behind it. Each mutation is drawn by
hypothesis, so a failure shrinks to the smallest seed and the fewest mutations.

How many examples a fuzz test runs comes from the hypothesis profile (tests/conftest.py):
a few seconds per target in ``make test``, many more with ``make fuzz``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hypothesis import strategies as st

# What makes parsers stumble: digits int() refuses or misreads, separators, quotes,
# brackets, control bytes, invalid UTF-8, numbers at and past every limit.
ODD_TOKENS: tuple[bytes, ...] = (
    "²".encode(),
    "١٢٣".encode(),
    "Ⅻ".encode(),
    b"\x00",
    b"\r",
    b"\n",
    b"\r\n\r\n",
    b"\t",
    b" ",
    b";",
    b",",
    b":",
    b"=",
    b"<",
    b">",
    b'"',
    b"\\",
    b"[",
    b"]",
    b"@",
    b"/",
    b"%",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"0",
    b"-1",
    b"65536",
    b"99999999999",
    b"2147483648",
    b"1e999",
    b"NaN",
    "\u2028".encode(),
    "\ufeff".encode(),
)


@st.composite
def mutated(
    draw: st.DrawFn,
    seeds: Sequence[bytes],
    *,
    max_steps: int = 6,
    huge: int = 20_000,
) -> bytes:
    """One of ``seeds`` changed by 1 to ``max_steps`` mutations (possibly none of them: the
    seed itself must pass too). ``huge`` bounds a grown value, so a test never hangs."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_steps))):
        step = draw(st.sampled_from(_STEPS))
        data = step(draw, data, seeds, huge)
    return bytes(data)


Step = Callable[[st.DrawFn, bytearray, Sequence[bytes], int], bytearray]


def _position(draw: st.DrawFn, data: bytearray) -> int:
    return draw(st.integers(0, len(data)))


def _flip(draw: st.DrawFn, data: bytearray, _seeds: Sequence[bytes], _huge: int) -> bytearray:
    if data:
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= 1 << draw(st.integers(0, 7))
    return data


def _set_byte(draw: st.DrawFn, data: bytearray, _seeds: Sequence[bytes], _huge: int) -> bytearray:
    if data:
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return data


def _insert(draw: st.DrawFn, data: bytearray, _seeds: Sequence[bytes], _huge: int) -> bytearray:
    at = _position(draw, data)
    token = draw(st.sampled_from(ODD_TOKENS) | st.binary(min_size=1, max_size=16))
    return data[:at] + token + data[at:]


def _delete(draw: st.DrawFn, data: bytearray, _seeds: Sequence[bytes], _huge: int) -> bytearray:
    start = _position(draw, data)
    end = draw(st.integers(start, min(len(data), start + 64)))
    return data[:start] + data[end:]


def _truncate(draw: st.DrawFn, data: bytearray, _seeds: Sequence[bytes], _huge: int) -> bytearray:
    return data[: _position(draw, data)]


def _splice(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes], _huge: int) -> bytearray:
    other = draw(st.sampled_from(seeds))
    return data[: _position(draw, data)] + other[draw(st.integers(0, len(other))) :]


def _lines(data: bytearray) -> list[bytes]:
    return bytes(data).split(b"\n")


def _line_step(draw: st.DrawFn, data: bytearray, _seeds: Sequence[bytes], _huge: int) -> bytearray:
    """Drop, double or swap whole lines: headers missing, repeated, out of order."""
    lines = _lines(data)
    at = draw(st.integers(0, len(lines) - 1))
    action = draw(st.sampled_from(("drop", "double", "swap")))
    if action == "drop":
        del lines[at]
    elif action == "double":
        lines.insert(at, lines[at])
    else:
        other = draw(st.integers(0, len(lines) - 1))
        lines[at], lines[other] = lines[other], lines[at]
    return bytearray(b"\n".join(lines))


def _grow(draw: st.DrawFn, data: bytearray, _seeds: Sequence[bytes], huge: int) -> bytearray:
    """A value grown to around and past the limits (a huge header value, a long token)."""
    at = _position(draw, data)
    unit = draw(st.sampled_from((b"a", b"9", b";x", b",", b'"', b" ", b"<", b"\\")))
    size = draw(st.sampled_from((255, 256, 1023, 1024, 2047, 2048, 2049, 8192, huge)))
    return data[:at] + unit * (size // len(unit)) + data[at:]


def _number(draw: st.DrawFn, data: bytearray, _seeds: Sequence[bytes], _huge: int) -> bytearray:
    """Replace one run of ASCII digits with an odd number."""
    runs: list[tuple[int, int]] = []
    start = -1
    for index, byte in enumerate([*data, 0]):
        if 48 <= byte <= 57:
            start = index if start < 0 else start
        elif start >= 0:
            runs.append((start, index))
            start = -1
    if not runs:
        return data
    begin, end = draw(st.sampled_from(runs))
    odd = draw(
        st.sampled_from(
            (b"0", b"-1", b"00", b"65535", b"65536", b"4294967296", b"9" * 30, "²".encode())
        )
        | st.integers(-(2**63), 2**63).map(lambda n: str(n).encode())
    )
    return data[:begin] + odd + data[end:]


_STEPS: tuple[Step, ...] = (
    _flip,
    _set_byte,
    _insert,
    _delete,
    _truncate,
    _splice,
    _line_step,
    _grow,
    _number,
)
