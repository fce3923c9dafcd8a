"""The whole Self-Instruct + Orca pipeline (bootstrap -> gate -> instances -> answer) at concurrency 64 against
the latency teacher of bench/throughput.py: how much of the wall time is synth's own work.

    .venv/bin/python bench/pipeline_overhead.py [--num 600] [--concurrency 64] [--write]

Own work is measured three ways:
- the stage timings synth records in the manifest (novelty gate with embedding, parsing, validating, writing);
  the gate runs in a worker thread, so its time overlaps waiting on the teacher and is not all lost;
- what the wall time would be without synth's embedding cost: the same run again with an embedder that returns
  the first run's vectors at once, so every decision, and so every teacher request and its latency, is the same;
  the difference is what embedding costs the wall clock;
- the process's CPU time, which also counts the HTTP client and the event loop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import statistics
import sys
import unittest.mock
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import conftest  # noqa: E402  (the scripted teacher of the test suite, served by bench/_serve.py)

import numpy as np  # noqa: E402

import synth  # noqa: E402
import synth.generation.api  # noqa: E402
from synth.testing.soak import replace_section  # noqa: E402


class ServerProcess:
    """bench/_serve.py in its own process: the teacher's threads do not compete with synth for the GIL."""

    def __init__(self, kind: str):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "_serve.py"), kind], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()

    def _say(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def reset(self) -> None:
        self._say("reset")

    def served_latencies(self, scratch: Path) -> list[float]:
        path = scratch / "attempts.jsonl"
        self._say(f"dump {path}")
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return [r["latency"] for r in rows if r["outcome"] == "reply"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class FreeEmbedder:
    """Vectors looked up in a table made before the clock starts: the gate decides as usual, embedding costs nothing.
    The scripted teacher writes tasks from a closed set of topics and forms, so every text it can send is in it."""

    def __init__(self, real, texts):
        self.name, self.dim, self.real, self.missed = real.name, real.dim, real, 0
        self.vectors = dict(zip(texts, real.encode(texts)))

    def encode(self, texts):
        missing = [t for t in texts if t not in self.vectors]
        if missing:
            self.missed += len(missing)
            self.vectors.update(zip(missing, self.real.encode(missing)))
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)


def every_task_text() -> list[str]:
    seeds = [t.instruction for t in synth.load_seeds()]
    return seeds + [form.format(t=topic) for topic in conftest._TOPICS for form in conftest._FORMS]


def run(server, folder, args, embedder):
    server.reset()
    with unittest.mock.patch.object(sys.modules["synth.generation.api"], "shared_embedder", lambda name=None: embedder):
        cpu0, wall0 = time.process_time(), time.monotonic()
        result = synth.generate(out=folder, teacher="openai/fake-teacher", api_base=server.url, num=args.num,
                                concurrency=args.concurrency, timeout=120.0)
        return result, time.monotonic() - wall0, time.process_time() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="runs per arm, interleaved")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    real = synth.gate.embeddings.shared_embedder()            # loaded before the clock starts
    free = FreeEmbedder(real, every_task_text())
    runs = {"real": [], "free": []}
    with tempfile.TemporaryDirectory() as tmp, ServerProcess("pipeline") as server:
        for i in range(args.repeat):                     # interleaved, alternating which goes first
            for arm, embedder in ((("real", real), ("free", free)) if i % 2 == 0 else (("free", free), ("real", real))):
                result, wall, cpu = run(server, f"{tmp}/{arm}-{i}", args, embedder)
                served = server.served_latencies(Path(tmp))
                runs[arm].append({"result": result, "wall": wall, "cpu": cpu, "served": served})
    real_walls = [r["wall"] for r in runs["real"]]
    free_walls = [r["wall"] for r in runs["free"]]
    wall, wall_free = statistics.mean(real_walls), statistics.mean(free_walls)
    timings = {k: statistics.mean(r["result"].manifest["timings_s"].get(k, 0.0) for r in runs["real"])
               for k in runs["real"][0]["result"].manifest["timings_s"]}
    own = sum(timings.values())
    on_loop = own - timings.get("novelty_gate", 0.0)
    limit = statistics.mean(sum(r["served"]) / args.concurrency for r in runs["real"])
    cpu = statistics.mean(r["cpu"] for r in runs["real"])
    replies = statistics.mean(len(r["served"]) for r in runs["real"])
    spread = lambda xs: f"{min(xs):.1f}-{max(xs):.1f}"  # noqa: E731
    embedding_cost = wall - wall_free
    lines = [
        f"\n## Full pipeline overhead ({time.strftime('%Y-%m-%d')})\n",
        f"Command: `.venv/bin/python bench/pipeline_overhead.py --num {args.num} --concurrency {args.concurrency} "
        f"--repeat {args.repeat} --write` (via `make bench`); the test suite's scripted teacher with the throughput "
        "benchmark's latency (median 0.8 s, ~1% over 10 s). Each arm ran "
        f"{args.repeat} times, interleaved; figures are means. \"Embedding free\" is the same pipeline with an "
        "embedder that looks its vectors up in a table made before the clock starts (every text this teacher can "
        f"write; {free.missed} missed), so the gate decides as usual at no cost.\n",
        "| figure | value |", "|---|---|",
        f"| records per run | {args.num}, from {replies:.0f} teacher replies (bootstrap, classify, instances, answers) |",
        f"| wall time | {wall:.1f} s (runs {spread(real_walls)}) |",
        f"| sum of teacher latencies / concurrency | {limit:.1f} s ({limit / wall:.2f} of wall; the rest is the "
        "pipeline's own dependency chain: a task's four calls run one after another) |",
        f"| synth's stages: {', '.join(f'{k} {v:.2f} s' for k, v in timings.items())} | {own:.2f} s ({100 * own / wall:.1f}% of wall, "
        "but the gate runs in a worker thread beside the requests) |",
        f"| wall time with embedding free | {wall_free:.1f} s (runs {spread(free_walls)}) |",
        f"| what embedding costs the wall clock | {embedding_cost:.1f} s ({100 * embedding_cost / wall:.1f}% of wall) |",
        f"| parsing + validating + writing, on the event loop | {on_loop:.2f} s ({100 * on_loop / wall:.1f}% of wall) |",
        f"| synth's own overhead on the wall clock (the two rows above) | {100 * (max(embedding_cost, 0.0) + on_loop) / wall:.1f}% |",
        f"| process CPU time (stages + HTTP client + event loop) | {cpu:.1f} s ({100 * cpu / wall:.1f}% of wall) |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        results = HERE / "RESULTS.md"
        results.write_text(replace_section(results.read_text(encoding="utf-8"), "Full pipeline overhead", text),
                           encoding="utf-8")


if __name__ == "__main__":
    main()
