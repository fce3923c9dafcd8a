"""Pack examples into rows and rows into batches, so no token is wasted on padding and no example sees another.

A packed row restarts its position ids at 0 for every example. transformers reads those resets and builds a
block-diagonal causal mask (SDPA, eager) or varlen boundaries (flash attention), so attention never crosses
from one example into another. The order is a pure function of (seed, epoch): resume replays it exactly.
"""

from __future__ import annotations

import bisect
import random
from typing import Sequence

import torch

from .masking import IGNORE, Encoded


def pack(lengths: Sequence[int], capacity: int, enabled: bool = True) -> list[list[int]]:
    """Example indices grouped into rows of at most `capacity` tokens (best fit, longest first).

    With `enabled` False every example gets a row of its own.
    """
    if not enabled:
        return [[i] for i in range(len(lengths))]
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []                  # (room left, row index), kept sorted
    for i in order:
        if lengths[i] > capacity:
            raise ValueError(f"example {i} has {lengths[i]} tokens, more than a row holds ({capacity})")
        spot = bisect.bisect_left(free, (lengths[i], -1))
        if spot == len(free):
            rows.append([i])
            room, row = capacity - lengths[i], len(rows) - 1
        else:
            room, row = free.pop(spot)
            rows[row].append(i)
            room -= lengths[i]
        if room > 0:
            bisect.insort(free, (room, row))
    return rows


def epoch_batches(lengths: Sequence[int], capacity: int, batch_size: int, per_step: int, seed: int, epoch: int,
                  packing: bool = True) -> list[list[list[int]]]:
    """The epoch's micro-batches (each a list of rows), a multiple of `per_step` long.

    Rows are shuffled by (seed, epoch). The last step is topped up with the epoch's first batches so every
    process in a step has work; those few examples are seen twice.
    """
    rows = pack(lengths, capacity, packing)
    random.Random(f"synth-train-{seed}-{epoch}").shuffle(rows)
    batches = [rows[i: i + batch_size] for i in range(0, len(rows), batch_size)]
    short = -len(batches) % per_step
    return batches + [batches[i % len(batches)] for i in range(short)]


def collate(examples: Sequence[Encoded], rows: Sequence[Sequence[int]], pad_id: int,
            flatten: bool = False) -> dict[str, torch.Tensor]:
    """input_ids, labels and position_ids for a micro-batch of rows.

    Rows are right-padded to the longest; padding is its own segment with label IGNORE. With `flatten` the rows
    are joined into one row with no padding at all, which is what varlen flash attention wants.
    """
    seqs = [[examples[i] for i in row] for row in rows]
    if flatten:
        seqs = [[e for row in seqs for e in row]]
    width = max(sum(len(e.input_ids) for e in row) for row in seqs)
    ids, labels, positions = [], [], []
    for row in seqs:
        r_ids, r_labels, r_pos = [], [], []
        for e in row:
            if e.labels[0] != IGNORE:
                raise ValueError("an example's first token must carry no label, or it would be trained on its neighbour")
            r_ids += e.input_ids
            r_labels += e.labels
            r_pos += range(len(e.input_ids))
        pad = width - len(r_ids)
        ids.append(r_ids + [pad_id] * pad)
        labels.append(r_labels + [IGNORE] * pad)
        positions.append(r_pos + list(range(pad)))
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "position_ids": torch.tensor(positions)}


def real_tokens(examples: Sequence[Encoded], rows: Sequence[Sequence[int]]) -> int:
    """Tokens of real examples in a micro-batch (padding excluded)."""
    return sum(len(examples[i].input_ids) for row in rows for i in row)
