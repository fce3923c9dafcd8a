"""`Decontaminator`: the benchmarks' indexes, opened once, and the stages a text goes through against them.

    with Decontaminator.open(["gsm8k", "my_eval.jsonl"], config=config, folder=run / "decontam", pin=True) as dec:
        flags = dec.check(instructions)                       # n-gram, then embedding (then the verifier's band)
        flags = dec.check(prompts, extra=[[("response", r)] for r in responses])
        dec.summary()                                         # counts per benchmark, stage and item, as JSON

`check` returns, for each text, None or the Flag of its strongest match: an n-gram match before an embedding one,
then the higher score. The indexes live in `folder` (by default the shared cache, ~/.cache/synth/decontam): a
subfolder per benchmark content, with an n-gram index per setting and the gate's embeddings per embedder, so each
is built once. With `pin=True` (a run folder) the
benchmark items themselves are kept there too, and a later open (`--resume`) uses them as they were, even if the
source changed or cannot be reached.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from ..files import read_json_object, write_json_atomic
from ..formats import iter_rows, write_rows
from .benchmarks import Benchmark, BenchmarkItem, load_benchmarks
from .config import RECOMMENDED_RECALL_THRESHOLD, DecontamConfig
from .ngram import NgramIndex
from .workers import NgramWorkers

NGRAM = "ngram"
PINNED = "benchmarks.json"


@dataclass
class Flag:
    """Why a text counts as contaminated: the benchmark item it matches, and how."""

    benchmark: str
    item_id: str
    stage: str                      # "ngram", "embedding", or the verifier's stage ("llm_verifier")
    score: float                    # n-gram: the coverage below; otherwise the cosine similarity to the item
    matched: str | None = None      # n-gram: the longest run of matched words, normalised
    coverage: float | None = None   # n-gram: the share of the item's question (or answer) the text covers
    field: str | None = None        # n-gram: which text matched ("prompt", "response"...)
    item_field: str | None = None   # n-gram: "question" or "answer"
    item_text: str = ""             # the benchmark item's question
    also: list[str] = dataclasses.field(default_factory=list)   # other benchmarks the text matches too

    @property
    def reason(self) -> str:
        """The rejection reason `generate` records."""
        return f"contaminated:{self.benchmark}"

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, **asdict(self)}


class Decontaminator:
    def __init__(self, benchmarks: list[Benchmark], indexes: list[NgramIndex], gates: list, config: DecontamConfig,
                 embedder=None, log: Callable[[str], None] | None = None):
        self.benchmarks, self.indexes, self.gates, self.config = benchmarks, indexes, gates, config
        self.workers = NgramWorkers(indexes, config.workers, log)
        self.embedder = embedder
        self._items = [{item.id: item for item in b.items} for b in benchmarks]
        self.checked = 0
        self.flagged: dict[str, Counter] = {b.name: Counter() for b in benchmarks}
        self.items_hit: dict[str, Counter] = {b.name: Counter() for b in benchmarks}

    @property
    def verifier(self):
        """The verifier the gates share (None without one); `bind()` it to the caller's event loop if need be."""
        return self.gates[0].verifier if self.gates else None

    # ---- opening -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, specs: Sequence[str] | None = None, *, config: DecontamConfig | None = None,
             folder: str | Path | None = None, embedder=None, verifier=None, pin: bool = False,
             log: Callable[[str], None] | None = None) -> "Decontaminator":
        """Load the benchmarks (`specs`, default `config.against`) and open or build their indexes in `folder`
        (default `config.index_folder()`). `embedder` and `verifier` override the config's; with the embedding
        stage off, no model is loaded."""
        config = (config or DecontamConfig()).validate()
        folder = Path(folder) if folder is not None else config.index_folder()
        log = log or (lambda line: None)
        benchmarks = _pinned_or_loaded(list(specs if specs is not None else config.against), config, folder, pin)
        indexes = [_ngram_index(b, config, _bench_folder(folder, b), log) for b in benchmarks]
        gates = []
        if config.embedding:
            from ..gate.embeddings import shared_embedder
            from .embedding import benchmark_gate

            embedder = embedder or shared_embedder(config.embedder)
            hard = config.threshold(verifier is not None)
            floor = config.recall_threshold if config.recall_threshold is not None else min(
                RECOMMENDED_RECALL_THRESHOLD, hard)
            for b in benchmarks:
                store = _bench_folder(folder, b) / f"embeddings-{_short(embedder.name)}"
                if not (store / "items.jsonl").is_file():
                    log(f"embedding the {len(b.items):,} questions of {b.name}")
                gates.append(benchmark_gate(b, embedder, similarity=hard, recall_threshold=floor, top_k=config.top_k,
                                            index=config.index, verifier=verifier, store=store))
        return cls(benchmarks, indexes, gates, config, embedder, log)

    def close(self) -> None:
        """Stop the n-gram workers, if any started (the verifier belongs to whoever opened it)."""
        self.workers.close()

    def __enter__(self) -> "Decontaminator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- checking ------------------------------------------------------------------------------------

    def check(self, texts: Sequence[str], extra: Sequence[Sequence[tuple[str, str]]] | None = None
              ) -> list[Flag | None]:
        """For each text (a prompt: instruction and input), its strongest Flag or None. `extra[i]` holds more
        (name, text) pairs of the same row, such as ("response", ...), checked by the n-gram stage only."""
        rows = [[("prompt", text), *(extra[i] if extra else ())] for i, text in enumerate(texts)]
        found: list[list[Flag]] = [[] for _ in rows]
        plain = [[text for _, text in row] for row in rows]
        for position, matches in enumerate(self.workers.match(plain)):
            for i, match in enumerate(matches):
                if match is not None:
                    found[i].append(self._ngram_flag(position, match, rows[i]))
        unflagged = [i for i, flags in enumerate(found) if not flags]
        if self.gates and unflagged:
            self._embedding_stage([texts[i] for i in unflagged], [found[i] for i in unflagged])
        best = [_strongest(flags) for flags in found]
        self._count(best)
        return best

    def _ngram_flag(self, position: int, match, row: list[tuple[str, str]]) -> Flag:
        item = self.benchmarks[position].items[match.item]
        return Flag(self.benchmarks[position].name, item.id, NGRAM, match.coverage, match.span, match.coverage,
                    row[match.row_segment][0], "question" if match.item_segment == 0 else "answer",
                    _shown(item))

    def _embedding_stage(self, texts: list[str], found: list[list[Flag]]) -> None:
        from .embedding import judge

        vectors = self.embedder.encode(texts)
        for position, gate in enumerate(self.gates):
            for flags, verdict in zip(found, judge(gate, texts, vectors)):
                if not verdict.accepted:
                    item = self._items[position][verdict.neighbour_id]
                    flags.append(Flag(self.benchmarks[position].name, item.id, verdict.stage,
                                      round(float(verdict.score), 4), item_text=_shown(item)))

    def _count(self, flags: list[Flag | None]) -> None:
        self.checked += len(flags)
        for flag in flags:
            if flag is not None:
                self.flagged[flag.benchmark][flag.stage] += 1
                self.items_hit[flag.benchmark][flag.item_id] += 1

    # ---- reporting -----------------------------------------------------------------------------------

    def summary(self, top: int = 10) -> dict[str, Any]:
        """What was checked and found, per benchmark: JSON for decontamination.json and `synth report`."""
        c = self.config
        benchmarks = {}
        for b, index in zip(self.benchmarks, self.indexes):
            by_stage = self.flagged[b.name]
            benchmarks[b.name] = {
                "source": b.source, "items": len(b.items), "content_hash": b.content_hash,
                "ngram_index": index.stats, "flagged": sum(by_stage.values()), "by_stage": dict(by_stage),
                "items_matched": len(self.items_hit[b.name]),
                "top_items": [{"item_id": i, "rows": n} for i, n in self.items_hit[b.name].most_common(top)]}
        verifier = self.verifier
        return {"checked": self.checked, "flagged": sum(sum(s.values()) for s in self.flagged.values()),
                "settings": {"ngram": c.ngram, "min_words": c.min_words, "boilerplate": c.boilerplate,
                             "embedding": c.embedding, "similarity": self.gates[0].threshold if self.gates else None,
                             "recall_threshold": self.gates[0].recall_threshold if verifier is not None else None,
                             "embedder": c.embedder if c.embedding else None,
                             "verifier": c.verifier_model or (getattr(verifier, "stage", None) if verifier else None)},
                "verifier_usage": verifier.usage() if hasattr(verifier, "usage") else None,
                "benchmarks": benchmarks}


def _strongest(flags: list[Flag]) -> Flag | None:
    if not flags:
        return None
    ordered = sorted(flags, key=lambda f: (f.stage != NGRAM, -f.score))
    best = ordered[0]
    best.also = sorted({f.benchmark for f in ordered[1:]} - {best.benchmark})
    return best


def _shown(item: BenchmarkItem, limit: int = 300) -> str:
    return item.prompt if len(item.prompt) <= limit else item.prompt[:limit] + "..."


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _bench_folder(folder: Path, benchmark: Benchmark) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in benchmark.name)[:60]
    return folder / f"{safe}-{benchmark.content_hash[:12]}"


def _ngram_index(benchmark: Benchmark, config: DecontamConfig, folder: Path, log) -> NgramIndex:
    path = folder / f"ngram-n{config.ngram}-w{config.min_words}-b{config.boilerplate or 0}.npz"
    index = NgramIndex.load(path) if path.is_file() else None
    if index is None:
        log(f"building the {config.ngram}-gram index of {benchmark.name} ({len(benchmark.items):,} items)")
        index = NgramIndex.build(benchmark, config.ngram, config.min_words, config.boilerplate)
        index.save(path)
    return index


# ---- pinned benchmarks (a run folder) ------------------------------------------------------------------

def _pinned_or_loaded(specs: list[str], config: DecontamConfig, folder: Path, pin: bool) -> list[Benchmark]:
    """The benchmarks of `specs`: from the folder's pinned copies where `pin` and one was kept, else from their
    sources (and then pinned, with `pin`)."""
    pinned = read_json_object(folder / PINNED, required=False) if pin else {}
    if pin and specs and all(spec in pinned for spec in specs):
        return [_read_pinned(folder, pinned[spec]) for spec in specs]
    benchmarks = load_benchmarks(specs, config.field or None)
    if pin:
        for spec, benchmark in zip(specs, benchmarks):
            where = _bench_folder(folder, benchmark)
            write_rows(({"id": i.id, "prompt": i.prompt, "answers": list(i.answers)} for i in benchmark.items),
                       where / "items.jsonl")
            pinned[spec] = {"name": benchmark.name, "source": benchmark.source, "content_hash": benchmark.content_hash,
                            "folder": where.name}
        write_json_atomic(folder / PINNED, pinned)
    return benchmarks


def _read_pinned(folder: Path, entry: dict[str, Any]) -> Benchmark:
    try:
        path = folder / entry["folder"] / "items.jsonl"
        items = [BenchmarkItem(r.data["id"], r.data["prompt"], tuple(r.data["answers"])) for r in iter_rows(path)]
        benchmark = Benchmark(entry["name"], entry["source"], items)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{folder / PINNED}: a pinned benchmark is damaged ({exc}); move {folder} aside to load "
                          "the benchmarks again") from None
    if benchmark.content_hash != entry.get("content_hash"):
        raise ConfigError(f"{folder / entry['folder']}: the pinned copy of {entry['name']} was changed; move {folder} "
                          "aside to load the benchmarks again")
    return benchmark
