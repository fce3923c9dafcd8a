"""Speed and size of `synth report` at scale, on a synthetic run folder made here (schema-2 records of every
method, judge scores, free signals, strong-teacher answers, novelty rejections, a fleet, an adaptive-concurrency
timeline and batch jobs).

    .venv/bin/python bench/report.py [--records 50000] [--browser-size 5000] [--keep DIR]

It times build_report twice on the same run, in the same process: with the example browser (the default
--browser-size) and, as the baseline, without it (--browser-size 0: the numbers, the plots, the card and the page
alone). It prints both times, their ratio and the page sizes. Task embeddings come from a seeded stand-in embedder
(64-d, hashed), so the figure measures the report's own work, not MiniLM (which embeds only the 500-task sample and the
seeds, the same in both builds). --keep DIR writes the run there and leaves it, for a look at the page.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from synth.report import build_report  # noqa: E402

KINDS = ["math", "writing", "coding", "classification", "advice", "open_qa", "extraction", "rewriting"]
SYSTEMS = ["step_by_step", "detailed", "five_year_old", "show_math_working", "short_then_justify", "definition_parts"]
SIGNALS = ["repetition", "truncated", "too_short", "too_long", "echo", "ignores_system_form", "language_mismatch"]
MUTATIONS = ["add_constraints", "deepen", "concretize", "more_reasoning", "complicate_input", "breadth"]
WORDS = ("the a of to and in explain why how list three steps compare write short poem about river city market "
         "budget plan recipe garden code function sort numbers summary translate letter email friend teacher story "
         "must include at least exactly without only each every example reason tip way").split()


class HashEmbedder:
    """A seeded stand-in for MiniLM: unit vectors from a hash of the text (same text, same vector)."""
    name, dim = "bench-hash", 64

    def encode(self, texts):
        rows = [np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:12], 16)).standard_normal(self.dim)
                for t in texts]
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def _record(n: int, rng: random.Random, task: dict, verdicts: dict) -> dict:
    prov = {"teacher": "openai/bench-teacher", "finish_reason": "stop", "prompt_pool_ids": [],
            "template_hashes": {}, "system_message_id": task["system"],
            "usage": {"prompt_tokens": 200, "completion_tokens": 300, "total_tokens": 500}, "cost_usd": 0.0007,
            "novelty": {"neighbour_id": "seed_0", "score": 0.4, "threshold": 0.9, "stage": "embedding"},
            "created_at": "2025-01-01T00:00:00Z", "task_created_at": "2025-01-01T00:00:00Z", "run_seed": 0,
            "synth_version": "0.1.0", "schema_version": 2, "method": task["method"], "lineage": task["lineage"],
            "persona_id": task["persona"], "judge": {"model": "openai/bench-judge", **verdicts}}
    if n % 17 == 0:
        prov["strong_teacher"] = {"why": "judged 2", "cheap_teacher": "openai/cheap", "cheap_response": _text(rng, 20, 60),
                                  "cheap_cost_usd": 0.0001, "cheap_usage": prov["usage"]}
    record = {"id": f"rec-{n:016x}", "task": {"id": task["id"], "instruction": task["instruction"],
                                             "is_classification": False, "kind": task["kind"], "origin": "machine"},
              "instance": {"index": n % 2, "input": _text(rng, 0, 20) if n % 3 else "", "reference_output": ""},
              "system_message": {"id": task["system"], "text": f"System message {task['system']}."},
              "response": _text(rng, 40, 260), "provenance": prov}
    if n % 7 == 0:
        record["quality"] = {"signals": [{"name": rng.choice(SIGNALS), "detail": "seen in the bench"}]}
    return record


def _task(n: int, rng: random.Random) -> dict:
    method = ("self-instruct", "evol", "magpie")[n % 3]
    rnd = 1 + n % 3
    lineage = {"method": "evol", "parent_id": f"task-{max(n - 3, 0)}", "round": rnd, "mutation": rng.choice(MUTATIONS),
               "root_id": "seed_1", "mutations": [{"round": r, "mutation": rng.choice(MUTATIONS), "parent_id": "x"}
                                                  for r in range(1, rnd + 1)]} if method == "evol" else {"method": method}
    return {"id": f"task-{n}", "instruction": _text(rng, 6, 30 + 10 * rnd), "kind": KINDS[n % len(KINDS)],
            "system": SYSTEMS[n % len(SYSTEMS)], "method": method, "lineage": lineage,
            "persona": f"persona-{n % 200}" if method == "self-instruct" else None}


def make_run(run: Path, records: int, seed: int = 0) -> Path:
    """A run folder of `records` records (two per task), with every file synth report reads."""
    rng = random.Random(seed)
    run.mkdir(parents=True)
    seeds = run.parent / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"seed_{i}", "instruction": _text(rng, 6, 20), "instances": []}) + "\n"
                             for i in range(100)))
    tasks = [_task(n, rng) for n in range(records // 2 + 1)]
    (run / "config.json").write_text(json.dumps({
        "seeds": str(seeds), "novelty_threshold": 0.9, "embedder": HashEmbedder.name, "teacher": "openai/bench-teacher",
        "method": "self-instruct", "personas": "builtin", "judge": "openai/bench-judge"}))
    with open(run / "tasks.jsonl", "w") as tf, open(run / "data.jsonl", "w") as df, open(run / "scores.jsonl", "w") as sf:
        for t in tasks:
            tf.write(json.dumps({"status": "accepted", "bootstrap_no": int(t["id"][5:]) // 8,
                                 "task": {"id": t["id"], "instruction": t["instruction"]}, "lineage": t["lineage"],
                                 "persona_id": t["persona"], "novelty": {"neighbour_id": "seed_0", "score": 0.5,
                                                                         "threshold": 0.9, "stage": "embedding"}}) + "\n")
        for n in range(records):
            verdicts = {"quality": {"score": rng.randint(1, 5), "reason": _text(rng, 5, 15)},
                        "complexity": {"score": rng.randint(1, 6), "reason": _text(rng, 5, 15)}}
            record = _record(n, rng, tasks[n // 2], verdicts)
            df.write(json.dumps(record) + "\n")
            for rubric, verdict in verdicts.items():
                sf.write(json.dumps({"id": f"{record['id']}#{rubric}", "record_id": record["id"], "rubric": rubric,
                                     "status": "ok", "result": verdict, "model": "openai/bench-judge"}) + "\n")
    with open(run / "rejected.jsonl", "w") as fh:
        for n in range(records // 2):
            stage = ("novelty", "filter", "quality", "judge")[n % 4]
            row = {"id": f"rej-{n}", "kind": "rejected", "stage": stage, "reason": {"novelty": "near_duplicate",
                   "filter": "too_short", "quality": "repetition", "judge": "low_quality"}[stage],
                   "bootstrap_no": n // 8, "text": _text(rng, 6, 30)}
            if stage == "novelty":
                row.update(neighbour_id=f"task-{rng.randrange(len(tasks))}", score=round(rng.uniform(0.9, 1), 4))
            fh.write(json.dumps(row) + "\n")
    timeline = [[float(t), 8.0 + t / 10, min(8 + t // 10, 64), 30 * t] for t in range(600)]
    (run / "manifest.json").write_text(json.dumps({
        "status": "completed", "teacher": "openai/bench-teacher",
        "usage": {"calls": records * 3, "prompt_tokens": records * 600, "completion_tokens": records * 500,
                  "cost_usd": records * 0.002, "judge": {"requests": records * 2, "attempts": records * 2,
                                                         "prompt_tokens": records * 400, "completion_tokens": records * 40,
                                                         "cost_usd": records * 0.0004},
                  "total_cost_usd": records * 0.0024},
        "endpoints": {f"http://10.0.0.{i}:8000/v1": {"requests": records // 2, "failures": i, "times_taken_out": 0,
                                                    "mean_latency_s": 0.8} for i in range(4)},
        "concurrency": {"final": 68.0, "timeline": timeline}}))
    return run


def timed(run: Path, out: Path, browser_size: int) -> float:
    start = time.perf_counter()
    build_report(run, out, embedder=HashEmbedder(), browser_size=browser_size)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--browser-size", type=int, default=5000)
    parser.add_argument("--keep", type=Path, help="write the run here and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="synth-bench-report-"))
    start = time.perf_counter()
    run = make_run(folder / "run", args.records)
    print(f"made a run of {args.records:,} records in {time.perf_counter() - start:.1f} s "
          f"(data.jsonl {(run / 'data.jsonl').stat().st_size / 1e6:.1f} MB)")
    baseline = timed(run, folder / "baseline", 0)
    full = timed(run, folder / "report", args.browser_size)
    sizes = {name: (folder / name / "report.html").stat().st_size / 1e6 for name in ("baseline", "report")}
    print(f"build_report without the browser (baseline): {baseline:.2f} s, report.html {sizes['baseline']:.2f} MB")
    print(f"build_report with the browser ({args.browser_size:,}): {full:.2f} s, report.html {sizes['report']:.2f} MB")
    print(f"ratio with / without the browser: {full / baseline:.2f}x time, the browser adds "
          f"{full - baseline:.2f} s and {sizes['report'] - sizes['baseline']:.2f} MB")
    print(f"page: {folder / 'report' / 'report.html'}")


if __name__ == "__main__":
    main()
