"""The novelty gate, used by `generate` and `dedup` alike.

Two stages. The recall stage embeds each candidate and searches the pool for its top-k neighbours:

    score >= threshold                    rejected, stage "embedding"
    recall_threshold <= score < threshold the borderline band: a verifier decides (stage = the verifier's name)
    score < recall_threshold              accepted, stage "embedding"

Without a verifier the band is accepted, which is the plain one-threshold gate. A batch is judged in order,
search-then-add: every candidate is compared with the pool and with the batch's earlier accepted candidates, and
accepted candidates join the pool at once. The index is an exact inner-product index up to `flat_limit` vectors
and HNSW beyond (index="auto"); with a `store` folder every vector is kept on disk, so a resumed run never
embeds the same text twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from ..files import write_json_atomic
from .embeddings import Embedder, EmbeddingStore
from ..errors import ConfigError

INDEX_KINDS = ("auto", "flat", "hnsw")
FLAT_LIMIT = 1_000_000          # exact search stays under ~50 ms per query batch up to about here on a CPU
EMBEDDING_STAGE = "embedding"
INDEX_FILE, INDEX_META = "index.faiss", "index.json"


@dataclass
class Verdict:
    accepted: bool
    neighbour_id: str | None
    score: float | None        # cosine similarity to the nearest pool item, None for an empty pool
    stage: str = EMBEDDING_STAGE   # which stage decided


class Verifier(Protocol):
    """The precision stage: says, for each pair of task texts, whether they are the same task."""

    stage: str

    def same_task(self, pairs: list[tuple[str, str]]) -> list[bool]: ...


def make_index(dim: int, kind: str) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
        return index
    raise ConfigError(f"unknown index kind {kind!r}; choose one of {', '.join(INDEX_KINDS)}")


def index_kind_for(size: int, requested: str = "auto", flat_limit: int = FLAT_LIMIT) -> str:
    """The index a pool of `size` vectors gets: the requested kind, or for "auto" flat up to flat_limit."""
    if requested not in INDEX_KINDS:
        raise ConfigError(f"unknown index kind {requested!r}; choose one of {', '.join(INDEX_KINDS)}")
    if requested != "auto":
        return requested
    return "flat" if size <= flat_limit else "hnsw"


class NoveltyGate:
    def __init__(self, embedder: Embedder, threshold: float = 0.9, *, recall_threshold: float | None = None,
                 top_k: int = 3, verifier: Verifier | None = None, index: str = "auto",
                 flat_limit: int = FLAT_LIMIT, store: str | Path | None = None):
        self.embedder = embedder
        self.threshold = threshold
        self.recall_threshold = threshold if recall_threshold is None else recall_threshold
        if not 0.0 <= self.recall_threshold <= threshold:
            raise ConfigError("the recall threshold must lie between 0 and the novelty threshold")
        self.top_k = max(1, top_k)
        self.verifier = verifier
        self.requested_index, self.flat_limit = index, flat_limit
        self.index_kind = index_kind_for(0, index, flat_limit)
        self.index = make_index(embedder.dim, self.index_kind)
        self.ids: list[str] = []
        self.texts: list[str] = []
        self._position: dict[str, int] = {}
        self.encoded = 0           # texts this gate has embedded: a resumed gate should not re-embed its pool
        self.verifier_pairs = 0    # pairs sent to the verifier
        self.repaired = 0          # stored vectors found damaged and embedded again
        self.store = EmbeddingStore(store, embedder.name, embedder.dim) if store is not None else None
        if self.store is not None:
            self._load_store()

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._position

    # ---- the pool -------------------------------------------------------------------------------

    def add(self, ids: list[str], texts: list[str]) -> None:
        """Put items in the pool without checking them (seeds, or the accepted tasks of a resumed run).
        Items already in the pool, by id, are skipped and not embedded again."""
        fresh: dict[str, str] = {}
        for item_id, text in zip(ids, texts):
            if item_id not in self._position and item_id not in fresh:
                fresh[item_id] = text
        self._add(list(fresh), list(fresh.values()), self._encode(list(fresh.values())))

    def vectors(self) -> np.ndarray:
        """Every pool vector, in pool order."""
        if not len(self.ids):
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return self.index.reconstruct_n(0, len(self.ids))

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return self.embedder.encode(texts)

    def _add(self, ids: list[str], texts: list[str], vectors: np.ndarray, persist: bool = True) -> None:
        if not len(ids):
            return
        if persist and self.store is not None:
            self.store.append(ids, texts, vectors)
        for item_id in ids:
            self._position[item_id] = len(self.ids)
            self.ids.append(item_id)
        self.texts.extend(texts)
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._maybe_switch_index()

    def _maybe_switch_index(self) -> None:
        wanted = index_kind_for(len(self.ids), self.requested_index, self.flat_limit)
        if wanted != self.index_kind:
            vectors = self.vectors()
            self.index = make_index(self.embedder.dim, wanted)
            self.index.add(vectors)
            self.index_kind = wanted

    # ---- persistence ----------------------------------------------------------------------------

    def save_index(self) -> None:
        """Snapshot the faiss index beside the stored vectors, so loading skips rebuilding it (HNSW builds slowly)."""
        if self.store is None:
            raise ConfigError("this gate has no store folder to save its index in")
        folder = self.store.folder
        tmp = folder / (INDEX_FILE + ".tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, folder / INDEX_FILE)
        write_json_atomic(folder / INDEX_META, {"kind": self.index_kind, "count": len(self.ids)})

    def _load_store(self) -> None:
        ids, texts, vectors, bad = self.store.load()
        if bad:                     # a damaged vectors file: embed those items again and repair the store
            vectors = vectors.copy()
            vectors[bad] = self._encode([texts[i] for i in bad])
            self.repaired = len(bad)
            self.store.rewrite_vectors(vectors)
        snapshot = None if bad else self._read_snapshot(len(ids))
        if snapshot is not None:
            index, count = snapshot
            self.index, self.index_kind = index, index_kind_for(count, self.requested_index, self.flat_limit)
            for item_id in ids[:count]:
                self._position[item_id] = len(self.ids)
                self.ids.append(item_id)
            self.texts.extend(texts[:count])
            ids, texts, vectors = ids[count:], texts[count:], vectors[count:]
        self._add(ids, texts, vectors, persist=False)

    def _read_snapshot(self, stored: int) -> tuple[faiss.Index, int] | None:
        folder = self.store.folder
        try:
            meta = json.loads((folder / INDEX_META).read_text(encoding="utf-8"))
            count, kind = int(meta["count"]), meta["kind"]
        except (OSError, ValueError, KeyError):
            return None
        if count > stored or kind != index_kind_for(count, self.requested_index, self.flat_limit):
            return None
        try:
            index = faiss.read_index(str(folder / INDEX_FILE))
        except RuntimeError:        # a damaged snapshot is only a lost shortcut: the index is rebuilt
            return None
        return (index, count) if index.ntotal == count else None

    # ---- judging --------------------------------------------------------------------------------

    def judge(self, texts: list[str], vectors: np.ndarray | None = None) -> list[Verdict]:
        """Each text's verdict against the pool alone (the band asked of the verifier); the pool is left as it
        was. For comparing rows with a fixed pool, such as a benchmark's items."""
        vectors = self._encode(texts) if vectors is None else vectors
        hits = self._search(vectors)
        judged = self._verify_pool_band(texts, hits)
        return [self._decide(text, text_hits, text_judged) for text, text_hits, text_judged in zip(texts, hits, judged)]

    def check(self, ids: list[str], texts: list[str]) -> list[Verdict]:
        """Judge a batch in order; each accepted item joins the pool before the next one is judged."""
        vectors = self._encode(texts)
        pool_hits = self._search(vectors)
        pool_judgements = self._verify_pool_band(texts, pool_hits)
        verdicts: list[Verdict] = []
        accepted_rows: list[int] = []
        for i, item_id in enumerate(ids):
            hits = list(pool_hits[i])
            if accepted_rows:
                sims = vectors[accepted_rows] @ vectors[i]
                hits += [(float(s), ids[j], texts[j]) for s, j in zip(sims, accepted_rows)]
            hits.sort(key=lambda hit: -hit[0])
            verdict = self._decide(texts[i], hits[: self.top_k + len(accepted_rows)], pool_judgements[i])
            verdicts.append(verdict)
            if verdict.accepted:
                accepted_rows.append(i)
        self._add([ids[i] for i in accepted_rows], [texts[i] for i in accepted_rows], vectors[accepted_rows])
        return verdicts

    def _search(self, vectors: np.ndarray) -> list[list[tuple[float, str, str]]]:
        """The top-k pool neighbours of each vector, as (score, id, text), best first."""
        if not len(self.ids) or not len(vectors):
            return [[] for _ in range(len(vectors))]
        scores, positions = self.index.search(vectors, min(self.top_k, len(self.ids)))
        return [[(float(s), self.ids[p], self.texts[p]) for s, p in zip(row_s, row_p) if p >= 0]
                for row_s, row_p in zip(scores, positions)]

    def _in_band(self, score: float) -> bool:
        return self.verifier is not None and self.recall_threshold <= score < self.threshold

    def _verify_pool_band(self, texts: list[str], pool_hits) -> list[dict[str, bool]]:
        """Ask the verifier about every borderline pool pair of the batch at once, so its calls run together.
        Items that the recall stage already rejects outright are not asked about."""
        asked: list[tuple[int, str, str]] = []
        for i, hits in enumerate(pool_hits):
            if hits and hits[0][0] >= self.threshold:
                continue
            asked += [(i, hit_id, hit_text) for score, hit_id, hit_text in hits if self._in_band(score)]
        answers = self._ask_verifier([(texts[i], hit_text) for i, _, hit_text in asked])
        judgements: list[dict[str, bool]] = [{} for _ in texts]
        for (i, hit_id, _), same in zip(asked, answers):
            judgements[i][hit_id] = same
        return judgements

    def _ask_verifier(self, pairs: list[tuple[str, str]]) -> list[bool]:
        if not pairs:
            return []
        self.verifier_pairs += len(pairs)
        return list(self.verifier.same_task(pairs))

    def _decide(self, text: str, hits: list[tuple[float, str, str]], judged: dict[str, bool]) -> Verdict:
        if not hits:
            return Verdict(True, None, None, EMBEDDING_STAGE)
        best_score, best_id, _ = hits[0]
        if best_score >= self.threshold:
            return Verdict(False, best_id, best_score, EMBEDDING_STAGE)
        band = [hit for hit in hits if self._in_band(hit[0])]
        if not band:
            return Verdict(True, best_id, best_score, EMBEDDING_STAGE)
        unasked = [hit for hit in band if hit[1] not in judged]   # earlier members of this batch
        judged = {**judged, **dict(zip([h[1] for h in unasked], self._ask_verifier([(text, h[2]) for h in unasked])))}
        for score, hit_id, _ in band:
            if judged[hit_id]:
                return Verdict(False, hit_id, score, self.verifier.stage)
        return Verdict(True, best_id, best_score, self.verifier.stage)
