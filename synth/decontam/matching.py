"""From a batch's raw n-gram hits to confirmed matches: which item, which words, and how much of the item.

Everything is array work over the whole batch; Python only loops over the rows that end up flagged, to build their
results. In rounds (at most CANDIDATES):
1. every hit key is expanded to the items that hold it, and each row's items are ranked by how many of the row's
   windows each holds;
2. each unsettled row's next item is checked: the row's windows against the item's own windows, word by word, so a
   hash collision can never confirm a match;
3. for the rows confirmed, the longest run of matched words, and the share of each item segment (question,
   answers) that the matched n-grams cover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hashing import Words, window_keys
from .ngram import NgramIndex, NgramMatch

CANDIDATES = 3          # items tried per row before its hits are put down to hash collisions
CACHED_ITEMS = 4096
OWNERS_PER_KEY = 16
VOTERS_PER_ROW = 32
SPAN_WORDS = 60         # the matched span is shown up to this many words (its full length is kept)
_PAIR = np.uint64(0xD6E8FEB86659FD93)


@dataclass
class _Hits:
    start: np.ndarray       # the window's first word in the batch
    length: np.ndarray
    key: np.ndarray
    key_at: np.ndarray      # the key's position in index.keys
    text: np.ndarray        # which text of the batch the window is in
    row: np.ndarray

    def take(self, chosen) -> "_Hits":
        return _Hits(*(getattr(self, name)[chosen] for name in ("start", "length", "key", "key_at", "text", "row")))


@dataclass
class _ItemWindows:
    keys: np.ndarray        # keys of every indexed window of the item
    starts: np.ndarray      # each window's first word in `words`
    lengths: np.ndarray
    words: np.ndarray       # the word hashes of the item's segments, one after the other
    bounds: np.ndarray      # where each segment starts in `words`, and the end
    fields: list[int]       # 0 the question, k the k-th answer


def match_batch(index: NgramIndex, texts: list[list[str]]) -> list[NgramMatch | None]:
    words, owners = index.encode(texts)
    results: list[NgramMatch | None] = [None] * len(texts)
    hits = _collect(index, words, owners)
    if hits is None:
        return results
    ranked = _rank_items(index, hits)
    for round_ in range(CANDIDATES):
        choice = np.full(len(texts), -1, dtype=np.int64)
        for row, items in ranked.items():
            if results[row] is None and round_ < len(items):
                choice[row] = items[round_]
        if (choice < 0).all():
            break
        for row, match in _confirm(index, words, hits.take(choice[hits.row] >= 0), choice, owners).items():
            results[row] = match
    return results


def _collect(index: NgramIndex, words: Words, owners) -> _Hits | None:
    found = index.hits(words)
    if not found:
        return None
    start = np.concatenate([first for first, _, _ in found])
    length = np.concatenate([np.full(len(first), m, dtype=np.int64) for first, m, _ in found])
    key_at = np.concatenate([at for _, _, at in found])
    text = words.text[start]
    row = np.array([owner[0] for owner in owners], dtype=np.int64)[text]
    order = np.lexsort((start, row))                                    # grouped by row, in word order
    return _Hits(start, length, index.keys[key_at], key_at, text, row).take(order)


def _rank_items(index: NgramIndex, hits: _Hits) -> dict[int, list[int]]:
    """For each row, its items ranked by the windows of the row they hold, each window weighing 1/k for an n-gram
    that k items hold: an item's own content outweighs template wording that many items share.

    Two bounds keep a row that copies a long passage from costing more than the rest of its batch: the votes come
    from at most VOTERS_PER_ROW of its windows, spread evenly over it, and an n-gram held by more than
    OWNERS_PER_KEY items votes for the first of them only (its weight is next to nothing anyway)."""
    hits = hits.take(_spread_out(hits.row, VOTERS_PER_ROW))
    low, high = index.owner_starts[hits.key_at], index.owner_starts[hits.key_at + 1]
    owned, hit_of = _expand(low, high, OWNERS_PER_KEY)
    width = int(index.stats["items"])
    pairs, _ = _counted(hit_of * width + index.seg_item[index.owners[owned]].astype(np.int64))
    holders = np.diff(np.r_[np.flatnonzero(np.r_[True, pairs[1:] // width != pairs[:-1] // width]), len(pairs)])
    weight = np.repeat(1.0 / holders, holders)                          # the distinct items one window names
    row_items = hits.row[pairs // width] * width + pairs % width
    order = np.argsort(row_items, kind="stable")
    row_items, weight = row_items[order], weight[order]
    first = np.flatnonzero(np.r_[True, row_items[1:] != row_items[:-1]])
    votes, row_items = np.add.reduceat(weight, first), row_items[first]
    rows, items = row_items // width, row_items % width
    ranked: dict[int, list[int]] = {}
    for row, item in zip(*(a[np.lexsort((items, -votes, rows))].tolist() for a in (rows, items))):
        ranked.setdefault(row, []).append(item)
    return ranked


def _spread_out(rows: np.ndarray, limit: int) -> np.ndarray:
    """Positions of at most `limit` entries per row, evenly spaced within the row (`rows` grouped, as they are)."""
    first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    counts = np.diff(np.r_[first, len(rows)])
    rank = np.arange(len(rows)) - np.repeat(first, counts)
    total = np.repeat(counts, counts)
    return np.flatnonzero((rank * limit) // total != np.maximum(rank - 1, -1) * limit // total)


def _expand(starts: np.ndarray, stops: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All of range(start, stop) for each pair (at most `limit` of each), and which pair each value came from."""
    counts = stops - starts if limit is None else np.minimum(stops - starts, limit)
    origin = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + within, origin


def _member(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Whether each value is in the sorted array `pool`."""
    if not len(pool):
        return np.zeros(len(values), dtype=bool)
    return pool[np.minimum(np.searchsorted(pool, values), len(pool) - 1)] == values


def _counted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values, sorted, and how often each occurs (np.unique's hash path is slow on these)."""
    values = np.sort(values)
    first = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return values[first], np.diff(np.r_[first, len(values)])


# ---- confirming --------------------------------------------------------------------------------------------

@dataclass
class _Table:
    """The indexed windows of several items, one after the other, looked up by (item, key)."""

    pair: np.ndarray        # sorted (item, key) hashes
    order: np.ndarray       # window number of each sorted pair
    keys: np.ndarray
    items: np.ndarray
    starts: np.ndarray      # each window's first word in `words`
    lengths: np.ndarray
    words: np.ndarray
    offsets: dict[int, int]     # where each item's words start in `words`


def _confirm(index: NgramIndex, words: Words, hits: _Hits, choice: np.ndarray, owners) -> dict[int, NgramMatch]:
    """The rows whose chosen item really holds some of their windows, with what they match."""
    table = _table(index, sorted(set(choice[hits.row].tolist())))
    if not len(table.pair):
        return {}
    pair = _pair(choice[hits.row], hits.key)
    at = np.minimum(np.searchsorted(table.pair, pair), len(table.pair) - 1)
    present = np.flatnonzero(table.pair[at] == pair)         # (the same test as _member, keeping the position)
    hits, window = hits.take(present), table.order[at[present]]
    same = np.zeros(len(window), dtype=bool)
    for m in set(hits.length.tolist()):                                 # word by word, a length at a time
        chosen = np.flatnonzero(hits.length == m)
        offsets = np.arange(m)
        same[chosen] = (words.hashes[hits.start[chosen, None] + offsets]
                        == table.words[table.starts[window[chosen], None] + offsets]).all(axis=1)
    hits = hits.take(same)
    if not len(hits.row):
        return {}
    runs = _longest_runs(hits)
    per_row = np.bincount(hits.row, minlength=len(choice))
    found = {}
    for (row, (first, last, text)), (coverage, segment) in zip(runs.items(), _coverage(index, table, hits, choice,
                                                                                       runs)):
        shown = words.span(first, min(last, first + SPAN_WORDS)) + (" ..." if last - first > SPAN_WORDS else "")
        found[row] = NgramMatch(int(choice[row]), owners[text][1], shown, last - first, round(coverage, 4), segment,
                                int(per_row[row]))
    return found


def _pair(items: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """One hash for an (item, key) pair; a clash could only hide a hit, which the word check would refuse anyway."""
    return keys * _PAIR + items.astype(np.uint64)


def _table(index: NgramIndex, items: list[int]) -> _Table:
    windows = [_item_windows(index, item) for item in items]
    sizes = np.array([len(w.words) for w in windows], dtype=np.int64)
    word_offsets = np.concatenate(([0], np.cumsum(sizes)))[:-1]
    counts = [len(w.keys) for w in windows]
    keys = np.concatenate([w.keys for w in windows])
    owners = np.repeat(np.array(items, dtype=np.int64), counts)
    pair = _pair(owners, keys)
    order = np.argsort(pair, kind="stable")
    return _Table(pair[order], order, keys, owners,
                  np.concatenate([w.starts + offset for w, offset in zip(windows, word_offsets)]),
                  np.concatenate([w.lengths for w in windows]), np.concatenate([w.words for w in windows]),
                  dict(zip(items, word_offsets.tolist())))


def _longest_runs(hits: _Hits) -> dict[int, tuple[int, int, int]]:
    """Per row, the longest stretch of words covered by matched windows that overlap or touch: (start, end, text).
    The batch's words run row after row, so one pass over the windows sorted by start serves every row."""
    order = np.lexsort((hits.start, hits.row))
    starts, ends = hits.start[order], hits.start[order] + hits.length[order]
    texts, rows = hits.text[order], hits.row[order]
    reach = np.maximum.accumulate(ends)
    fresh = np.r_[True, (starts[1:] > reach[:-1]) | (texts[1:] != texts[:-1])]
    first = np.flatnonzero(fresh)
    run_ends = np.maximum.reduceat(ends, first)
    best = np.lexsort((starts[first], -(run_ends - starts[first]), rows[first]))
    keep = best[np.r_[True, rows[first][best][1:] != rows[first][best][:-1]]]
    return {int(rows[first][k]): (int(starts[first][k]), int(run_ends[k]), int(texts[first][k])) for k in keep}


def _coverage(index: NgramIndex, table: _Table, hits: _Hits, choice: np.ndarray, rows: dict) -> list[tuple[float, int]]:
    """Per row (in `rows` order): the best share of an item segment covered by the item's windows whose n-grams the
    row holds, and that segment's field (0 the question, k the k-th answer)."""
    row_list = np.array(list(rows), dtype=np.int64)
    items = choice[row_list]
    lows = np.array([table.offsets[int(i)] for i in items], dtype=np.int64)
    windows = [_item_windows(index, int(i)) for i in items]
    highs = lows + np.array([len(w.words) for w in windows], dtype=np.int64)
    # Every window of every row's item, tagged with the row; kept when the row holds its n-gram.
    span_of = np.searchsorted(table.starts, lows)          # table windows are grouped by item, in word order
    picked, owner = _expand(span_of, np.searchsorted(table.starts, highs))
    held = _member(_pair(row_list[owner], table.keys[picked]), np.sort(_pair(hits.row, hits.key)))
    block = np.concatenate(([0], np.cumsum(highs - lows)))            # each row gets its own stretch of marks
    local = table.starts[picked[held]] - lows[owner[held]] + block[owner[held]]
    marks = np.zeros(int(block[-1]) + 1, dtype=np.int64)
    np.add.at(marks, local, 1)
    np.add.at(marks, local + table.lengths[picked[held]], -1)
    covered = np.cumsum(marks)[:-1] > 0
    result = []
    for number, w in enumerate(windows):
        shares = [float(covered[block[number] + low:block[number] + high].mean()) if high > low else 0.0
                  for low, high in zip(w.bounds[:-1], w.bounds[1:])]
        best = int(np.argmax(shares)) if shares else 0
        result.append((shares[best] if shares else 0.0, w.fields[best] if w.fields else 0))
    return result


def _item_windows(index: NgramIndex, item: int) -> _ItemWindows:
    cache = index.__dict__.setdefault("_window_cache", {})
    if item in cache:
        return cache[item]
    segments = index.item_segments(item)
    sizes = np.array([len(seg) for _, seg in segments], dtype=np.int64)
    words = np.concatenate([seg for _, seg in segments]) if segments else np.zeros(0, np.uint64)
    segment_of = np.repeat(np.arange(len(segments)), sizes)
    question = int(sizes[0]) if segments and segments[0][0] == 0 and sizes[0] < index.n else None
    lengths = tuple(sorted({index.n} | ({question} if question in index.lengths else set())))
    keys, starts, spans = [], [], []
    for m, (found, first) in window_keys(words, segment_of, lengths).items():
        keep = first >= 0 if m == index.n else first == 0              # a short question is indexed whole only
        keys.append(found[keep])
        starts.append(first[keep])
        spans.append(np.full(int(keep.sum()), m, dtype=np.int64))
    keys_, starts_, spans_ = np.concatenate(keys), np.concatenate(starts), np.concatenate(spans)
    order = np.argsort(starts_, kind="stable")                         # in word order, as _coverage expects
    if len(cache) >= CACHED_ITEMS:
        cache.clear()
    cache[item] = _ItemWindows(keys_[order], starts_[order], spans_[order], words,
                               np.concatenate(([0], np.cumsum(sizes))), [field for field, _ in segments])
    return cache[item]
