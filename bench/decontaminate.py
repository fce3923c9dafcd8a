"""Decontamination benchmark: 2,000 T0 rows as the benchmark, copies of them planted in the other T0 rows.

    .venv/bin/python bench/decontaminate.py                      # everything (about 15 minutes on 2 busy cores)
    .venv/bin/python bench/decontaminate.py --only speed         # n-gram speed against a plain Python set check

The benchmark is drawn from the 69 templates of `bench/data/decontam_paraphrases.jsonl`, each paraphrase's source row
forced in; every row of those templates is held out of the dataset. T0 still repeats passages under sibling templates
and template wording across datasets (bench/data/README.md), so dataset rows that share any 13-gram with a benchmark
item are set aside as "natural overlap" (counted, not scored) and the rest are the unrelated background. Planted
copies, each naming its source item:

    exact        the item's prompt and completion, verbatim
    restyled     the prompt with its case, punctuation and spacing changed
    embedded     the prompt inside a longer instruction
    fragment     a third of the prompt's words (at least 20) inside other text
    answer       the item's completion (20 words or more) as the answer to another instruction
    paraphrase   the 69 hand-written paraphrases (prompt only)

A flag counts as right only when it names the source item. Prints markdown tables for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import random
import re
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth.decontam import DecontamConfig, Decontaminator, decontaminate  # noqa: E402
from synth.decontam.text import normalize  # noqa: E402
from synth.decontam.workers import default_processes  # noqa: E402

T0 = ROOT.parent / "shared" / "data" / "t0_train_50k.jsonl.gz"
PARAPHRASES = ROOT / "bench" / "data" / "decontam_paraphrases.jsonl"
KINDS = ("exact", "restyled", "embedded", "fragment", "answer", "paraphrase")
WRAPPERS = [("My teacher set this exercise and I am stuck, could you walk me through it?", "Please be thorough."),
            ("Here is a task from a worksheet I found online.", "Show your reasoning before the final answer."),
            ("Quick one for you:", "Thanks in advance, this helps a lot with my revision.")]


# ---- the data ---------------------------------------------------------------------------------------------

def load_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def split(rows: list[dict], paraphrases: list[dict], size: int, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """(benchmark items, dataset rows): the benchmark from the paraphrase templates, each prompt once."""
    held = {p["template"] for p in paraphrases}
    forced = {p["source_prompt"] for p in paraphrases}
    pool = {}
    for row in rows:
        if row["template"] in held:
            pool.setdefault(row["prompt"], row)
    rest = [row for prompt, row in pool.items() if prompt not in forced]
    rng.shuffle(rest)
    chosen = [pool[p] for p in sorted(forced)] + rest[:size - len(forced)]
    items = [{"id": f"t0-{i}", "prompt": r["prompt"], "completion": r["completion"]} for i, r in enumerate(chosen)]
    return items, [row for row in rows if row["template"] not in held]


def restyle(text: str, rng: random.Random) -> str:
    words = re.sub(r"[,.;:!?]", lambda m: rng.choice([" ", " -", "!!", ""]), text).split()
    return "  ".join(w.upper() if rng.random() < 0.3 else w.capitalize() if rng.random() < 0.3 else w.lower()
                     for w in words)


def plant(items: list[dict], background: list[dict], paraphrases: list[dict], rng: random.Random, per_kind: int
          ) -> list[dict]:
    """Planted rows, each {"prompt", "completion", "kind", "source"} (source: the item id)."""
    by_prompt = {item["prompt"]: item for item in items}
    others = [row["prompt"] for row in rng.sample(background, per_kind * 3)]
    planted = []

    def add(kind, source, prompt, completion="", copied=None):
        planted.append({"prompt": prompt, "completion": completion, "kind": kind, "source": source["id"],
                        "copied": copied if copied is not None else source["prompt"]})

    for item in rng.sample(items, per_kind):
        add("exact", item, item["prompt"], item["completion"])
    for item in rng.sample(items, per_kind):
        add("restyled", item, restyle(item["prompt"], rng))
    for item in rng.sample(items, per_kind):
        before, after = rng.choice(WRAPPERS)
        add("embedded", item, f"{before}\n\n{item['prompt']}\n\n{after}")
    long_items = [item for item in items if len(item["prompt"].split()) >= 60]
    for item, other in zip(rng.sample(long_items, per_kind), others):
        words = item["prompt"].split()
        width = max(20, len(words) // 3)
        start = rng.randrange(0, len(words) - width + 1)
        fragment = " ".join(words[start:start + width])
        add("fragment", item, f"{' '.join(other.split()[:30])}\n\n{fragment}", copied=fragment)
    long_answers = [item for item in items if len(item["completion"].split()) >= 20]
    for item, other in zip(rng.sample(long_answers, min(per_kind, len(long_answers))), others[per_kind:]):
        add("answer", item, "Write the response this request calls for: " + " ".join(other.split()[:25]),
            item["completion"], copied=item["completion"])
    for p in paraphrases:
        add("paraphrase", by_prompt[p["source_prompt"]], p["paraphrase"])
    return planted


# ---- the plain Python check, written the obvious way ---------------------------------------------------

_PUNCT = re.compile(r"[^\w\s]|_")


def plain_words(text: str) -> list[str]:
    return _PUNCT.sub(" ", text.lower()).split()


def plain_index(items: list[dict], n: int, min_words: int = 4) -> set[tuple[str, ...]]:
    grams = set()
    for item in items:
        for number, text in enumerate((item["prompt"], item["completion"])):
            words = plain_words(text)
            grams.update(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
            if number == 0 and min_words <= len(words) < n:
                grams.add(tuple(words))
    return grams


def plain_check(grams: set[tuple[str, ...]], row: dict, n: int, short_lengths: set[int]) -> bool:
    for text in (row["prompt"], row["completion"]):
        words = plain_words(text)
        for m in (n, *short_lengths):
            if any(tuple(words[i:i + m]) in grams for i in range(len(words) - m + 1)):
                return True
    return False


# ---- scoring ----------------------------------------------------------------------------------------------

def names_its_item(flag, row: dict, items_by_id: dict) -> bool:
    """The flag names the source item, or another item that holds the copied text too (T0 items share passages)."""
    if flag.item_id == row["source"]:
        return True
    item, copied = items_by_id[flag.item_id], f" {normalize(row['copied'])} "
    return copied in f" {normalize(item['prompt'])} " or copied in f" {normalize(item['completion'])} "


def score(flags, planted: list[dict], background_count: int, items_by_id: dict, scale: float = 1.0) -> dict:
    """Recall per kind (a flag naming the right item), and precision over planted rows plus background rows
    (background false positives multiplied by `scale` when only a sample was checked)."""
    hits, wrong_item, late_right, late_wrong = Counter(), 0, 0, 0
    for row, flag in zip(planted, flags[:len(planted)]):
        if flag is None:
            continue
        right = names_its_item(flag, row, items_by_id)
        hits[row["kind"]] += right
        wrong_item += not right
        late_right += right and flag.stage != "ngram"
        late_wrong += not right and flag.stage != "ngram"
    false = sum(flag is not None for flag in flags[len(planted):]) * scale
    late_false = sum(flag is not None and flag.stage != "ngram" for flag in flags[len(planted):]) * scale
    totals = Counter(row["kind"] for row in planted)
    right = sum(hits.values())
    return {"recall": {kind: hits[kind] / totals[kind] for kind in KINDS if totals[kind]},
            "precision": right / (right + wrong_item + false) if right + wrong_item + false else 1.0,
            "late_precision": (late_right / (late_right + late_wrong + late_false)
                               if late_right + late_wrong + late_false else None),
            "false": false, "wrong_item": wrong_item, "background": background_count}


def recall_row(name: str, result: dict) -> str:
    cells = " | ".join(f"{result['recall'].get(kind, 0):.2f}" for kind in KINDS)
    late = "–" if result["late_precision"] is None else f"{result['late_precision']:.3f}"
    return (f"| {name} | {cells} | {result['precision']:.3f} | {late} | {result['false']:,.0f} | "
            f"{result['wrong_item']} |")


def header() -> str:
    return ("| stage | " + " | ".join(KINDS) + " | precision | precision of the flags after the n-gram stage | "
            "background flagged | wrong item |\n|---|" + "---|" * (len(KINDS) + 4))


# ---- the sections -----------------------------------------------------------------------------------------

def ngram_section(items, bench_path, dataset, planted, folder, items_by_id) -> None:
    print("\n### n-gram stage, on the whole dataset\n")
    print(header())
    for n in (13, 8):
        for boilerplate in (None, 10):
            config = DecontamConfig(against=[str(bench_path)], embedding=False, ngram=n, boilerplate=boilerplate,
                                    index_dir=str(folder))
            checker = Decontaminator.open(config=config)
            flags = check_all(checker, planted + dataset)
            label = f"{n}-gram" + (f", --boilerplate {boilerplate}" if boilerplate else "")
            print(recall_row(label, score(flags, planted, len(dataset), items_by_id)))


def check_all(checker: Decontaminator, rows: list[dict], batch: int = 512) -> list:
    flags = []
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        flags += checker.check([r["prompt"] for r in part], [[("response", r["completion"])] for r in part])
    return flags


def embedding_section(bench_path, dataset, planted, folder, items_by_id, sample: int, rng) -> None:
    from synth.decontam.embedding import judge
    from synth.gate.embeddings import Embedder

    background = rng.sample(dataset, min(sample, len(dataset)))
    scale = len(dataset) / len(background)
    embedder = Embedder()
    start = time.perf_counter()
    config = DecontamConfig(against=[str(bench_path)], similarity=0.99, index_dir=str(folder))
    checker = Decontaminator.open(config=config, embedder=embedder)
    rows = planted + background
    vectors = _encoded(embedder, [r["prompt"] for r in rows], folder)
    print(f"\n### Embedding stage (all-MiniLM-L6-v2, max_seq_length {embedder.model.max_seq_length}): the planted "
          f"rows and {len(background):,} background rows ({time.perf_counter() - start:.0f} s to embed "
          f"{len(rows) + len(items_by_id):,} texts, less what --keep kept); background flags x{scale:.1f} for the "
          "whole dataset\n")
    gate = checker.gates[0]
    top = [v.score for v in judge(_with(gate, threshold=1.01, recall=1.01), [r["prompt"] for r in rows], vectors)]
    ngram = check_all(Decontaminator.open(config=DecontamConfig(against=[str(bench_path)], embedding=False,
                                                                 index_dir=str(folder))), rows)
    print(header())
    for threshold in (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        verdicts = judge(_with(gate, threshold=threshold, recall=threshold), [r["prompt"] for r in rows], vectors)
        alone = [_flag(v) for v in verdicts]
        both = [n if n is not None else e for n, e in zip(ngram, alone)]
        print(recall_row(f"embedding alone ≥ {threshold}", score(alone, planted, len(dataset), items_by_id, scale)))
        print(recall_row(f"n-gram, then embedding ≥ {threshold}", score(both, planted, len(dataset), items_by_id,
                                                                        scale)))
    print(f"\nTop-1 cosine of the paraphrases: median {np.median([s for s, r in zip(top, planted) if r['kind'] == 'paraphrase']):.3f}; "
          f"of the background: median {np.median(top[len(planted):]):.3f}, 99th percentile "
          f"{np.percentile(top[len(planted):], 99):.3f}")
    verifier_section(gate, rows, vectors, planted, ngram, len(dataset), items_by_id, scale)


def _encoded(embedder, texts: list[str], folder: Path) -> np.ndarray:
    """The texts' vectors, kept in `folder` so a rerun with --keep embeds nothing twice."""
    import hashlib

    digest = hashlib.sha256("\n\0".join(texts).encode("utf-8")).hexdigest()[:16]
    path = folder / f"rows-{digest}.npy"
    if path.is_file():
        return np.load(path)
    vectors = embedder.encode(texts)
    np.save(path, vectors)
    return vectors


def _with(gate, *, threshold: float, recall: float, verifier=None):
    gate.threshold, gate.recall_threshold, gate.verifier = threshold, min(recall, threshold), verifier
    return gate


def _flag(verdict):
    from synth.decontam import Flag

    return None if verdict.accepted else Flag("t0", verdict.neighbour_id, verdict.stage, verdict.score)


def oracle_script(labels: dict[str, str], items_by_prompt: dict[str, str]):
    """A loopback 'model' that answers from the labels: yes only for a planted row and its own source item. It shows
    the plumbing and the ceiling a perfect verifier gives, nothing about how well a real model answers."""
    from synth.testing import Reply

    def script(body, attempt):
        prompt = body["messages"][-1]["content"]
        row = prompt.split("Training example:\n", 1)[1].split("\n\nBenchmark item:\n", 1)[0]
        item = prompt.split("\n\nBenchmark item:\n", 1)[1].rsplit("\n\nAnswer with one word", 1)[0]
        same = labels.get(row.strip()) is not None and labels[row.strip()] == items_by_prompt.get(item.strip())
        return Reply("yes" if same else "no", prompt_tokens=200, completion_tokens=1)
    return script


def verifier_section(gate, rows, vectors, planted, ngram, background_count, items_by_id, scale) -> None:
    from synth.decontam.embedding import judge
    from synth.decontam.verifier import BenchmarkItemVerifier
    from synth.teacher.client import LiteLLMTeacher, TeacherOptions
    from synth.testing import FakeTeacherServer

    labels = {r["prompt"].strip(): r["source"] for r in planted}
    items_by_prompt = {item["prompt"].strip(): item_id for item_id, item in items_by_id.items()}
    print("\nThe band sent to the verifier (a loopback oracle that answers from the labels: the ceiling, not a "
          "real model), after the n-gram stage; at the hard threshold 1.0 only identical text skips the verifier:\n")
    print(header().replace("| stage |", "| band |").replace("| wrong item |", "| wrong item | verifier calls |")
          + "---|")
    left = [i for i, flag in enumerate(ngram) if flag is None]          # as Decontaminator.check does
    with FakeTeacherServer(oracle_script(labels, items_by_prompt)) as server:
        options = TeacherOptions(model="openai/oracle", api_base=server.url, temperature=0.0, max_tokens=16,
                                 max_retries=0, concurrency=64)
        verifier = BenchmarkItemVerifier(LiteLLMTeacher(options, api_key="sk-loopback"))
        for floor, hard in ((0.5, 1.0), (0.6, 1.0), (0.7, 1.0), (0.6, 0.98), (0.6, 0.95)):
            calls = verifier.usage()["calls"]
            verdicts = judge(_with(gate, threshold=hard, recall=floor, verifier=verifier),
                             [rows[i]["prompt"] for i in left], vectors[left])
            both = list(ngram)
            for i, verdict in zip(left, verdicts):
                both[i] = _flag(verdict)
            line = recall_row(f"{floor} ≤ cosine < {hard}", score(both, planted, background_count, items_by_id, scale))
            print(f"{line} {verifier.usage()['calls'] - calls:,} |")
        verifier.close()


def speed_section(rows: list[dict], paraphrases: list[dict], folder: Path, rng: random.Random) -> None:
    print("\n### n-gram stage speed, against a plain Python set check in the same run\n")
    print("Benchmark rows come from held-out templates (the 69 paraphrase templates, then more at random). \"T0 as "
          "is\": every row of the other templates, T0's shared passages and template wording included (a stress "
          "case: most flagged rows copy a whole passage). \"2% contaminated\": the rows of those that share no "
          "13-gram with the benchmark, plus exact or embedded copies of benchmark items for 2% of the rows.\n")
    print(f"Load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. Rows/s is wall-clock. "
          "\"synth, 1 process\": `--workers 1`, with rows per CPU-second of the process in brackets (what one core "
          f"does, whatever else runs); \"synth, {default_processes()} processes\": the default, one per core, its "
          "workers started before the clock (their start is in the index table). Each synth arm first checks 2,000 "
          "rows untimed (caches, page faults), then the median of 3 timed runs is shown; the plain check runs once.\n")
    print(f"| benchmark | dataset | rows | synth, 1 process | synth, {default_processes()} processes | plain Python "
          "| synth ÷ plain | rows flagged (synth / plain) |\n|---|---|---|---|---|---|---|---|")
    templates = sorted({row["template"] for row in rows} - {p["template"] for p in paraphrases})
    rng.shuffle(templates)
    held = [p["template"] for p in paraphrases]
    sizes = []
    for size in (2_000, 15_000):
        while len({r["prompt"] for r in rows if r["template"] in held}) < size:
            held.append(templates.pop())
        pool = list({r["prompt"]: r for r in rows if r["template"] in held}.values())
        items = [{"id": f"b{i}", "prompt": r["prompt"], "completion": r["completion"]}
                 for i, r in enumerate(rng.sample(pool, size))]
        as_is = [r for r in rows if r["template"] not in set(held)]
        alone, checker, grams, stats = _speed_index(items, folder, size)
        sizes.append((size, *stats))
        plain_flags = None
        for name, dataset in (("T0 as is", as_is), ("2% contaminated", None)):
            if dataset is None:
                clean = [r for r, flagged in zip(as_is, plain_flags) if not flagged]
                copies = [{"prompt": (item["prompt"] if k % 2 else f"Help me with this one: {item['prompt']} Thanks!"),
                           "completion": ""} for k, item in enumerate(rng.choices(items, k=len(clean) // 50))]
                dataset = clean + copies
                rng.shuffle(dataset)
            for warm in (alone, checker):
                check_all(warm, dataset[:2000])
            one, one_cpu, flags = _median_timed(lambda: check_all(alone, dataset), len(dataset))
            ours, _, flags_all = _median_timed(lambda: check_all(checker, dataset), len(dataset))
            assert flags_all == flags, "the worker processes flagged other rows than one process"
            short = {len(g) for g in grams if len(g) < 13}
            theirs, theirs_cpu, plain_flags_now = _timed(
                lambda: [plain_check(grams, row, 13, short) for row in dataset], len(dataset))
            plain_flags = plain_flags if plain_flags is not None else plain_flags_now
            print(f"| {size:,} items | {name} | {len(dataset):,} | {one:,.0f} ({one_cpu:,.0f}) | {ours:,.0f} | "
                  f"{theirs:,.0f} | {ours / theirs:.1f}× | {sum(f is not None for f in flags):,} / "
                  f"{sum(plain_flags_now):,} |")
        checker.close()
    print("\n| benchmark | index build | index load (cached) | workers' start | index size | plain Python set size |"
          "\n|---|---|---|---|---|---|")
    for size, build, load, start, size_mb, plain_mb in sizes:
        print(f"| {size:,} items | {build:.1f} s | {load:.2f} s | {start:.1f} s | {size_mb:.0f} MB | {plain_mb:.0f} MB |")
    end_to_end(rows, folder)


def _timed(work, count: int):
    """(rows per wall-clock second, rows per CPU second of this process, the result)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    return count / (time.perf_counter() - started), count / (time.process_time() - cpu), result


def _median_timed(work, count: int, runs: int = 3):
    """_timed's figures for the run of median wall time among `runs`."""
    return sorted((_timed(work, count) for _ in range(runs)), key=lambda timing: timing[0])[runs // 2]


def _speed_index(items: list[dict], folder: Path, size: int):
    """The synth index (built, then loaded from its cache) and the plain set, with their costs."""
    import shutil

    shutil.rmtree(folder / f"ix-{size}", ignore_errors=True)       # the build is timed, so never a cached one
    bench_path = folder / f"speed-{size}.jsonl"
    bench_path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    config = DecontamConfig(against=[str(bench_path)], embedding=False, index_dir=str(folder / f"ix-{size}"))
    started = time.perf_counter()
    Decontaminator.open(config=config)
    build = time.perf_counter() - started
    started = time.perf_counter()
    checker = Decontaminator.open(config=config)
    load = time.perf_counter() - started
    started = time.perf_counter()
    if checker.workers.parallel:
        checker.workers.start()
    start = time.perf_counter() - started
    alone = Decontaminator.open(config=dataclasses.replace(config, workers=1))
    index = checker.indexes[0]
    size_mb = (sum(getattr(index, name).nbytes for name in index.ARRAYS) + index.bitmap.nbytes) / 1e6
    tracemalloc.start()
    grams = plain_index(items, 13)
    plain_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    return alone, checker, grams, (build, load, start, size_mb, plain_mb)


def end_to_end(rows: list[dict], folder: Path) -> None:
    """`decontaminate()` with --no-embedding on a gzipped JSONL file: read, check, write."""
    data = folder / "dataset.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    config = DecontamConfig(against=[str(folder / "speed-2000.jsonl")], embedding=False,
                            index_dir=str(folder / "ix-2000"))
    wall, cpu, result = _timed(lambda: decontaminate(data, folder / "clean.jsonl", config), 55_185)
    print(f"\nEnd to end (`synth decontaminate --no-embedding` as a library call on all {result.total:,} T0 rows, "
          f"gzipped JSONL in, JSONL out, against the 2,000-item benchmark): {wall:,.0f} rows/s ({cpu:,.0f} per "
          f"CPU-second), {result.clean:,} kept.")


def natural_overlap(items: list[dict], dataset: list[dict]) -> tuple[list[dict], Counter]:
    """Dataset rows sharing a 13-gram with a benchmark item (the plain check decides), and what is left."""
    grams = plain_index(items, 13)
    short = {len(g) for g in grams if len(g) < 13}
    kept, overlap = [], Counter()
    for row in dataset:
        if plain_check(grams, row, 13, short):
            overlap[row["template"].split("_")[0]] += 1
        else:
            kept.append(row)
    return kept, overlap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("quality", "speed"), help="run one part")
    parser.add_argument("--size", type=int, default=2000, help="benchmark items")
    parser.add_argument("--per-kind", type=int, default=100, help="planted copies of each kind but paraphrase")
    parser.add_argument("--background-sample", type=int, default=3000, help="background rows for the embedding stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (indexes, embeddings) for reruns")
    args = parser.parse_args()
    rows, paraphrases = load_jsonl(T0), load_jsonl(PARAPHRASES)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="decontam-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "quality"):
            items, dataset = split(rows, paraphrases, args.size, rng)
            dataset, overlap = natural_overlap(items, dataset)
            planted = plant(items, dataset, paraphrases, rng, args.per_kind)
            bench_path = folder / "t0_bench.jsonl"
            bench_path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
            items_by_id = {item["id"]: item for item in items}
            print(f"{len(items):,} benchmark items from {len({p['template'] for p in paraphrases})} held-out "
                  f"templates; {len(dataset):,} unrelated dataset rows; {sum(overlap.values()):,} more rows share a "
                  f"13-gram with the benchmark (same passage or template wording), set aside: "
                  + ", ".join(f"{k} {v:,}" for k, v in overlap.most_common(8))
                  + "; planted: " + ", ".join(f"{k} {v}" for k, v in Counter(p['kind'] for p in planted).items()))
            ngram_section(items, bench_path, dataset, planted, folder, items_by_id)
            embedding_section(bench_path, dataset, planted, folder, items_by_id, args.background_sample, rng)
        if args.only in (None, "speed"):
            speed_section(rows, paraphrases, folder, rng)


if __name__ == "__main__":
    main()
