"""Stage 2 (and 3): a benchmark's questions in the novelty gate's index, and a row judged against them alone.

The gate is `synth.gate.novelty.NoveltyGate`, the one `generate` and `dedup` use, with its on-disk store so a
benchmark is embedded once. Its verdicts carry the stage that decided them: "embedding" at or above the similarity
threshold, the verifier's stage in the band below it when there is a verifier.

Decontamination must not let rows join the pool (a dataset row is never a benchmark item), nor compare rows with each
other, which `NoveltyGate.check` does for deduplication. `judge()` runs the gate's own search, band verification and
decision on the pool as it stands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .benchmarks import Benchmark

if TYPE_CHECKING:                   # faiss loads only when a gate is built
    from ..gate.embeddings import Embedder
    from ..gate.novelty import NoveltyGate, Verdict, Verifier


def benchmark_gate(benchmark: Benchmark, embedder: Embedder, *, similarity: float, recall_threshold: float | None,
                   top_k: int, index: str, verifier: Verifier | None, store: Path | None) -> NoveltyGate:
    """A gate whose pool is the benchmark's questions; with `store`, their vectors are kept there and a later open
    embeds only the items it lacks."""
    from ..gate.novelty import NoveltyGate

    gate = NoveltyGate(embedder, similarity, recall_threshold=recall_threshold if verifier is not None else None,
                       top_k=top_k, verifier=verifier, index=index, store=store)
    missing = [item for item in benchmark.items if item.id not in gate]
    for start in range(0, len(missing), 1024):
        batch = missing[start:start + 1024]
        gate.add([item.id for item in batch], [item.prompt for item in batch])
    if store is not None and missing:
        gate.save_index()
    return gate


def judge(gate: NoveltyGate, texts: list[str], vectors: np.ndarray) -> list[Verdict]:
    """The gate's verdict on each text against its pool alone; the pool is left as it was."""
    return gate.judge(texts, vectors)
