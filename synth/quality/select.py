"""`synth select`: the best N rows of a run or any dataset, kept diverse, with a reason for every row left out.

    deita    (default) walk the rows best first, by judge quality x complexity, and keep a row only if the novelty
             gate finds no kept row at or above --threshold; without judge scores, rows with no free signal come
             first, then the more demanding instructions (a complexity proxy: length and constraints)
    quality  the top rows by judge quality (by the free signals alone without scores)
    diverse  k-center greedy on the same embeddings: each pick is the row farthest from every row kept so far
    random   a seeded random sample: the baseline

Rows that a filtering free signal rejects (empty, truncated, looping, junk, refusals) are dropped first, unless
--keep-flagged. Embedding is the only costly step: `deita` embeds rows only as far as its walk goes.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ..errors import ConfigError
from ..files import refuse_overlap, write_json_atomic
from ..formats import FORMATS, Example, Warn, example, format_row, record_problem, write_rows
from ..gate.embeddings import DEFAULT_EMBEDDER, Embedder, shared_embedder
from ..settings import Settings, setting
from .signals import Signal, SignalConfig, check_response, record_signals

STRATEGIES = ("deita", "quality", "diverse", "random")


@dataclass
class SelectConfig(Settings):
    command: ClassVar[str] = "select"

    budget: int = setting(1000, "Rows to select.", min=1)
    strategy: str = setting("deita", "deita (score-first, diversity-aware), quality (top by score), diverse "
                                     "(k-center greedy) or random.", choices=STRATEGIES)
    format: str = setting("jsonl", "Output format; jsonl writes the selected rows unchanged.", choices=FORMATS)
    threshold: float = setting(0.9, "deita and diverse never keep two rows this cosine-similar (the novelty gate's "
                                    "measure).", min=0, min_open=True, max=1)
    scores: str | None = setting(None, "Judge scores (default RUN/scores.jsonl, or DATASET.scores.jsonl beside a "
                                       "dataset, when there).")
    keep_flagged: bool = setting(False, "Keep rows that a filtering free signal rejects (dropped by default).")
    embedder: str = setting(DEFAULT_EMBEDDER, "sentence-transformers model name or folder (default: bundled MiniLM).")
    batch_size: int = setting(256, "Rows embedded and judged together.", min=1, max=1_000_000)
    seed: int = setting(0, "Seed of the random strategy.")


@dataclass
class Candidate:
    """One row and everything the selection knows about it."""

    index: int                                    # position in the input
    id: str
    line: int
    row: dict[str, Any]
    text: str                                     # the prompt, as the gate embeds it
    signals: list[Signal]
    judged: dict[str, tuple[int, str]]            # judge rubric -> (score, reason)
    complexity: float                             # the proxy, used when no judge score says more

    @property
    def score(self) -> float | None:
        """The judge's verdict as one number: quality x complexity (DEITA), or whichever of the two there is."""
        quality, complexity = self.judged.get("quality"), self.judged.get("complexity")
        if quality and complexity:
            return float(quality[0] * complexity[0])
        return float((quality or complexity)[0]) if (quality or complexity) else None


@dataclass
class Selection:
    kept: list[Candidate]
    nearest: dict[str, tuple[str | None, float | None]]     # kept id -> (nearest kept id, cosine similarity)
    dropped: list[dict[str, Any]]


@dataclass
class SelectResult:
    total: int
    selected: int
    dropped: Counter
    out: str
    selection_path: str
    ranked_by: str
    timings: dict[str, float] = field(default_factory=dict)


# ---- scoring the rows -------------------------------------------------------------------------------------

_CONSTRAINTS = re.compile(r"\b(?:must|should|at least|at most|exactly|no more than|without|only|include|including|"
                          r"using|each|every|format|step|explain|compare|contrast|justify|list|table|words|sentences|"
                          r"then|also|both|constraint|ensure|assume)\b", re.IGNORECASE)


def complexity_proxy(ex: Example) -> float:
    """How demanding an instruction looks without a judge: the log of its length in words (input included,
    capped) plus half a point per constraint word ("must", "at least", "exactly", "step", "compare"...)."""
    words = len(ex.instruction.split()) + len(ex.input.split())
    return round(math.log1p(min(words, 400)) + 0.5 * len(_CONSTRAINTS.findall(ex.instruction[:2000])), 3)


def row_signals(row: dict[str, Any], ex: Example, config: SignalConfig | None = None) -> list[Signal]:
    """The free signals of a row of any shape; a row without an answer has none to check."""
    if record_problem(row) is None:
        return record_signals(row, config)
    if ex.output is None:
        return []
    return check_response(ex.instruction, ex.input, ex.output, system_message=ex.system,
                          is_classification=bool(ex.is_classification), kind=ex.kind, finish_reason=None,
                          config=config)


def candidates(rows: list[tuple[str, int, dict[str, Any], str]], scores: dict[str, dict[str, tuple[int, str]]],
               signal_config: SignalConfig | None = None) -> list[Candidate]:
    """(id, line, row, prompt text) tuples as Candidates: their signals, judge scores and complexity proxy."""
    found = []
    for index, (row_id, line, row, text) in enumerate(rows):
        ex = example(row)
        found.append(Candidate(index, row_id, line, row, text, row_signals(row, ex, signal_config),
                               scores.get(row_id, {}), complexity_proxy(ex)))
    return found


def rank(found: list[Candidate], strategy: str) -> list[Candidate]:
    """Best first. deita: judge score (quality x complexity), then fewer free signals, then the complexity proxy;
    quality: the judge's quality score first. Rows without a score come after every scored row."""
    def key(c: Candidate) -> tuple:
        score = c.score
        if strategy == "quality" and "quality" in c.judged:
            score = float(c.judged["quality"][0]) + c.score / 100.0
        return (score is None, -(score or 0.0), len(c.signals), -c.complexity, c.index)

    return sorted(found, key=key)


# ---- choosing -----------------------------------------------------------------------------------------------

class TimedEmbedder:
    """An embedder that remembers what it embedded, so no text is embedded twice in one selection, and keeps the
    seconds spent encoding, so a run can say what its time went on."""

    def __init__(self, inner: Embedder):
        self.inner, self.name, self.dim, self.seconds = inner, inner.name, inner.dim, 0.0
        self._known: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        fresh = list(dict.fromkeys(t for t in texts if t not in self._known))
        if fresh:
            start = time.perf_counter()
            self._known.update(zip(fresh, self.inner.encode(fresh)))
            self.seconds += time.perf_counter() - start
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.stack([self._known[t] for t in texts]), dtype=np.float32)


def choose(found: list[Candidate], config: SelectConfig, embedder: Any,
           progress: Callable[[int, int], None] | None = None, *, neighbours: bool = True) -> Selection:
    """Drop flagged rows (unless kept), then pick by the strategy; every row left out gets a reason. With
    `neighbours`, each kept row's nearest kept row is found too (for quality and random, that embeds the kept rows)."""
    dropped: list[dict[str, Any]] = []
    pool = []
    rejects = SignalConfig().rejects
    for c in found:
        bad = [] if config.keep_flagged else rejects(c.signals)
        if bad:
            dropped.append(_dropped(c, "flagged", f"flagged by signal {', '.join(s.name for s in bad)}: {bad[0].detail}"))
        else:
            pool.append(c)
    if config.strategy == "deita":
        kept, more = _deita(rank(pool, "deita"), config, embedder, progress)
    elif config.strategy == "diverse":
        kept, more = _diverse(rank(pool, "deita"), config, embedder)
    else:
        ordered = rank(pool, "quality") if config.strategy == "quality" else \
            random.Random(config.seed).sample(pool, len(pool))
        kept = ordered[:config.budget]
        more = [_dropped(c, "below_budget_cut", f"ranked {i + 1 + config.budget}, past the budget of {config.budget}")
                for i, c in enumerate(ordered[config.budget:])]
    nearest = _nearest_kept(kept, embedder) if neighbours else {}
    return Selection(kept, nearest, sorted(dropped + more, key=lambda d: d["index"]))


def _dropped(c: Candidate, reason: str, detail: str, kept_id: str | None = None,
             similarity: float | None = None) -> dict[str, Any]:
    return {"index": c.index, "id": c.id, "line": c.line, "reason": reason, "detail": detail, "kept_id": kept_id,
            "similarity": None if similarity is None else round(float(similarity), 4), "score": c.score,
            "signals": [s.name for s in c.signals]}


def _deita(ordered: list[Candidate], config: SelectConfig, embedder: Any,
           progress: Callable[[int, int], None] | None) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Walk best first through the novelty gate: a row joins when no kept row reaches the threshold. Batches
    shrink as the budget fills, so every accepted row is kept and nothing past the cut is embedded."""
    from ..gate.novelty import NoveltyGate

    gate = NoveltyGate(embedder, config.threshold)
    kept: list[Candidate] = []
    dropped: list[dict[str, Any]] = []
    position = 0
    while position < len(ordered) and len(kept) < config.budget:
        batch = ordered[position:position + min(config.batch_size, config.budget - len(kept))]
        position += len(batch)
        for c, verdict in zip(batch, gate.check([c.id for c in batch], [c.text for c in batch])):
            if verdict.accepted:
                kept.append(c)
            else:
                dropped.append(_dropped(c, "too_similar", f"too similar to kept row {verdict.neighbour_id} at "
                                        f"{verdict.score:.3f}", verdict.neighbour_id, verdict.score))
        if progress:
            progress(len(kept), config.budget)
    dropped += [_dropped(c, "below_budget_cut", f"ranked {position + i + 1}, after the budget of {config.budget} "
                         "was filled") for i, c in enumerate(ordered[position:])]
    return kept, dropped


def _diverse(ordered: list[Candidate], config: SelectConfig,
             embedder: Any) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """k-center greedy: start from the best-ranked row, then take the row least similar to its nearest kept row,
    until the budget is filled or every row left reaches the threshold."""
    if not ordered:
        return [], []
    vectors = embedder.encode([c.text for c in ordered])
    best_sim = vectors @ vectors[0]
    nearest = np.zeros(len(ordered), dtype=np.int64)
    chosen = [0]
    best_sim[0] = np.inf
    while len(chosen) < min(config.budget, len(ordered)):
        pick = int(np.argmin(best_sim))
        if best_sim[pick] >= config.threshold:
            break
        chosen.append(pick)
        sims = vectors @ vectors[pick]
        closer = sims > best_sim
        nearest[closer], best_sim[closer] = pick, sims[closer]
        best_sim[pick] = np.inf
    picked = set(chosen)
    dropped = []
    for i, c in enumerate(ordered):
        if i in picked:
            continue
        sim, twin = float(best_sim[i]), ordered[int(nearest[i])].id
        if sim >= config.threshold:
            dropped.append(_dropped(c, "too_similar", f"too similar to kept row {twin} at {sim:.3f}", twin, sim))
        else:
            dropped.append(_dropped(c, "below_budget_cut", f"farther than {sim:.3f} from every kept row, but the "
                                    f"budget of {config.budget} was filled", twin, sim))
    return [ordered[i] for i in chosen], dropped


def _nearest_kept(kept: list[Candidate], embedder: Any) -> dict[str, tuple[str | None, float | None]]:
    """Each kept row's nearest other kept row and their cosine similarity."""
    import faiss

    if len(kept) < 2:
        return {c.id: (None, None) for c in kept}
    vectors = embedder.encode([c.text for c in kept])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    sims, places = index.search(vectors, 2)
    result = {}
    for i, c in enumerate(kept):
        j = next((p for p in places[i] if p != i and p >= 0), None)
        result[c.id] = (kept[j].id, round(float(sims[i][list(places[i]).index(j)]), 4)) if j is not None else (None, None)
    return result


# ---- the command ----------------------------------------------------------------------------------------------

def find_scores(source: Path, config: SelectConfig) -> tuple[dict[str, dict[str, tuple[int, str]]], Path | None]:
    """The judge's scores for `source`: --scores, else where `synth judge` writes them by default, if there."""
    from .judge import JudgeConfig, plan_paths
    from .scores import load_scores

    path = Path(config.scores) if config.scores else plan_paths(source, JudgeConfig()).out
    if config.scores or path.is_file():
        return load_scores(path), path
    return {}, path


def ranked_by(config: SelectConfig, found: list[Candidate], scores_file: Path | None) -> str:
    """One line saying what the order rests on, so a selection without judge scores says so."""
    if config.strategy == "random":
        return f"a random sample (seed {config.seed})"
    scored = sum(c.score is not None for c in found)
    if config.strategy == "diverse":
        return "k-center greedy on the embeddings, starting from the best-ranked row"
    if scored:
        measure = "judge quality" if config.strategy == "quality" else "judge quality x complexity"
        return f"{measure} ({scored} of {len(found)} rows scored, from {scores_file}), then the free signals"
    return (f"the free signals alone (no judge scores at {scores_file}): rows with no signal first, then by a "
            "complexity proxy (instruction length and constraints); run synth judge for scores")


def selection_path(out: Path) -> Path:
    """best.jsonl -> best.selection.json, beside the output."""
    stem = re.sub(r"(\.jsonl|\.json|\.ndjson|\.parquet)?(\.gz)?$", "", out.name)
    return out.with_name(stem + ".selection.json")


def select(source: str | Path, out: str | Path, config: SelectConfig | dict[str, Any] | None = None, *,
           embedder: Embedder | None = None, warn: Warn | None = None,
           progress: Callable[[int, int], None] | None = None) -> SelectResult:
    """Write the selected rows of `source` (a run folder or any dataset) to `out`, unchanged or in --format, and
    OUT.selection.json with each kept row's rank, scores, signals and nearest kept row, and why each other row
    was left out."""
    from ..gate.dedup import read_dataset

    config = SelectConfig.coerce(config or {}).validate()
    source, out = Path(source), Path(out)
    details = selection_path(out)
    refuse_overlap(out, source)
    refuse_overlap(details, source, "the selection file")
    if details.resolve() == out.resolve():
        raise ConfigError(f"--out {out} would be overwritten by its own selection file; give another name")
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    items = read_dataset(source, warn=warn)
    scores, scores_file = find_scores(source, config)
    timings["read"] = time.perf_counter() - clock
    clock = time.perf_counter()
    found = candidates([(i.id, i.line, i.row, i.text) for i in items], scores)
    timings["signals"] = time.perf_counter() - clock
    timed = TimedEmbedder(embedder or shared_embedder(config.embedder))
    clock = time.perf_counter()
    chosen = choose(found, config, timed, progress)
    timings["embedding"] = timed.seconds
    timings["choosing"] = time.perf_counter() - clock - timed.seconds
    clock = time.perf_counter()
    order = ranked_by(config, found, scores_file)
    write_rows((format_row(config.format, c.row) for c in chosen.kept), out, config.format)
    write_json_atomic(details, report(chosen, config, source, out, order, len(found)))
    timings["writing"] = time.perf_counter() - clock
    return SelectResult(len(found), len(chosen.kept), Counter(d["reason"] for d in chosen.dropped), str(out),
                        str(details), order, {k: round(v, 3) for k, v in timings.items()})


def report(chosen: Selection, config: SelectConfig, source: Path, out: Path, order: str, total: int) -> dict[str, Any]:
    """The contents of OUT.selection.json."""
    kept = [{"rank": rank_number, "id": c.id, "line": c.line, "score": c.score,
             "scores": {k: {"score": v[0], "reason": v[1]} for k, v in c.judged.items()},
             "complexity_proxy": c.complexity, "signals": [{"name": s.name, "detail": s.detail} for s in c.signals],
             "nearest_kept": chosen.nearest[c.id][0], "similarity": chosen.nearest[c.id][1]}
            for rank_number, c in enumerate(chosen.kept, start=1)]
    dropped = [{k: v for k, v in d.items() if k != "index"} for d in chosen.dropped]
    return {"source": str(source), "out": str(out), "strategy": config.strategy, "budget": config.budget,
            "threshold": config.threshold, "ranked_by": order, "total": total, "selected": len(kept),
            "dropped_by_reason": dict(sorted(Counter(d["reason"] for d in dropped).items())),
            "settings": config.to_dict(), "kept": kept, "dropped": dropped}


def select_rows(rows: list[Any], budget: int, strategy: str = "deita", *,
                scores: dict[str, dict[str, tuple[int, str]]] | None = None, config: SelectConfig | None = None,
                embedder: Embedder | None = None) -> list[Any]:
    """The selected members of `rows`, best first: what `synth train --select N` trains on. A row is a dict of any
    shape synth reads, or a `synth.formats.Row` as `read_rows` gives it (returned as given). `scores` are
    `load_scores(...)`, keyed as `synth judge` keys rows: the row's "id", else row-N with N its line (or position)."""
    config = (config or SelectConfig()).merged({"budget": budget, "strategy": strategy}).validate()
    scores = scores or {}
    found, given = [], {}
    for position, item in enumerate(rows, start=1):
        row = item.data if hasattr(item, "data") else item
        number = getattr(item, "line", None) or getattr(item, "index", None) or position
        ex = example(row)
        own = row.get("id")
        key = str(own) if isinstance(own, (str, int)) and not isinstance(own, bool) else f"row-{number}"
        found.append(Candidate(position - 1, f"{key}@{position}", number, row, ex.prompt, row_signals(row, ex),
                               scores.get(key, {}), complexity_proxy(ex)))
        given[position - 1] = item
    kept = choose(found, config, TimedEmbedder(embedder or shared_embedder(config.embedder)), neighbours=False).kept
    return [given[c.index] for c in kept]
