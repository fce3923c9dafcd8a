"""The full reliability soak (`make soak`): 10,000 requests at concurrency 64 with ~30% of attempts faulted,
against the same requests with no faults, plus a 60-second total outage. Prints a table and appends it to
bench/RESULTS.md.

    .venv/bin/python bench/soak.py [--requests 10000] [--concurrency 64] [--outage 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

CANARY = "sk-canary-soak-7d1c2b3a4f5e6d7c8b9a"
os.environ["OPENAI_API_KEY"] = CANARY

import synth  # noqa: E402
from synth.jsonl import read_complete_lines  # noqa: E402
from synth.records import schema_errors  # noqa: E402
from synth.testing import FakeTeacherServer, OutageScript, Reply, explain_reply, fault_mix  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def write_queries(path: Path, count: int) -> Path:
    with open(path, "w") as fh:
        for i in range(count):
            fh.write(json.dumps({"id": f"q{i:06d}", "instruction": f"Query {i}: explain why the sky looks blue at noon "
                                 f"and red at sunset, in case number {i}."}) + "\n")
    return path


def one_run(script, queries: Path, out: Path, concurrency: int) -> dict:
    with FakeTeacherServer(script) as server:
        start = time.monotonic()
        result = synth.generate(queries=str(queries), out=str(out), teacher="openai/fake-teacher", api_base=server.url,
                                concurrency=concurrency, timeout=5.0, max_retries=5)
        wall = time.monotonic() - start
        attempts = server.attempts
    ended = Counter(r["task"]["id"] for r in read_complete_lines(out / "data.jsonl"))
    ended.update(r["task_id"] for r in read_complete_lines(out / "rejected.jsonl"))
    records = list(read_complete_lines(out / "data.jsonl"))
    canary_hits = sum(CANARY.encode() in p.read_bytes() for p in out.rglob("*") if p.is_file())
    return {
        "wall_s": wall, "records": len(records), "attempts": len(attempts),
        "faulted": sum(a.outcome != "reply" for a in attempts),
        "failed": sum(result.manifest["counts"]["failed"].values()),
        "rejected": sum(result.manifest["counts"]["rejected"].values()),
        "lost": sum(1 for i in range(count_queries(queries)) if f"q{i:06d}" not in ended),
        "duplicated": sum(v - 1 for v in ended.values() if v > 1),
        "bad_records": sum(1 for r in records if r["provenance"]["finish_reason"] != "stop" or schema_errors(r)),
        "canary_hits": canary_hits,
    }


def count_queries(path: Path) -> int:
    return sum(1 for _ in open(path))


def outage_run(seconds: float, tmp: Path) -> dict:
    script = OutageScript(seconds, after=2.0, reply=Reply("An explained answer, step by step.", delay=0.2))
    queries = write_queries(tmp / "outage.jsonl", 1500)
    with FakeTeacherServer(script) as server:
        result = synth.generate(queries=str(queries), out=str(tmp / "outage"), teacher="openai/fake-teacher",
                                api_base=server.url, concurrency=64, timeout=5.0, max_retries=5)
        during = sum(1 for a in server.attempts if script.start <= a.at < script.end)
        recovered = min((a.at for a in server.attempts if a.at >= script.end and a.outcome == "reply"),
                        default=float("nan")) - script.end
    return {"outage_s": seconds, "attempts_during": during, "recovered_after_s": recovered,
            "failed": sum(result.manifest["counts"]["failed"].values()), "records": result.records}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--outage", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        queries = write_queries(tmp / "q.jsonl", args.requests)
        clean = one_run(lambda body, attempt: explain_reply(body), queries, tmp / "clean", args.concurrency)
        faulty = one_run(fault_mix(explain_reply, seed=1, rate=0.3, timeout=5.0), queries, tmp / "faulty", args.concurrency)
        outage = outage_run(args.outage, tmp)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.requests
    lines = [
        f"\n## Reliability soak ({time.strftime('%Y-%m-%d')})\n",
        f"Command: `make soak` (`.venv/bin/python bench/soak.py --requests {n} --concurrency {args.concurrency} "
        f"--outage {args.outage:.0f}`), scripted loopback teacher, explanation step alone.\n",
        "| run | requests | attempts | faulted attempts | failed | rejected | lost | duplicated | bad records | canary hits | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in (("fault-free", clean), ("~30% faulted", faulty)):
        lines.append(f"| {name} | {n} | {r['attempts']} | {r['faulted']} | {r['failed']} | {r['rejected']} | {r['lost']} | "
                     f"{r['duplicated']} | {r['bad_records']} | {r['canary_hits']} | {r['wall_s']:.1f} |")
    lines += [
        "",
        f"- attempts per request under faults: {faulty['attempts'] / n:.3f} (limit 1.5); failed after retries: "
        f"{100 * faulty['failed'] / n:.3f}% (limit 0.1%)",
        f"- wall time, faulted against fault-free: {faulty['wall_s'] / clean['wall_s']:.2f}x",
        f"- {outage['outage_s']:.0f}-second total 503 outage at concurrency 64: {outage['attempts_during']} attempts "
        f"during it, recovered {outage['recovered_after_s']:.1f} s after the server came back, "
        f"{outage['failed']} failed of {outage['records'] + outage['failed']}",
        f"- peak RSS of the benchmark process: {rss_mb:.0f} MB",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(ROOT / "bench" / "RESULTS.md", "a") as fh:
        fh.write(text)
    ok = (faulty["lost"] == faulty["duplicated"] == faulty["bad_records"] == faulty["canary_hits"] == 0
          and faulty["failed"] <= n * 0.001 and faulty["attempts"] <= 1.5 * n and outage["failed"] == 0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
