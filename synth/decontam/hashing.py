"""Words and n-grams as 64-bit hashes, computed for a whole batch of texts at once with numpy.

A batch's texts are normalised (`text.normalized_bytes`), joined with newlines into one byte string, and split into
words by array operations; each word's hash is a polynomial over its bytes, taken from prefix sums, so no Python
object is made per word. A window of m words gets a key from a rolling hash over its word hashes, with m folded in.
Benchmark and dataset go through the same two functions, so equal normalised words give equal keys in any process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .text import normalized_bytes

_BYTE_BASE = 0x100000001B3            # odd, so invertible modulo 2**64
_BYTE_BASE_INVERSE = pow(_BYTE_BASE, -1, 1 << 64)
_WORD_BASE = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_powers: dict[str, np.ndarray] = {}


@dataclass
class Words:
    """The words of a batch of texts."""

    hashes: np.ndarray      # uint64, one per word, in order
    text: np.ndarray        # which text each word is in
    starts: np.ndarray      # each word's first byte in `raw`
    ends: np.ndarray        # one past its last byte
    raw: bytes              # the normalised texts, newline-joined

    def span(self, first: int, last: int) -> str:
        """Words first..last-1 as normalised text."""
        return b" ".join(self.raw[self.starts[first]:self.ends[last - 1]].split()).decode("utf-8", "replace")


def text_words(texts: list[str]) -> Words:
    raw = b"\n".join(normalized_bytes(text) for text in texts) + b"\n"
    data = np.frombuffer(raw, dtype=np.uint8)
    inside = ((data != 0x20) & (data != 0x0A)).astype(np.int8)
    edges = np.diff(np.concatenate(([0], inside, [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    text = np.searchsorted(np.flatnonzero(data == 0x0A), starts)
    up, down = _power_tables(len(data))
    prefix = np.concatenate((np.zeros(1, np.uint64), np.cumsum((data.astype(np.uint64) + np.uint64(1)) * up[:len(data)])))
    hashes = (prefix[ends] - prefix[starts]) * down[starts]          # sum of byte * base**(offset in word)
    return Words(_spread(hashes), text, starts, ends, raw)


def _power_tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """base**i and base**-i modulo 2**64 for i < size (kept, and grown by doubling)."""
    have = len(_powers.get("up", ()))
    if have < size:
        size = max(size, 2 * have, 1 << 16)
        up = np.full(size, _BYTE_BASE, dtype=np.uint64)
        up[0] = 1
        down = np.full(size, _BYTE_BASE_INVERSE, dtype=np.uint64)
        down[0] = 1
        _powers["up"], _powers["down"] = np.cumprod(up), np.cumprod(down)     # wrap modulo 2**64, as wanted
    return _powers["up"], _powers["down"]


def _spread(keys: np.ndarray) -> np.ndarray:
    keys = keys ^ (keys >> np.uint64(31))
    keys *= _MIX
    return keys ^ (keys >> np.uint64(29))


def window_keys(hashes: np.ndarray, text: np.ndarray, lengths: tuple[int, ...]
                ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each length m: the key of every window of m words within one text, and the index of its first word."""
    found = {m: (np.zeros(0, np.uint64), np.zeros(0, np.int64)) for m in lengths}
    rolling = np.zeros(len(hashes), dtype=np.uint64)
    for m in range(1, max(lengths, default=0) + 1):
        count = len(hashes) - m + 1
        if count <= 0:
            break
        rolling = rolling[:count] * _WORD_BASE + hashes[m - 1:m - 1 + count]
        if m in lengths:
            starts = np.flatnonzero(text[m - 1:m - 1 + count] == text[:count])
            found[m] = (_spread(rolling[starts] + np.uint64(m)), starts)
    return found
