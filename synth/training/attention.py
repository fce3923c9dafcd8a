"""Packed attention without a mask: each example in a packed row attends only to itself, causally.

transformers turns restarting position ids into a dense block-diagonal mask for SDPA. A dense mask pushes SDPA
off its fast kernels (on 2 CPU cores a 1,000-token packed row ran 2.4x slower than the same row unmasked) and costs
memory that grows with the square of the row. This attention instead reads the segment boundaries from the
position ids and runs the causal kernel on each segment:

- on a CUDA GPU in bf16/fp16, one call to torch's varlen flash attention over the whole flattened micro-batch;
- elsewhere, one causal SDPA call per segment (the work is the sum of the squared segment lengths, not the
  square of the row).

Registered with transformers under the name "synth_packed" (`attn_implementation="synth_packed"`). transformers
builds no mask for a custom implementation, so a decoding step with a KV cache (query shorter than keys) is
handled here too, and padding is its own segment whose outputs carry no label.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F

NAME = "synth_packed"
_VARLEN_DTYPES = (torch.bfloat16, torch.float16)
_varlen_failed: list[str] = []                 # set once if this GPU's varlen kernel refuses; per-segment from then


_last: list = [None, None]                     # (weak reference to a position-ids tensor, its bounds)


def segment_bounds(position_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per row, the (start, end) of each run of consecutive positions; a new segment starts where they restart."""
    rows = []
    for positions in position_ids.tolist():
        starts = [0] + [i for i in range(1, len(positions)) if positions[i] != positions[i - 1] + 1]
        rows.append(list(zip(starts, starts[1:] + [len(positions)])))
    return rows


def _bounds_for(position_ids: torch.Tensor, batch: int) -> list[list[tuple[int, int]]]:
    """Every layer of one forward pass gets the same position-ids tensor, so its bounds are worked out once.

    The tensor itself is remembered (weakly), not its address: a later tensor may reuse a freed one's memory.
    """
    ref, bounds = _last
    if ref is None or ref() is not position_ids:
        bounds = segment_bounds(position_ids.expand(batch, -1))
        _last[:] = [weakref.ref(position_ids), bounds]
    return bounds


def _varlen_available(query: torch.Tensor) -> bool:
    if _varlen_failed or not (query.is_cuda and query.dtype in _VARLEN_DTYPES):
        return False
    try:
        from torch.nn.attention import varlen  # noqa: F401
    except ImportError:
        return False
    return True


def _varlen(query, key, value, bounds, scale: float | None) -> torch.Tensor:
    """One flash-attention call over every segment of every row; input (B, H, T, D), output (B, T, H, D)."""
    from torch.nn.attention.varlen import varlen_attn

    batch, heads, length, dim = query.shape
    lengths = [end - start for row in bounds for start, end in row]
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int32, device=query.device)
    cu[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int32, device=query.device), 0)
    flat = lambda t: t.transpose(1, 2).reshape(batch * length, t.shape[1], dim)  # noqa: E731
    out = varlen_attn(flat(query), flat(key), flat(value), cu, cu, max(lengths), max(lengths), scale=scale,
                      window_size=(-1, 0), enable_gqa=key.shape[1] != heads)
    return out.reshape(batch, length, heads, dim)


def _per_segment(query, key, value, bounds, scale: float | None, dropout: float) -> torch.Tensor:
    gqa = key.shape[1] != query.shape[1]
    rows = []
    for b, row in enumerate(bounds):
        parts = [F.scaled_dot_product_attention(query[b:b + 1, :, s:e], key[b:b + 1, :, s:e], value[b:b + 1, :, s:e],
                                                is_causal=True, scale=scale, dropout_p=dropout, enable_gqa=gqa)
                 for s, e in row]
        rows.append(torch.cat(parts, dim=2) if len(parts) > 1 else parts[0])
    return torch.cat(rows, dim=0).transpose(1, 2)


def _with_cache(query, key, value, scale: float | None) -> torch.Tensor:
    """A decoding step: the queries are the last positions of one sequence, so align the causal mask right."""
    q_len, k_len = query.shape[2], key.shape[2]
    mask = torch.ones(q_len, k_len, dtype=torch.bool, device=query.device).tril(k_len - q_len)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale,
                                          enable_gqa=key.shape[1] != query.shape[1]).transpose(1, 2)


def packed_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     position_ids: torch.Tensor | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """The transformers attention-interface function; returns (output of shape (B, T, H, D), no weights)."""
    dropout = dropout if module.training else 0.0
    if query.shape[2] != key.shape[2]:
        out = _with_cache(query, key, value, scaling)
    else:
        if position_ids is None:
            bounds = [[(0, query.shape[2])]] * query.shape[0]
        else:
            bounds = _bounds_for(position_ids, query.shape[0])
        out = None
        if _varlen_available(query) and dropout == 0.0:
            try:
                out = _varlen(query, key, value, bounds, scaling)
            except RuntimeError as exc:        # an unsupported head size or GPU: the exact fallback below
                _varlen_failed.append(str(exc).splitlines()[0])
        if out is None:
            out = _per_segment(query, key, value, bounds, scaling, dropout)
    return out.contiguous(), None


def register() -> str:
    """Make "synth_packed" a transformers attention implementation (idempotent); returns its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_attention)
    return NAME
