"""Novelty-gate benchmark: synth's gate against an Alpaca-style all-pairs ROUGE-L filter and raw MiniLM encoding.

    .venv/bin/python bench/novelty.py quality                 # labelled pairs in tests/data/task_pairs.jsonl
    .venv/bin/python bench/novelty.py speed [--stream 512]    # T0 prompts from ../shared/data (benchmarks only)

Prints markdown tables for bench/RESULTS.md. Needs rouge-score (and wordllama for the second offline embedder).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth.gate.embeddings import Embedder  # noqa: E402
from synth.gate.novelty import NoveltyGate  # noqa: E402
from synth.gate.verifier import LLMVerifier  # noqa: E402

PAIRS = ROOT / "tests" / "data" / "task_pairs.jsonl"
T0 = ROOT.parent / "shared" / "data" / "t0_train_50k.jsonl.gz"
THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


# ---- quality on the labelled pairs ------------------------------------------------------------------

def load_pairs() -> list[dict]:
    return [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]


def precision_recall(predicted: list[bool], truth: list[bool]) -> tuple[float, float]:
    tp = sum(p and t for p, t in zip(predicted, truth))
    fp = sum(p and not t for p, t in zip(predicted, truth))
    fn = sum(t and not p for p, t in zip(predicted, truth))
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 0.0)


def rouge_scores(pairs: list[dict]) -> list[float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return [scorer.score(p["a"], p["b"])["rougeL"].fmeasure for p in pairs]


def cosine_scores(encode, pairs: list[dict]) -> list[float]:
    left, right = encode([p["a"] for p in pairs]), encode([p["b"] for p in pairs])
    left = left / np.linalg.norm(left, axis=1, keepdims=True)
    right = right / np.linalg.norm(right, axis=1, keepdims=True)
    return [float(s) for s in (left * right).sum(axis=1)]


def wordllama_encoder():
    try:
        from wordllama import WordLlama
    except ImportError:
        return None
    import shutil
    import tempfile

    import wordllama

    # The wheel ships its tokenizer under tokenizers/ but looks for it under tokenizer/ or in a cache folder, and
    # would otherwise try to download it: hand it a cache folder holding the shipped file.
    cache = Path(tempfile.mkdtemp(prefix="wordllama-"))
    (cache / "tokenizers").mkdir()
    (cache / "tokenizer").mkdir()
    shipped = Path(wordllama.__file__).parent / "tokenizers" / "l2_supercat_tokenizer_config.json"
    shutil.copy(shipped, cache / "tokenizers" / shipped.name)
    shutil.copy(shipped, cache / "tokenizer" / shipped.name)
    model = WordLlama.load(cache_dir=cache, disable_download=True)
    return lambda texts: np.asarray(model.embed(texts), dtype=np.float32)


def word_overlap(pairs: list[dict]) -> float:
    def words(text):
        return {w.strip(".,?!'\"").lower() for w in text.split()} - {""}
    return statistics.mean(len(words(p["a"]) & words(p["b"])) / len(words(p["a"]) | words(p["b"])) for p in pairs)


def threshold_rows(name: str, scores: list[float], truth: list[bool], thresholds=THRESHOLDS) -> list[str]:
    rows = []
    for t in thresholds:
        p, r = precision_recall([s >= t for s in scores], truth)
        rows.append(f"| {name} | {t:.2f} | {p:.2f} | {r:.2f} |")
    return rows


def oracle_script(labels: dict[frozenset, bool]):
    """A loopback 'teacher' that answers the same-task question from the labels: it shows the plumbing and the
    ceiling a perfect verifier gives; it says nothing about how well a real model answers."""
    from synth.testing import Reply

    def script(body, attempt):
        prompt = body["messages"][-1]["content"]
        a, b = prompt.split("Task A: ")[1].split("\n\nTask B: ")
        b = b.split("\n\nAnswer with one word")[0]
        return Reply("yes" if labels.get(frozenset((a.strip(), b.strip()))) else "no", prompt_tokens=90, completion_tokens=1)
    return script


def two_stage_rows(embedder: Embedder, pairs: list[dict], truth: list[bool]) -> list[str]:
    from synth.teacher.client import LiteLLMTeacher, TeacherOptions
    from synth.testing import FakeTeacherServer

    labels = {frozenset((p["a"], p["b"])): p["same_task"] for p in pairs}
    rows = []
    with FakeTeacherServer(oracle_script(labels)) as server:
        options = TeacherOptions(model="openai/oracle", api_base=server.url, temperature=0.0, max_tokens=16, max_retries=0)
        for recall_threshold in (0.3, 0.4, 0.5, 0.6):
            verifier = LLMVerifier(LiteLLMTeacher(options, api_key="sk-loopback"))
            predicted = []
            for pair in pairs:
                gate = NoveltyGate(embedder, 0.95, recall_threshold=recall_threshold, verifier=verifier)
                gate.add(["a"], [pair["a"]])
                predicted.append(not gate.check(["b"], [pair["b"]])[0].accepted)
            p, r = precision_recall(predicted, truth)
            rows.append(f"| MiniLM ≥ {recall_threshold:.1f} → oracle verifier (loopback) | 0.95 | {p:.2f} | {r:.2f} | "
                        f"{verifier.calls} |")
    return rows


def quality() -> None:
    pairs = load_pairs()
    truth = [p["same_task"] for p in pairs]
    same = [p for p in pairs if p["same_task"]]
    different = [p for p in pairs if not p["same_task"]]
    print(f"{len(same)} same-task pairs (mean word Jaccard {word_overlap(same):.2f}), "
          f"{len(different)} related-but-different pairs (mean word Jaccard {word_overlap(different):.2f})\n")
    minilm = Embedder()
    scorers = {"ROUGE-L F": rouge_scores(pairs), "all-MiniLM-L6-v2 cosine": cosine_scores(minilm.encode, pairs)}
    encode = wordllama_encoder()
    if encode is not None:
        scorers["wordllama l2_supercat 256-d cosine"] = cosine_scores(encode, pairs)
    print("| scorer | mean on same-task pairs | mean on different pairs |\n|---|---|---|")
    for name, scores in scorers.items():
        print(f"| {name} | {statistics.mean(s for s, t in zip(scores, truth) if t):.3f} | "
              f"{statistics.mean(s for s, t in zip(scores, truth) if not t):.3f} |")
    print("\n| filter | threshold | precision | recall |\n|---|---|---|---|")
    for name, scores in scorers.items():
        print("\n".join(threshold_rows(name, scores, truth)))
    print("\n| two-stage gate | hard threshold | precision | recall | verifier calls |\n|---|---|---|---|---|")
    print("\n".join(two_stage_rows(minilm, pairs, truth)))


# ---- throughput on the T0 prompts ------------------------------------------------------------------

def t0_prompts() -> list[str]:
    with gzip.open(T0, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["prompt"] for line in fh]


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def tiled_pool(real: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` unit vectors: the real ones, then noisy copies of them. Exact search costs the same whatever the
    values, so this times a pool of that size without embedding 50K texts on two cores."""
    copies = [real]
    while sum(len(c) for c in copies) < size:
        noisy = real + rng.normal(0, 0.05, real.shape).astype(np.float32)
        copies.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    return np.ascontiguousarray(np.concatenate(copies)[:size], dtype=np.float32)


def rouge_pair_seconds(texts: list[str], pool: list[str]) -> float:
    """Seconds per ROUGE-L comparison, done as Alpaca does: pre-tokenised, then _score_lcs against every pool item."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool_tokens = [scorer._tokenizer.tokenize(t) for t in pool]
    start = time.perf_counter()
    for text in texts:
        tokens = scorer._tokenizer.tokenize(text)
        for other in pool_tokens:
            rouge_scorer._score_lcs(tokens, other)
    return (time.perf_counter() - start) / (len(texts) * len(pool))


def rouge_filter(texts: list[str], threshold: float = 0.7) -> tuple[list[bool], float]:
    """The Alpaca filter on a prefix: keep an item unless its ROUGE-L F with a kept one exceeds the threshold."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    kept_tokens, keep = [], []
    start = time.perf_counter()
    for text in texts:
        tokens = scorer._tokenizer.tokenize(text)
        best = max((rouge_scorer._score_lcs(tokens, other).fmeasure for other in kept_tokens), default=0.0)
        keep.append(best <= threshold)
        if keep[-1]:
            kept_tokens.append(tokens)
    return keep, time.perf_counter() - start


def speed(stream: int, real_pool: int, prefix: int, batch: int) -> None:
    import torch

    prompts = t0_prompts()
    rng = random.Random(0)
    order = list(range(len(prompts)))
    rng.shuffle(order)
    pool_texts = [prompts[i] for i in order[:real_pool]]
    stream_texts = [prompts[i] for i in order[real_pool:real_pool + stream]]
    embedder = Embedder(max_seq_length=128, batch_size=64)
    print(f"{len(prompts)} T0 prompts, mean {statistics.mean(len(p.split()) for p in prompts):.0f} words; "
          f"MiniLM at max_seq_length 128 on {torch.get_num_threads()} torch threads ({embedder.device})\n")
    embedder.encode(stream_texts[:64])                                   # warm-up
    real_vectors, pool_seconds = timed(embedder.encode, pool_texts)
    _, raw_seconds = timed(embedder.encode, stream_texts)
    raw_rate = stream / raw_seconds
    print(f"raw encode: {raw_rate:.1f} items/s on the stream, {real_pool / pool_seconds:.1f} items/s on the pool\n")

    pair_s = rouge_pair_seconds(stream_texts[:10], pool_texts[:200])
    short = [json.loads(line)["a"] for line in PAIRS.read_text().splitlines()]
    short_pair_s = rouge_pair_seconds(short[:40], short[40:200])
    print(f"ROUGE-L per pair (Alpaca-style, pre-tokenised, one process): {pair_s * 1e6:.0f} µs on T0 prompts, "
          f"{short_pair_s * 1e6:.0f} µs on short instructions\n")

    print("| pool size | gate items/s | band items per 1K (0.4 ≤ top-1 < 0.9) | rejected per 1K | ROUGE-L items/s (T0 length) | "
          "gate ÷ ROUGE-L | raw encode items/s (same stream, just after) | gate ÷ raw encode |\n|---|---|---|---|---|---|---|---|")
    np_rng = np.random.default_rng(0)
    for size in (1_000, 10_000, 50_000):
        gate = NoveltyGate(embedder, 0.9)
        vectors = tiled_pool(real_vectors, size, np_rng)
        gate._add([f"pool-{i}" for i in range(size)], [""] * size, vectors)
        band = rejected = 0
        start = time.perf_counter()
        for i in range(0, stream, batch):
            ids = [f"s-{j}" for j in range(i, min(i + batch, stream))]
            verdicts = gate.check(ids, stream_texts[i:i + batch])
            rejected += sum(not v.accepted for v in verdicts)
            band += sum(v.accepted and v.score is not None and v.score >= 0.4 for v in verdicts)
        gate_rate = stream / (time.perf_counter() - start)
        # raw encode of the same stream right after, so both rates see the same machine load
        _, raw_after = timed(embedder.encode, stream_texts)
        raw_rate = stream / raw_after
        rouge_rate = 1.0 / (size * pair_s)
        print(f"| {size:,} | {gate_rate:.1f} | {1000 * band / stream:.0f} | {1000 * rejected / stream:.0f} | "
              f"{rouge_rate:.3f} | {gate_rate / rouge_rate:,.0f}× | {raw_rate:.1f} | {gate_rate / raw_rate:.0%} |")

    print(f"\nAll-pairs ROUGE-L filter run for real on the first {prefix} stream prompts, against the gate on the same prefix:")
    keep, rouge_seconds = rouge_filter(stream_texts[:prefix])
    gate = NoveltyGate(embedder, 0.9)
    start = time.perf_counter()
    verdicts = [v for i in range(0, prefix, batch)
                for v in gate.check([f"p-{j}" for j in range(i, min(i + batch, prefix))], stream_texts[i:i + batch])]
    gate_seconds = time.perf_counter() - start
    both = sum((not k) and (not v.accepted) for k, v in zip(keep, verdicts))
    print(f"ROUGE-L: {prefix / rouge_seconds:.1f} items/s, {keep.count(False)} dropped; gate at 0.9: "
          f"{prefix / gate_seconds:.1f} items/s, {sum(not v.accepted for v in verdicts)} dropped; {both} dropped by both")
    n = len(prompts)
    print(f"\nExtrapolated to all {n:,} prompts: ROUGE-L all-pairs ≈ {n * n / 2 * pair_s / 3600:,.1f} h on one core; "
          f"the gate ≈ {n / raw_rate / 60:,.0f} min at the measured encode rate.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("quality", "speed", "all"))
    parser.add_argument("--stream", type=int, default=512, help="T0 prompts streamed through the gate per pool size")
    parser.add_argument("--real-pool", type=int, default=1000, help="T0 prompts embedded for real for the pool")
    parser.add_argument("--prefix", type=int, default=200, help="prompts for the real all-pairs ROUGE-L run")
    parser.add_argument("--batch", type=int, default=256, help="gate mini-batch")
    args = parser.parse_args()
    if args.what in ("quality", "all"):
        quality()
    if args.what in ("speed", "all"):
        speed(args.stream, args.real_pool, args.prefix, args.batch)


if __name__ == "__main__":
    main()
