"""Embedding backends: raw encode speed against today's fp32 torch path, and whether the gate's decisions drift.

    .venv/bin/python bench/embed.py                                  # openvino and onnx-int8 against torch
    .venv/bin/python bench/embed.py --backends onnx-int8 --rows 5000 --sample first,random

Speed: the same stream of T0 prompts (bench/novelty.py's: shuffled with seed 0, after its 1,000-prompt pool) is
encoded by every backend in turn, `--rounds` times, interleaved, so every backend sees the same machine load; the
figure is the median of the per-round rates and the ratio the median of the per-round ratios to torch.

Drift: cosine scores of the labelled pairs (tests/data/task_pairs.jsonl) and of `--rows` T0 prompts (`first`: the
first distinct prompts of the file, after dedup's exact and normalised-duplicate passes, as `synth dedup` would see
them: template-heavy, so many scores sit near 0.9; `random`: a seeded sample), against the fp32 path's. Then the
real NoveltyGate runs over those rows once per backend, at threshold 0.9 and at the recall threshold 0.4 (as a hard
threshold: which side of 0.4 a candidate falls on decides whether a verifier is asked), and the verdicts are
compared candidate by candidate. "end to end" lets each backend build its own pool, so one flipped verdict can
change later ones; "same pool" judges every candidate against the pool the fp32 run accepted, which isolates the
score error. The export each backend needs is built (and cached) before anything is timed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth.gate.dedup import normalize  # noqa: E402
from synth.gate.embeddings import Embedder  # noqa: E402
from synth.gate.novelty import NoveltyGate  # noqa: E402

PAIRS = ROOT / "tests" / "data" / "task_pairs.jsonl"
T0 = ROOT.parent / "shared" / "data" / "t0_train_50k.jsonl.gz"
THRESHOLDS = (0.9, 0.4)
GATE_BATCH = 256                 # synth dedup's default --batch-size


def t0_prompts() -> list[str]:
    with gzip.open(T0, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["prompt"] for line in fh]


def stream(prompts: list[str], size: int) -> list[str]:
    order = list(range(len(prompts)))
    random.Random(0).shuffle(order)
    return [prompts[i] for i in order[1000:1000 + size]]


def rows(prompts: list[str], size: int, sample: str) -> list[str]:
    if sample == "random":
        prompts = random.Random(1).sample(prompts, len(prompts))
    seen, out = set(), []
    for text in prompts:
        key = normalize(text)
        if key not in seen:
            seen.add(key)
            out.append(text)
            if len(out) == size:
                break
    return out


def small(x: float) -> str:
    return f"{x:.4f}" if x >= 1e-4 else f"{x:.0e}"


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


# ---- speed ---------------------------------------------------------------------------------------

def speed(embedders: dict[str, Embedder], texts: list[str], rounds: int) -> None:
    for embedder in embedders.values():
        embedder.encode(texts[:64])                                     # warm-up
    rates: dict[str, list[float]] = {name: [] for name in embedders}
    for _ in range(rounds):
        for name, embedder in embedders.items():
            start = time.perf_counter()
            embedder.encode(texts)
            rates[name].append(len(texts) / (time.perf_counter() - start))
    ratios = {name: [r / t for r, t in zip(rates[name], rates["torch"])] for name in embedders}
    print("| backend | items/s (median) | ÷ torch fp32 (median of rounds) | per-round ratios |\n|---|---|---|---|")
    for name in embedders:
        print(f"| {name} | {statistics.median(rates[name]):.1f} | {statistics.median(ratios[name]):.2f}× | "
              f"{', '.join(f'{r:.2f}' for r in ratios[name])} |")


# ---- drift ---------------------------------------------------------------------------------------

class Precomputed:
    """An embedder that hands out vectors a backend already made, so the gate runs on exactly those."""

    def __init__(self, name: str, texts: list[str], vectors: np.ndarray):
        self.name, self.dim = name, vectors.shape[1]
        self._by_text = dict(zip(texts, vectors))

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._by_text[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def gate_verdicts(embedder, texts: list[str], threshold: float) -> np.ndarray:
    gate = NoveltyGate(embedder, threshold)
    accepted: list[bool] = []
    for start in range(0, len(texts), GATE_BATCH):
        ids = [str(i) for i in range(start, min(start + GATE_BATCH, len(texts)))]
        accepted += [v.accepted for v in gate.check(ids, texts[start:start + GATE_BATCH])]
    return np.array(accepted)


def same_pool_verdicts(sims: np.ndarray, pool: np.ndarray, threshold: float) -> np.ndarray:
    """Each candidate against the items `pool` accepted before it (exact search: what the flat index returns)."""
    earlier = np.tril(np.ones_like(sims, dtype=bool), k=-1) & pool[None, :]
    best = np.where(earlier, sims, -np.inf).max(axis=1)
    return ~(best >= threshold)


def pair_drift(embedders: dict[str, Embedder]) -> None:
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    scores = {}
    for name, embedder in embedders.items():
        a, b = embedder.encode([p["a"] for p in pairs]), embedder.encode([p["b"] for p in pairs])
        scores[name] = (a * b).sum(axis=1)
    print(f"\nLabelled pairs ({len(pairs)}): |cosine - fp32 cosine|, and pairs whose side of a threshold changed\n")
    print("| backend | max abs diff | mean abs diff | flips at 0.9 | flips at 0.4 |\n|---|---|---|---|---|")
    for name in embedders:
        if name == "torch":
            continue
        diff = np.abs(scores[name] - scores["torch"])
        flips = [int(((scores[name] >= t) != (scores["torch"] >= t)).sum()) for t in THRESHOLDS]
        print(f"| {name} | {small(diff.max())} | {small(diff.mean())} | {flips[0]} | {flips[1]} |")


def t0_drift(embedders: dict[str, Embedder], texts: list[str], sample: str) -> None:
    vectors, seconds = {}, {}
    for name, embedder in embedders.items():
        start = time.perf_counter()
        vectors[name] = embedder.encode(texts)
        seconds[name] = time.perf_counter() - start
    reference = vectors["torch"]
    ref_sims = reference @ reference.T
    off_diagonal = ~np.eye(len(texts), dtype=bool)
    earlier = np.tril(np.ones_like(ref_sims, dtype=bool), k=-1)
    nearest = np.where(earlier, ref_sims, -np.inf).argmax(axis=1)[1:]        # each row's fp32 top-1 earlier row
    rows_ = np.arange(1, len(texts))
    base = {t: gate_verdicts(Precomputed("torch", texts, reference), texts, t) for t in THRESHOLDS}
    print(f"\nT0, {len(texts)} {sample} distinct prompts ({load()}): fp32 rejects {int((~base[0.9]).sum())} at 0.9 "
          f"and {int((~base[0.4]).sum())} at 0.4; encode {len(texts) / seconds['torch']:.1f} items/s for torch\n")
    for t in THRESHOLDS:
        check = same_pool_verdicts(ref_sims, base[t], t)
        assert (check == base[t]).all(), "the same-pool replay must reproduce the fp32 gate's own verdicts"
    print("| backend | all pairs: max / mean abs diff | top-1 pairs: max / mean abs diff | verdicts agree at 0.9: "
          "end to end / same pool | at 0.4: end to end / same pool | encode items/s |\n|---|---|---|---|---|---|")
    for name in embedders:
        if name == "torch":
            continue
        sims = vectors[name] @ vectors[name].T
        diff = np.abs(sims - ref_sims)[off_diagonal]
        top1 = np.abs(sims[rows_, nearest] - ref_sims[rows_, nearest])
        agree = []
        for t in THRESHOLDS:
            own = gate_verdicts(Precomputed(name, texts, vectors[name]), texts, t)
            replayed = same_pool_verdicts(sims, base[t], t)
            agree.append(f"{(own == base[t]).mean():.2%} / {(replayed == base[t]).mean():.2%}")
        print(f"| {name} | {small(diff.max())} / {small(diff.mean())} | {small(top1.max())} / {small(top1.mean())} | "
              f"{agree[0]} | {agree[1]} | {len(texts) / seconds[name]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="openvino,openvino-bf16,onnx-int8",
                        help="backends to hold against torch fp32")
    parser.add_argument("--stream", type=int, default=512, help="T0 prompts per speed round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved speed rounds")
    parser.add_argument("--lengths", default="128,256",
                        help="max_seq_length values for the speed part (128: bench/novelty.py's; 256: the model's own)")
    parser.add_argument("--rows", type=int, default=5000, help="T0 prompts for the drift and verdict part (0: speed only)")
    parser.add_argument("--sample", default="first", help="first, random, or both comma-separated")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    import torch

    names = ["torch"] + [b for b in args.backends.split(",") if b]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {load()}")
    prompts = t0_prompts()
    if not args.skip_speed:
        for length in (int(x) for x in args.lengths.split(",")):
            embedders = {name: Embedder(backend=name, device="cpu", max_seq_length=length) for name in names}
            print(f"\nRaw encode, {args.stream} T0 prompts, max_seq_length {length}, batch 64, {args.rounds} rounds "
                  f"({load()})\n")
            speed(embedders, stream(prompts, args.stream), args.rounds)
    if args.rows:
        embedders = {name: Embedder(backend=name, device="cpu") for name in names}     # the gate's own settings
        pair_drift(embedders)
        for sample in args.sample.split(","):
            t0_drift(embedders, rows(prompts, args.rows, sample), sample)
    print(f"\n{load()} at the end")


if __name__ == "__main__":
    main()
