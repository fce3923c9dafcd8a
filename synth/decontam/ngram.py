"""Stage 1: n-gram matching against one benchmark, through a hashed index built once and kept on disk.

Each item is split into segments (its question, then each answer), each segment into normalised words, and every
word and every window of words becomes a 64-bit hash (`hashing.py`). The index holds the key of every n-word window
of every segment and, for a question shorter than n words (but at least `min_words`), the key of its whole word
sequence. Keys live in one sorted numpy array, each with the segments that hold it, so a lookup is a binary search
behind a bitmap of the keys' top bits, and the index of a 15K-item benchmark is tens of megabytes, not a set of
millions of Python tuples.

Dataset rows are checked a batch at a time with numpy; only a row with a hit comes back to Python (`matching.py`),
where its hits are compared with the item's own words, and its matched span and coverage are measured.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .benchmarks import Benchmark
from .hashing import Words, text_words, window_keys

FORMAT_VERSION = 3


@dataclass
class NgramMatch:
    item: int                  # the item's position in its benchmark
    row_segment: int           # which of the row's texts holds the match
    span: str                  # the longest matched run of words, normalised (its first 60 words)
    span_words: int            # how many words that run holds
    coverage: float            # the share of the item's best-covered segment that the row's matches cover
    item_segment: int          # 0: the item's question; k: its k-th answer
    windows: int               # matched windows, confirmed word by word


class NgramIndex:
    """The hashed n-gram index of one benchmark (see the module docstring)."""

    def __init__(self, n: int, arrays: dict[str, np.ndarray], stats: dict[str, int]):
        self.n, self.stats = n, stats
        self.keys = arrays["keys"]                  # sorted, unique uint64
        self.owner_starts = arrays["owner_starts"]  # per key, where its segments start in `owners`
        self.owners = arrays["owners"]              # segment numbers
        self.seg_item = arrays["seg_item"]          # per segment: its item's position
        self.seg_field = arrays["seg_field"]        # per segment: 0 the question, k the k-th answer
        self.seg_starts = arrays["seg_starts"]      # per segment: where its words start in `seg_words`
        self.seg_words = arrays["seg_words"]        # the word hashes of every segment, in order
        self.lengths = tuple(int(m) for m in arrays["lengths"])
        self.item_first_seg = np.searchsorted(self.seg_item, np.arange(int(stats["items"]) + 1))
        self.bitmap_bits = max(16, int(np.ceil(np.log2(max(1, len(self.keys)) * 32))))
        self.bitmap = np.zeros(1 << (self.bitmap_bits - 3), dtype=np.uint8)
        top = self.keys >> np.uint64(64 - self.bitmap_bits)
        np.bitwise_or.at(self.bitmap, (top >> np.uint64(3)).astype(np.int64),
                         np.left_shift(1, (top & np.uint64(7)).astype(np.uint8)).astype(np.uint8))

    # ---- building ------------------------------------------------------------------------------------

    @classmethod
    def build(cls, benchmark: Benchmark, n: int = 13, min_words: int = 4, boilerplate: int | None = None
              ) -> "NgramIndex":
        """Index every n-gram of every item; a question under n words (but at least `min_words`) is indexed whole.
        With `boilerplate`, n-grams found in more items than that are dropped as template wording."""
        texts, seg_item, seg_field = [], [], []
        for position, item in enumerate(benchmark.items):
            for number, text in enumerate((item.prompt, *item.answers)):
                texts.append(text)
                seg_item.append(position)
                seg_field.append(number)
        words = text_words(texts)
        sizes = np.bincount(words.text, minlength=len(texts)).astype(np.int64)
        seg_starts = np.concatenate(([0], np.cumsum(sizes)))
        is_question = np.array(seg_field, dtype=np.int64) == 0
        short = is_question & (sizes < n) & (sizes >= min_words)
        lengths = tuple(sorted({n, *(int(m) for m in sizes[short])}))
        found_keys, found_segments = [], []
        for m, (keys, first) in window_keys(words.hashes, words.text, lengths).items():
            segment = words.text[first]
            keep = (np.ones(len(first), dtype=bool) if m == n
                    else short[segment] & (sizes[segment] == m) & (first == seg_starts[segment]))
            found_keys.append(keys[keep])
            found_segments.append(segment[keep])
        keys, owners = np.concatenate(found_keys), np.concatenate(found_segments).astype(np.int32)
        items = np.array(seg_item, dtype=np.int32)
        keys, owners, dropped = _drop_boilerplate(keys, owners, items, boilerplate)
        unique, owner_starts, owners = _group(keys, owners)
        stats = {"items": len(benchmark.items), "segments": len(texts), "keys": len(unique),
                 "short_questions": int(short.sum()),
                 "unindexed_questions": int((is_question & (sizes < min_words)).sum()),
                 "boilerplate_ngrams": dropped}
        arrays = {"keys": unique, "owner_starts": owner_starts, "owners": owners, "seg_item": items,
                  "seg_field": np.array(seg_field, dtype=np.int16), "seg_starts": seg_starts,
                  "seg_words": words.hashes, "lengths": np.array(lengths, dtype=np.int64)}
        return cls(n, arrays, stats)

    # ---- saving --------------------------------------------------------------------------------------

    ARRAYS = ("keys", "owner_starts", "owners", "seg_item", "seg_field", "seg_starts", "seg_words")

    def save(self, path: Path) -> None:
        """Write the index to `path` (.npz, no pickles), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"version": FORMAT_VERSION, "n": self.n, "stats": self.stats}).encode("utf-8")
        arrays = {name: getattr(self, name) for name in self.ARRAYS}
        arrays.update(lengths=np.array(self.lengths, dtype=np.int64), meta=np.frombuffer(meta, dtype=np.uint8))
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> "NgramIndex | None":
        """The index saved at `path`, or None when it is missing, damaged or of another format (then it is built
        again: the file is only a cache)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
            if meta.get("version") != FORMAT_VERSION:
                return None
            return cls(int(meta["n"]), arrays, meta["stats"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # ---- matching ------------------------------------------------------------------------------------

    def encode(self, texts: list[list[str]]) -> tuple[Words, list[tuple[int, int]]]:
        """The words of a batch of rows (each a list of texts), and for each text (row, text number)."""
        owners = [(row, number) for row, row_texts in enumerate(texts) for number in range(len(row_texts))]
        return text_words([text for row_texts in texts for text in row_texts]), owners

    def hits(self, words: Words) -> list[tuple[np.ndarray, int, np.ndarray]]:
        """Per window length: (the first word of every window whose key is in the index, the length, the key's
        position). The bitmap turns most windows away before the binary search, whose every step would otherwise
        be a cache miss."""
        found = []
        if not len(self.keys):
            return found
        for m, (keys, first) in window_keys(words.hashes, words.text, self.lengths).items():
            maybe = np.flatnonzero(_bit(self.bitmap, keys, self.bitmap_bits))
            keys, first = keys[maybe], first[maybe]
            at = np.searchsorted(self.keys, keys)
            at[at == len(self.keys)] = 0
            hit = self.keys[at] == keys
            if hit.any():
                found.append((first[hit], m, at[hit]))
        return found

    def match(self, texts: list[list[str]]) -> list[NgramMatch | None]:
        """For each row (a list of its texts: instruction, input, response...), its best confirmed match, or None."""
        from .matching import match_batch

        return match_batch(self, texts)

    def item_segments(self, item: int) -> list[tuple[int, np.ndarray]]:
        """(0 for the question or k for the k-th answer, its word hashes) for each segment of an item."""
        first, last = int(self.item_first_seg[item]), int(self.item_first_seg[item + 1])
        return [(int(self.seg_field[s]), self.seg_words[self.seg_starts[s]:self.seg_starts[s + 1]])
                for s in range(first, last)]


def _bit(bitmap: np.ndarray, keys: np.ndarray, bits: int) -> np.ndarray:
    """Whether each key's top `bits` bits are set in `bitmap` (a key that is not may not be in the index)."""
    top = keys >> np.uint64(64 - bits)
    return (bitmap[(top >> np.uint64(3)).astype(np.int64)] >> (top & np.uint64(7)).astype(np.uint8)) & 1 == 1


def _drop_boilerplate(keys: np.ndarray, owners: np.ndarray, seg_item: np.ndarray, limit: int | None
                      ) -> tuple[np.ndarray, np.ndarray, int]:
    """Drop the keys found in more than `limit` distinct items."""
    if limit is None or not len(keys):
        return keys, owners, 0
    pairs = np.unique(np.stack([keys, seg_item[owners].astype(np.uint64)], axis=1), axis=0)
    key_values, items_per_key = np.unique(pairs[:, 0], return_counts=True)
    common = key_values[items_per_key > limit]
    keep = ~np.isin(keys, common)
    return keys[keep], owners[keep], int(len(common))


def _group(keys: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted unique keys, where each key's owners start, the de-duplicated owners in key order)."""
    order = np.lexsort((owners, keys))
    keys, owners = keys[order], owners[order]
    fresh = np.ones(len(keys), dtype=bool)
    fresh[1:] = (keys[1:] != keys[:-1]) | (owners[1:] != owners[:-1])
    keys, owners = keys[fresh], owners[fresh]
    unique, first = np.unique(keys, return_index=True)
    return unique, np.concatenate((first, [len(keys)])).astype(np.int64), owners
