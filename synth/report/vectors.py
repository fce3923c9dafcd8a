"""Task embeddings for the report: the ones the run's gate saved in RUN/gate/ where they are sound, embedded afresh
otherwise (the store is opened read-only: a report never writes into a run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputFileError, RunFolderError
from ..gate.embeddings import DEFAULT_EMBEDDER, Embedder, EmbeddingStore, shared_embedder
from .reading import json_file

GATE_FOLDER = "gate"           # where a run keeps its gate's vectors (see NoveltyGate(store=...))


class Vectors:
    """Unit vectors for task texts by id: saved ones first, the rest embedded (and the embedder loaded) on demand."""

    def __init__(self, run: Path, config: dict, embedder: Embedder | None, notes: list[str]):
        self.stored, stored_by = _gate_vectors(run, embedder, notes)
        self.embedder: Embedder | str = (embedder if embedder is not None
                                         else stored_by or config.get("embedder") or DEFAULT_EMBEDDER)

    def of(self, ids: list[str], texts: list[str]) -> np.ndarray:
        found = {i: self.stored[i] for i in ids if i in self.stored}
        missing = [k for k, i in enumerate(ids) if i not in found]
        if missing:
            if isinstance(self.embedder, str):
                self.embedder = shared_embedder(self.embedder)
            for k, vector in zip(missing, self.embedder.encode([texts[k] for k in missing])):
                found[ids[k]] = vector
        if not ids:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([found[i] for i in ids]).astype(np.float32)


def _stored_vectors(folder: Path, embedder: Embedder | None, notes: list[str]
                    ) -> tuple[dict[str, np.ndarray], str | None]:
    """The vectors a run's gate saved, by id, and the embedder that made them; nothing when there are none, or
    when they come from another embedder than the one given."""
    meta = json_file(folder / EmbeddingStore.META, "")
    if not meta:
        return {}, None
    name, dim = meta.get("embedder"), meta.get("dim")
    if not isinstance(name, str) or type(dim) is not int or dim < 1:
        raise InputFileError(folder / EmbeddingStore.META, "lacks the embedder's name or dimension")
    if embedder is not None and (embedder.name, embedder.dim) != (name, dim):
        return {}, None
    ids, _, vectors, bad = EmbeddingStore(folder, name, dim, writable=False).load()
    if bad:
        notes.append(f"{folder / EmbeddingStore.VECTORS}: {len(bad)} of {len(ids)} saved vectors are missing or "
                     "damaged; the report embedded those tasks afresh (synth generate --resume repairs the file)")
    skip = set(bad)
    return {item_id: vectors[i] for i, item_id in enumerate(ids) if i not in skip}, name


def _gate_vectors(run: Path, embedder: Embedder | None, notes: list[str]) -> tuple[dict[str, np.ndarray], str | None]:
    """The gate store's vectors, or none with a note when it cannot be read: the store is a cache of embeddings,
    not the data, so the report embeds the tasks afresh rather than stopping."""
    try:
        return _stored_vectors(run / GATE_FOLDER, embedder, notes)
    except (InputFileError, RunFolderError) as exc:
        notes.append(f"{exc}; embedded the tasks afresh instead (move {run / GATE_FOLDER} aside and "
                     "synth generate --resume rebuilds it)")
        return {}, None
