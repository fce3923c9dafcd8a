"""Words and n-grams as 64-bit hashes, computed for a whole batch of texts at once with numpy.

A batch's texts are normalised (`text.normalized_bytes`), joined with newlines into one byte string, and split into
words by array operations; each word's hash mixes its bytes eight at a time, so no Python object is made per word and
no array holds eight bytes per byte of text. A window of m words gets its key from a rolling hash over its word
hashes, with m folded in.
Benchmark and dataset go through the same two functions, so equal normalised words give equal keys in any process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .text import normalized_bytes

_WORD_BASE = np.uint64(0x9E3779B97F4A7C15)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)   # the low k bytes
_MIX = np.uint64(0xBF58476D1CE4E5B9)


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
    inside = ((data != 0x20) & (data != 0x0A)).view(np.int8)
    edges = np.diff(inside, prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    text = np.searchsorted(np.flatnonzero(data == 0x0A), starts)
    return Words(_word_hashes(raw, starts, ends), text, starts, ends, raw)


def _word_hashes(raw: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each word's hash, from its bytes read eight at a time as one little-endian integer (the bytes past its end
    masked off): a pass per eight bytes of the longest word, over the words that long only."""
    padded = np.frombuffer(raw + bytes(8), dtype=np.uint8)
    eights = np.lib.stride_tricks.as_strided(padded, shape=(len(raw), 8), strides=(1, 1), writeable=False)
    lengths = ends - starts
    hashes = lengths.astype(np.uint64)
    todo, offset = np.arange(len(starts)), 0
    while len(todo):
        part = eights[starts[todo] + offset].view("<u8")[:, 0].astype(np.uint64, copy=False)
        left = lengths[todo] - offset
        part &= _MASKS[np.minimum(left, 8)]
        hashes[todo] = _spread(hashes[todo] * _WORD_BASE + part)
        offset += 8
        todo = todo[left > 8]
    return hashes


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
