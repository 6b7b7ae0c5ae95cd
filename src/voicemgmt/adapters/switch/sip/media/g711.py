"""G.711 μ-law (PCMU) and A-law (PCMA), by lookup tables (``audioop`` leaves Python in 3.13).

``encode``/``decode`` convert 16-bit little-endian linear PCM; ``transcode`` converts one law
to the other byte for byte (``bytes.translate``), which is what the relay does when the two
legs of a call chose different codecs. Tables are built on first use, not at import.
"""

from __future__ import annotations

import array
import sys
from functools import cache

PCMU, PCMA = 0, 8
_BIAS = 0x84
_CLIP = 32635


def _ulaw_encode(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = max(magnitude.bit_length() - 8, 0)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if sign else magnitude


def _alaw_encode(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(-sample - 1 if sample < 0 else sample, 32767) >> 3
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def _alaw_decode(byte: int) -> int:
    byte ^= 0x55
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    magnitude = (
        ((mantissa << 4) + 8) if exponent == 0 else (((mantissa << 4) + 0x108) << (exponent - 1))
    )
    return magnitude if sign else -magnitude


@cache
def _encode_table(law: int) -> bytes:
    """Indexed by the unsigned view of a 16-bit sample."""
    encode = _ulaw_encode if law == PCMU else _alaw_encode
    return bytes(encode(u - 65536 if u >= 32768 else u) for u in range(65536))


@cache
def _decode_table(law: int) -> array.array[int]:
    decode = _ulaw_decode if law == PCMU else _alaw_decode
    return array.array("h", (decode(b) for b in range(256)))


@cache
def _transcode_table(source: int, target: int) -> bytes:
    decode, encode = _decode_table(source), _encode_table(target)
    return bytes(encode[decode[b] & 0xFFFF] for b in range(256))


def encode(pcm: bytes, law: int) -> bytes:
    """16-bit little-endian linear samples → G.711 bytes."""
    samples = array.array("H")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    table = _encode_table(law)
    return bytes(map(table.__getitem__, samples))


def decode(data: bytes, law: int) -> bytes:
    """G.711 bytes → 16-bit little-endian linear samples."""
    table = _decode_table(law)
    out = array.array("h", map(table.__getitem__, data))
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def transcode(data: bytes, source: int, target: int) -> bytes:
    if source == target:
        return data
    return data.translate(_transcode_table(source, target))


def silence(law: int) -> int:
    """The byte of a zero sample."""
    return _encode_table(law)[0]
