"""The whole Self-Instruct + Orca pipeline (bootstrap -> gate -> instances -> answer) at concurrency 64 against
the latency teacher of bench/throughput.py: how much of the wall time is synth's own work.

    .venv/bin/python bench/pipeline_overhead.py [--num 600] [--concurrency 64] [--write]

Own work is measured two ways: the stage timings synth records in the manifest (novelty gate with embedding,
parsing, validating, writing), and the process's CPU time, which also counts the HTTP client and the event loop.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _latency import latency_for  # noqa: E402
from conftest import pipeline_script  # noqa: E402  (the scripted teacher of the test suite)

import synth  # noqa: E402
from synth.testing import FakeTeacherServer, request_key  # noqa: E402


def script(body, attempt):
    reply = pipeline_script(body, attempt)
    reply.delay = latency_for(request_key(body))
    return reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    synth.embeddings.shared_embedder()            # load the embedder before the clock starts
    with tempfile.TemporaryDirectory() as tmp, FakeTeacherServer(script) as server:
        cpu0, wall0 = time.process_time(), time.monotonic()
        result = synth.generate(out=f"{tmp}/run", teacher="openai/fake-teacher", api_base=server.url, num=args.num,
                                concurrency=args.concurrency, timeout=120.0)
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        served = [latency_for(a.key) for a in server.attempts if a.outcome == "reply"]
    timings = result.manifest["timings_s"]
    own = sum(timings.values())
    limit = sum(served) / args.concurrency
    lines = [
        f"\n## Full pipeline overhead ({time.strftime('%Y-%m-%d')})\n",
        f"Command: `.venv/bin/python bench/pipeline_overhead.py --num {args.num} --concurrency {args.concurrency}`; "
        "scripted teacher with the throughput benchmark's latency (median 0.8 s, ~1% over 10 s).\n",
        "| figure | value |", "|---|---|",
        f"| records | {result.records} from {len(served)} teacher replies |",
        f"| wall time | {wall:.1f} s |",
        f"| physical limit (sum of latencies / concurrency) | {limit:.1f} s ({limit / wall:.2f} of wall) |",
        f"| synth's stages: {', '.join(f'{k} {v:.2f} s' for k, v in timings.items())} | {own:.2f} s ({100 * own / wall:.1f}% of wall) |",
        f"| process CPU time (stages + HTTP client + event loop) | {cpu:.1f} s ({100 * cpu / wall:.1f}% of wall) |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(HERE / "RESULTS.md", "a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
