"""The programs' generated messages (`producer --gen`, `consumer --verify`), in Python: the
layout README's "Generated messages" describes and cli/src/generated.rs defines, built and
checked here so that Python and the Rust programs test each other."""

import struct
import time

M64 = (1 << 64) - 1
FULL_SIZE = 24
PATTERN_WORDS = 509


def mix(x):
    """splitmix64's finaliser."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


PATTERN = [mix(i ^ 0xD6E8FEB86659FD93) for i in range(PATTERN_WORDS)]


def rotl(x, n):
    return ((x << n) | (x >> (64 - n))) & M64


def check_word(stream, seq, timestamp):
    h = ((stream ^ rotl(seq, 17) ^ rotl(timestamp, 41)) * 0x9E3779B97F4A7C15) & M64
    return h >> 32


def block_key(seq, block):
    return mix(seq ^ 0x9E3779B97F4A7C15) ^ ((block * 0xA0761D6478BD642F) & M64)


def filler(seq, length):
    out = bytearray()
    for block in range((length + PATTERN_WORDS * 8 - 1) // (PATTERN_WORDS * 8)):
        key = block_key(seq, block)
        size = min(PATTERN_WORDS * 8, length - block * PATTERN_WORDS * 8)
        words = b"".join(struct.pack("<Q", w ^ key) for w in PATTERN[: (size + 7) // 8])
        out += words[:size]
    return bytes(out)


def message(stream, seq, size, timestamp=None):
    """Generated message `seq` of `stream`, `size` bytes (at least 8)."""
    if timestamp is None:
        timestamp = time.monotonic_ns()
    if size >= FULL_SIZE:
        head = struct.pack("<IIQQ", stream, check_word(stream, seq, timestamp), seq, timestamp)
        return head + filler(seq, size - FULL_SIZE)
    head = struct.pack("<II", seq & 0xFFFFFFFF, timestamp & 0xFFFFFFFF)
    return head + filler(seq, size - 8)


def check(msg, seq):
    """Raises AssertionError unless `msg` is generated message `seq` (whole, unchanged)."""
    assert len(msg) >= 8, f"message {seq}: {len(msg)} bytes"
    if len(msg) >= FULL_SIZE:
        stream, check, got, timestamp = struct.unpack_from("<IIQQ", msg)
        assert got == seq, f"expected message {seq}, got {got}"
        assert check == check_word(stream, got, timestamp), f"message {seq}: damaged header"
        assert msg[FULL_SIZE:] == filler(seq, len(msg) - FULL_SIZE), f"message {seq}: damaged"
    else:
        (got,) = struct.unpack_from("<I", msg)
        assert got == seq & 0xFFFFFFFF, f"expected message {seq}, got {got}"
        assert msg[8:] == filler(seq, len(msg) - 8), f"message {seq}: damaged"
