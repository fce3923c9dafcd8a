"""`DecontamConfig`: every setting of `synth decontaminate`, and of the decontamination `synth generate` runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..gate.embeddings import DEFAULT_EMBEDDER
from ..resources import cache_dir
from ..settings import setting
from ..teacher.session import CallSettings
from .benchmarks import KNOWN

# See bench/RESULTS.md, "Decontamination": MiniLM alone cannot tell a paraphrase from a templated neighbour, so without
# a verifier only close rewordings are flagged; with one, the model judges every row from 0.6 up.
SIMILARITY, SIMILARITY_WITH_VERIFIER = 0.9, 1.0
RECOMMENDED_RECALL_THRESHOLD = 0.6
# The verifier always asks at temperature 0 for a one-word answer, so these call settings are no flags of its own.
FIXED_CALL_SETTINGS = ("temperature", "top_p", "max_tokens")


@dataclass
class DecontamConfig(CallSettings):
    command: ClassVar[str] = "decontaminate"

    against: list[str] = setting(factory=list, help="Benchmarks: local files or folders (JSON, JSONL, Parquet, a "
                                 f"datasets folder), or names ({', '.join(KNOWN)}).")
    field: list[str] = setting(factory=list, help="For a local benchmark synth cannot read by shape: the question's "
                               "field, then any answer fields.")
    dataset_field: str | None = setting(None, "Check this field of each dataset row instead of its detected "
                                              "prompt and response.")
    ngram: int = setting(13, "Words per n-gram (13 as GPT-3; 8 as Tulu 3 and OLMo).", min=4, max=64)
    min_words: int = setting(4, "A benchmark question shorter than the n-gram is matched whole when it has at least "
                                "this many words (shorter ones are left to the embedding stage).", min=1, max=64)
    boilerplate: int | None = setting(None, "Ignore n-grams found in more than this many benchmark items: template "
                                            "wording shared by many items, not an item's own content.", min=1)
    embedding: bool = setting(True, "Run the embedding stage after the n-gram stage (off: n-grams only, much "
                                    "faster).")
    similarity: float | None = setting(None, "Flag a row whose cosine similarity to a benchmark question reaches "
                                             f"this (default {SIMILARITY}; with a --verifier {SIMILARITY_WITH_VERIFIER},"
                                             " so the model judges every row from --recall-threshold up).",
                                       min=0, min_open=True, max=1)
    recall_threshold: float | None = setting(None, "Lower edge of the band the --verifier judges (default "
                                                   f"{RECOMMENDED_RECALL_THRESHOLD} with a verifier).", min=0, max=1)
    top_k: int = setting(3, "Nearest benchmark questions each row is compared with.", min=1, max=100)
    embedder: str = setting(DEFAULT_EMBEDDER, "sentence-transformers model name or folder (default: bundled MiniLM).")
    index: str = setting("auto", "auto (exact search up to 1M items), flat or hnsw.", choices=("auto", "flat", "hnsw"))
    batch_size: int = setting(512, "Rows checked together.", min=1, max=1_000_000)
    workers: int | None = setting(None, "Processes for the n-gram stage (default: one per core; 1 keeps it in this "
                                        "process). A batch is split in chunks of 256 rows, so only a batch of more than 256 rows is shared out.",
                                  min=1, max=256)
    index_dir: str | None = setting(None, "Folder for built benchmark indexes (default: ~/.cache/synth/decontam, or "
                                          "$SYNTH_CACHE_DIR/decontam).")
    verifier_model: str | None = setting(None, "litellm model asked whether a row in the band is the same problem as "
                                               "its benchmark item.", flag="--verifier")

    def checks(self) -> list[str]:
        problems = super().checks()
        if self.recall_threshold is not None and self.recall_threshold > self.threshold(True):
            problems.append("--recall-threshold must be at most --similarity")
        if self.verifier_model and not self.embedding:
            problems.append("--verifier judges the embedding stage's band: drop --no-embedding")
        return problems

    def threshold(self, verifier: bool) -> float:
        """The similarity at which the embedding stage flags a row without asking anyone."""
        if self.similarity is not None:
            return self.similarity
        return SIMILARITY_WITH_VERIFIER if verifier else SIMILARITY

    def index_folder(self) -> Path:
        if self.index_dir:
            return Path(self.index_dir).expanduser()
        return cache_dir() / "decontam"
