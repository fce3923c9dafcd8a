"""The novelty gate: reject a candidate whose cosine similarity to any pool item, or to an earlier
candidate of the same batch, is at least the threshold. Accepted candidates join the pool at once."""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from .embeddings import Embedder


@dataclass
class Verdict:
    accepted: bool
    neighbour_id: str | None
    score: float | None        # cosine similarity to the nearest pool item, None for an empty pool
    stage: str = "embedding"   # which stage decided


class NoveltyGate:
    def __init__(self, embedder: Embedder, threshold: float = 0.9):
        self.embedder = embedder
        self.threshold = threshold
        self.index = faiss.IndexFlatIP(embedder.dim)
        self.ids: list[str] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: list[str], texts: list[str]) -> None:
        """Put items in the pool without checking them (seeds, or the accepted tasks of a resumed run)."""
        self._add(ids, self.embedder.encode(texts))

    def _add(self, ids: list[str], vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add(vectors)
            self.ids.extend(ids)

    def check(self, ids: list[str], texts: list[str]) -> list[Verdict]:
        """Judge a batch in order; each accepted item joins the pool before the next one is judged."""
        vectors = self.embedder.encode(texts)
        verdicts = []
        if len(self.ids):
            scores, positions = self.index.search(vectors, 1)
        for i, item_id in enumerate(ids):
            best_score, best_id = None, None
            if len(self.ids):
                # The batch's own accepted items were added after the search: compare against them directly.
                best_score, best_id = float(scores[i, 0]), self.ids[int(positions[i, 0])] if positions[i, 0] >= 0 else None
            accepted_in_batch = [j for j, v in enumerate(verdicts) if v.accepted]
            if accepted_in_batch:
                sims = vectors[accepted_in_batch] @ vectors[i]
                j = int(np.argmax(sims))
                if best_score is None or sims[j] > best_score:
                    best_score, best_id = float(sims[j]), ids[accepted_in_batch[j]]
            accepted = best_score is None or best_score < self.threshold
            verdicts.append(Verdict(accepted, best_id, best_score))
        accepted_rows = [i for i, v in enumerate(verdicts) if v.accepted]
        self._add([ids[i] for i in accepted_rows], vectors[accepted_rows])
        return verdicts
