"""Stage 1: n-gram matching against one benchmark, through a hashed index built once and kept on disk.

Each item is split into segments (its question, then each answer) and each segment into normalised words
(`text.words`). The index holds a 64-bit key for every n-word window of every segment, and, for a question shorter
than n words (but at least `min_words`), the key of its whole word sequence. Keys live in one sorted numpy array,
each with the segments that hold it, so a lookup is a binary search and the index of a 15K-item benchmark is a few
megabytes, not a set of millions of Python tuples.

Words are numbered by the benchmark's own vocabulary. A dataset word outside it can be part of no benchmark n-gram,
so it counts as a barrier: windows across it are never looked up. Dataset rows are checked in batches with numpy
(window keys for a whole batch at once); only a row with a hit comes back to Python, where the hit is confirmed word
by word (so a hash collision can never flag a row) and its matched span and the item's coverage are measured.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .benchmarks import Benchmark
from .text import words

FORMAT_VERSION = 1
_BASE = np.uint64(0x9E3779B97F4A7C15)     # odd, so the rolling hash loses no information per step
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def window_keys(ids: np.ndarray, lengths: tuple[int, ...]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each length m in `lengths`: the keys of every window of m words that holds no barrier (id 0), and where
    each window starts. One rolling pass serves every length."""
    found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if not len(ids) or not lengths:
        return {m: (np.zeros(0, np.uint64), np.zeros(0, np.int64)) for m in lengths}
    barriers = np.concatenate(([0], np.cumsum(ids == 0)))
    rolling = np.zeros(len(ids), dtype=np.uint64)
    for m in range(1, max(lengths) + 1):
        count = len(ids) - m + 1
        if count <= 0:
            break
        rolling = rolling[:count] * _BASE + ids[m - 1:m - 1 + count]
        if m in lengths:
            starts = np.flatnonzero(barriers[m:m + count] == barriers[:count])
            found[m] = (_mix(rolling[starts], m), starts)
    for m in lengths:
        found.setdefault(m, (np.zeros(0, np.uint64), np.zeros(0, np.int64)))
    return found


def _mix(keys: np.ndarray, length: int) -> np.ndarray:
    """Spread the rolling hash over all 64 bits, with the window length folded in."""
    keys = keys + np.uint64(length)
    keys ^= keys >> np.uint64(31)
    keys *= _MIX
    keys ^= keys >> np.uint64(29)
    return keys


@dataclass
class NgramMatch:
    item: int                  # the item's position in its benchmark
    row_segment: int           # which of the row's texts holds the match
    span: str                  # the longest matched run of words, normalised
    coverage: float            # the share of the item's best-covered segment that the row's matches cover
    item_segment: int          # 0: the item's question; k: its k-th answer
    windows: int               # matched windows, confirmed word by word


class NgramIndex:
    """The hashed n-gram index of one benchmark (see the module docstring)."""

    def __init__(self, n: int, vocabulary: list[bytes], arrays: dict[str, np.ndarray], stats: dict[str, int]):
        self.n, self.words, self.stats = n, vocabulary, stats
        self.vocab = {word: number for number, word in enumerate(vocabulary, start=1)}
        self.keys = arrays["keys"]                  # sorted, unique uint64
        self.owner_starts = arrays["owner_starts"]  # per key, where its segments start in `owners`
        self.owners = arrays["owners"]              # segment numbers
        self.seg_item = arrays["seg_item"]          # per segment: its item's position
        self.seg_field = arrays["seg_field"]        # per segment: 0 the question, k the k-th answer
        self.seg_starts = arrays["seg_starts"]      # per segment: where its word ids start in `seg_ids`
        self.seg_ids = arrays["seg_ids"]
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
        vocab: dict[bytes, int] = {}
        seg_ids, seg_item, seg_field = [], [], []
        for position, item in enumerate(benchmark.items):
            for number, text in enumerate((item.prompt, *item.answers)):
                seg_ids.append([vocab.setdefault(word, len(vocab) + 1) for word in words(text)])
                seg_item.append(position)
                seg_field.append(number)
        sizes = np.array([len(ids) for ids in seg_ids], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(sizes + 1)))        # each segment followed by a barrier
        flat = np.zeros(int(starts[-1]), dtype=np.uint64)
        for start, ids in zip(starts, seg_ids):
            flat[start:start + len(ids)] = ids
        is_question = np.array(seg_field, dtype=np.int64) == 0
        short = is_question & (sizes < n) & (sizes >= min_words)
        lengths = tuple(sorted({n, *(int(m) for m in sizes[short])}))
        pairs_keys, pairs_segs = [], []
        for m, (keys, window_starts) in window_keys(flat, lengths).items():
            segment = np.searchsorted(starts, window_starts, side="right") - 1
            keep = (sizes[segment] >= n) if m == n else (short[segment] & (sizes[segment] == m)
                                                         & (window_starts == starts[segment]))
            pairs_keys.append(keys[keep])
            pairs_segs.append(segment[keep])
        keys, owners = np.concatenate(pairs_keys), np.concatenate(pairs_segs).astype(np.int32)
        seg_item_arr = np.array(seg_item, dtype=np.int32)
        keys, owners, dropped = _drop_boilerplate(keys, owners, seg_item_arr, boilerplate)
        unique, owner_starts, owners = _group(keys, owners)
        stats = {"items": len(benchmark.items), "segments": len(seg_ids), "keys": len(unique),
                 "short_questions": int(short.sum()),
                 "unindexed_questions": int((is_question & (sizes < min_words)).sum()),
                 "boilerplate_ngrams": dropped}
        words_by_id = sorted(vocab, key=vocab.__getitem__)
        arrays = {"keys": unique, "owner_starts": owner_starts, "owners": owners, "seg_item": seg_item_arr,
                  "seg_field": np.array(seg_field, dtype=np.int16), "seg_starts": np.concatenate(([0], np.cumsum(sizes))),
                  "seg_ids": np.array([i for ids in seg_ids for i in ids], dtype=np.int32),
                  "lengths": np.array(lengths, dtype=np.int64)}
        return cls(n, words_by_id, arrays, stats)

    # ---- saving --------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index to `path` (.npz, no pickles), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"version": FORMAT_VERSION, "n": self.n, "stats": self.stats}).encode("utf-8")
        arrays = {"keys": self.keys, "owner_starts": self.owner_starts, "owners": self.owners,
                  "seg_item": self.seg_item, "seg_field": self.seg_field, "seg_starts": self.seg_starts,
                  "seg_ids": self.seg_ids, "lengths": np.array(self.lengths, dtype=np.int64),
                  "words": np.frombuffer(b"\n".join(self.words), dtype=np.uint8),
                  "meta": np.frombuffer(meta, dtype=np.uint8)}
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
            raw = arrays.pop("words").tobytes()
            vocabulary = raw.split(b"\n") if raw else []
            return cls(int(meta["n"]), vocabulary, arrays, meta["stats"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # ---- matching ------------------------------------------------------------------------------------

    def encode(self, texts: list[list[str]]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """Word ids of a batch of rows (each a list of texts) in one array, a barrier after every text; with where
        each text starts and, per text, (row, text number)."""
        get = self.vocab.get
        flat: list[int] = []
        starts, owners = [], []
        for row, row_texts in enumerate(texts):
            for number, text in enumerate(row_texts):
                starts.append(len(flat))
                owners.append((row, number))
                flat.extend([get(word, 0) for word in words(text)])
                flat.append(0)
        return np.array(flat, dtype=np.uint64), np.array(starts, dtype=np.int64), owners

    def hits(self, ids: np.ndarray) -> list[tuple[np.ndarray, int, np.ndarray]]:
        """Per window length: (the start of every window whose key is in the index, the length, the key's position).
        A bitmap of the keys' top bits turns most windows away before the binary search, which would otherwise
        cost a cache miss per step for every window."""
        found = []
        if not len(self.keys):
            return found
        for m, (keys, starts) in window_keys(ids, self.lengths).items():
            maybe = np.flatnonzero(_bit(self.bitmap, keys, self.bitmap_bits))
            keys, starts = keys[maybe], starts[maybe]
            at = np.searchsorted(self.keys, keys)
            at[at == len(self.keys)] = 0
            hit = self.keys[at] == keys
            if hit.any():
                found.append((starts[hit], m, at[hit]))
        return found

    def match(self, texts: list[list[str]]) -> list[NgramMatch | None]:
        """For each row (a list of its texts: instruction, input, response...), its best confirmed match, or None."""
        ids, starts, owners = self.encode(texts)
        results: list[NgramMatch | None] = [None] * len(texts)
        by_row: dict[int, list[tuple[int, int, int]]] = {}
        for window_starts, m, at in self.hits(ids):
            segment = np.searchsorted(starts, window_starts, side="right") - 1
            for start, seg, key_at in zip(window_starts.tolist(), segment.tolist(), at.tolist()):
                by_row.setdefault(owners[seg][0], []).append((start, m, key_at, seg))
        for row, hits in by_row.items():
            results[row] = self._resolve(ids, starts, owners, hits)
        return results

    def _resolve(self, ids: np.ndarray, starts: np.ndarray, owners, hits) -> NgramMatch | None:
        """The item with the most hits whose words really are there (a hash collision confirms nothing)."""
        votes: dict[int, int] = {}
        for _, _, key_at, _ in hits:
            for item in {int(i) for i in self.seg_item[self.owners[self.owner_starts[key_at]:
                                                                  self.owner_starts[key_at + 1]]]}:
                votes[item] = votes.get(item, 0) + 1
        for item in sorted(votes, key=lambda i: (-votes[i], i)):
            grams = self._item_grams(item)
            confirmed = [(start, m, seg) for start, m, _, seg in hits
                         if tuple(ids[start:start + m].tolist()) in grams.get(m, ())]
            if confirmed:
                return self._describe(item, ids, starts, owners, confirmed)
        return None

    def _item_segments(self, item: int) -> list[tuple[int, list[int]]]:
        first, last = int(self.item_first_seg[item]), int(self.item_first_seg[item + 1])
        return [(int(self.seg_field[s]), self.seg_ids[self.seg_starts[s]:self.seg_starts[s + 1]].tolist())
                for s in range(first, last)]

    def _item_grams(self, item: int) -> dict[int, set[tuple[int, ...]]]:
        grams: dict[int, set[tuple[int, ...]]] = {}
        for field, seg in self._item_segments(item):
            if len(seg) >= self.n:
                grams.setdefault(self.n, set()).update(tuple(seg[i:i + self.n]) for i in range(len(seg) - self.n + 1))
            elif field == 0 and len(seg) in self.lengths:
                grams.setdefault(len(seg), set()).add(tuple(seg))
        return grams

    def _describe(self, item: int, ids: np.ndarray, starts: np.ndarray, owners, confirmed) -> NgramMatch:
        span_start, span_end, span_seg = _longest_run(confirmed)
        matched = {tuple(ids[s:s + m].tolist()) for s, m, _ in confirmed}
        best_cover, best_field = 0.0, 0
        for field, seg in self._item_segments(item):
            covered = np.zeros(len(seg), dtype=bool)
            for m in {m for _, m, _ in confirmed}:
                for i in range(len(seg) - m + 1):
                    if tuple(seg[i:i + m]) in matched:
                        covered[i:i + m] = True
            cover = float(covered.mean()) if len(seg) else 0.0
            if cover > best_cover:
                best_cover, best_field = cover, field
        span = b" ".join(self.words[i - 1] for i in ids[span_start:span_end].tolist()).decode("utf-8", "replace")
        return NgramMatch(item, owners[span_seg][1], span, round(best_cover, 4), best_field, len(confirmed))


def _bit(bitmap: np.ndarray, keys: np.ndarray, bits: int) -> np.ndarray:
    """Whether each key's top `bits` bits are set in `bitmap` (a key that is not may not be in the index)."""
    top = keys >> np.uint64(64 - bits)
    return (bitmap[(top >> np.uint64(3)).astype(np.int64)] >> (top & np.uint64(7)).astype(np.uint8)) & 1 == 1


def _longest_run(windows: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """The longest stretch of words covered by overlapping matched windows: (start, end, text number)."""
    best = (0, 0, windows[0][2])
    run_start = run_end = -1
    run_seg = windows[0][2]
    for start, m, seg in sorted(windows):
        if start > run_end or seg != run_seg:
            run_start, run_end, run_seg = start, start + m, seg
        else:
            run_end = max(run_end, start + m)
        if run_end - run_start > best[1] - best[0]:
            best = (run_start, run_end, run_seg)
    return best


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
