"""Generation throughput: synth against distilabel, Curator and a naive loop, on the same loopback teacher,
in the same run (`make bench`). The teacher has a log-normal latency (median 0.8 s, ~1% over 10 s), answers 2%
of attempts with 429 + Retry-After, and replies with ~300 tokens.

    .venv/bin/python bench/throughput.py [--n 5000] [--concurrency 16 64 256] [--systems synth distilabel curator naive]
    .venv/bin/python bench/throughput.py --fleet [--write]     # 1, 2, 4, 8 endpoints: fraction of the fleet's capacity
    .venv/bin/python bench/throughput.py --auto [--write]      # --concurrency auto against a hidden limit vs a sweep
    .venv/bin/python bench/throughput.py --batch [--write]     # 1,000 explanation records: batch API against online

Latency belongs to the query, so every system meets the same slow queries. Two limits are reported, both from the
queries alone: the mean-rate bound N x mean latency / concurrency (the "concurrency / latency" of the issue), and
the ideal client's wall time: concurrency slots with no overhead, queries sent in file order, never idle while a
query is ready (the long tail of the last queries is in it). "Fraction" is the ideal wall time over the measured
one. Each system runs in its own process; peers come from .bench-venv (make bench-env).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _latency import ideal_makespan, latency_for, make_script, query_of  # noqa: E402
from synth.testing import FakeTeacherServer  # noqa: E402
import synth.testing.server as server_module  # noqa: E402
from synth.testing.soak import replace_section  # noqa: E402

PYTHON = {"synth": ROOT / ".venv/bin/python"}
PEER_PYTHON = ROOT / ".bench-venv/bin/python"
T0 = ROOT.parent / "shared/data/t0_train_50k.jsonl.gz"


def load_queries(n: int, path: Path) -> Path:
    out = path / f"queries_{n}.jsonl"
    with gzip.open(T0, "rt") as src, open(out, "w") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            prompt = json.loads(line)["prompt"][:1500]
            dst.write(json.dumps({"id": f"t0-{i:06d}", "instruction": prompt}) + "\n")
    return out


def run_one(system: str, server: FakeTeacherServer, queries: Path, concurrency: int) -> dict:
    server.reset()
    python = PYTHON.get(system, PEER_PYTHON)
    proc = subprocess.run([str(python), str(HERE / "_throughput_worker.py"), system, "--url", server.url,
                           "--queries", str(queries), "--concurrency", str(concurrency)],
                          capture_output=True, text=True, timeout=3600, cwd=queries.parent,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OPENAI_API_KEY": "sk-bench",
                               "TOKENIZERS_PARALLELISM": "false", "HOME": str(Path.home())})
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)[:300]}
    result = json.loads(lines[-1][len("RESULT "):])
    attempts = server.attempts
    texts = [json.loads(line)["instruction"].strip() for line in open(queries)]
    served = {query_of(a.body) for a in attempts if a.outcome == "reply"}
    n = len(texts)
    mean_bound_s = sum(latency_for(t) for t in texts) / concurrency
    ideal_s = ideal_makespan(texts, concurrency)
    result.update(requests=n, attempts=len(attempts), lost=n - result["records"],
                  unmatched=sum(t not in served for t in texts), mean_bound_s=mean_bound_s, ideal_s=ideal_s,
                  rps=result["records"] / result["wall_s"], fraction=ideal_s / result["wall_s"],
                  fraction_of_mean_bound=mean_bound_s / result["wall_s"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--naive-n", type=int, default=40, help="the sequential loop runs on a prefix")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--n-for", nargs="*", default=[], metavar="C=N",
                        help="a smaller N at some concurrency, e.g. 16=1000: batch-bound peers take long there")
    parser.add_argument("--systems", nargs="+", default=["synth", "distilabel", "curator", "naive"])
    parser.add_argument("--write", action="store_true", help="put the table in bench/RESULTS.md (replacing the last one)")
    parser.add_argument("--fleet", action="store_true", help="fleet scaling over 1, 2, 4 and 8 loopback endpoints")
    parser.add_argument("--auto", action="store_true", help="--concurrency auto against a server with a hidden limit")
    parser.add_argument("--batch", action="store_true", help="the cost of 1,000 records through the batch API vs online")
    args = parser.parse_args()
    if args.fleet or args.auto or args.batch:
        return fleet_and_auto(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name, FakeTeacherServer(make_script(server_module)) as server:
        tmp = Path(tmp_name)
        n_for = {int(c): int(n) for c, n in (item.split("=") for item in args.n_for)}
        for concurrency in args.concurrency:
            full = load_queries(n_for.get(concurrency, args.n), tmp)
            for system in args.systems:
                if system == "naive":
                    if concurrency != args.concurrency[0]:
                        continue
                    result = run_one(system, server, load_queries(args.naive_n, tmp), 1)
                    concurrency_shown = 1
                else:
                    result = run_one(system, server, full, concurrency)
                    concurrency_shown = concurrency
                result.update(system=system, concurrency=concurrency_shown)
                rows.append(result)
                print(json.dumps(result), flush=True)
    table = render(rows, args)
    print(table)
    if args.write:
        results = HERE / "RESULTS.md"
        results.write_text(replace_section(results.read_text(encoding="utf-8"), "Generation throughput", table),
                           encoding="utf-8")


def fleet_and_auto(args) -> None:
    import _fleet

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.fleet:
            rows = [row for client in ("openai", "litellm") for row in
                    _fleet.fleet(tmp, [1, 2, 4, 8], capacity=128, latency=8.0, seconds=48.0, client=client, jitter=0.25)]
            lockstep = _fleet.fleet(tmp, [8], capacity=128, latency=8.0, seconds=24.0, client="openai")[0]
            lines = [f"\n## Fleet scaling ({time.strftime('%Y-%m-%d')})\n",
                     "Command: `.venv/bin/python bench/throughput.py --fleet --write`. k loopback servers (one process "
                     "of their own), each working on at most 128 requests at once (the rest wait, as vLLM queues "
                     "them); a query's latency is fixed by its text and spread evenly over 6-10 s (8 s mean), as "
                     "real answers differ in length, so the fleet's capacity is k x 16 req/s. One synth process "
                     "drives them all with `--concurrency` k x 128 (1,024 in flight at k = 8), 48 s of the fleet's "
                     "work each. Fraction = the ideal makespan over the measured wall time (start-up included); the "
                     "ideal is what a client that costs nothing would take with the same latencies: the queries "
                     "sent in order, each place refilled the moment its reply comes. `--client openai` is synth's "
                     "own wire client; `litellm` (the default) is the baseline, measured in the same run. CPU ms "
                     "per request: the synth process's and the servers' process's CPU time (user + system, start-up "
                     "included) over the requests; the CPU ceiling is what "
                     f"{os.cpu_count()} cores could serve at that cost, both sides together.\n",
                     "| client | endpoints | in flight | requests | records | wall s | ideal s | capacity req/s | "
                     "synth req/s | fraction | synth CPU ms/req | servers CPU ms/req | CPU ceiling req/s |",
                     "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            lines += [f"| {r['client']} | {r['endpoints']} | {r['in_flight']} | {r['requests']} | {r['records']} | "
                      f"{r['wall_s']} | {r['ideal_s']} | {r['capacity_rps']:.0f} | {r['rps']} | {r['fraction']} | "
                      f"{r['synth_cpu_ms']} | {r['servers_cpu_ms']} | {r['cpu_ceiling_rps']} |" for r in rows]
            by = {(r["client"], r["endpoints"]): r for r in rows}
            lines.append("\nThe wire client against litellm, same run: " + ", ".join(
                f"{k} endpoint{'s' if k > 1 else ''} {by['openai', k]['fraction'] / by['litellm', k]['fraction']:.2f}x"
                for k in (1, 2, 4, 8)) + f". With every reply in lockstep instead (a fixed 8 s latency, 3 waves of "
                f"1,024 at 8 endpoints, so each wave's replies all land at once) the wire client reaches "
                f"{lockstep['fraction']} ({lockstep['rps']} req/s).")
            _write(args, "Fleet scaling", "\n".join(lines) + "\n")
        if args.auto:
            result = _fleet.auto(tmp, most=10, latency=0.3, n=600, sweep=[2, 4, 8, 16, 32, 64])
            lines = [f"\n## Adaptive concurrency ({time.strftime('%Y-%m-%d')})\n",
                     "Command: `.venv/bin/python bench/throughput.py --auto --write`. One loopback server with a hidden "
                     f"limit of {result['limit_rps']:.0f} req/s (at most 10 requests in any half second; the rest get "
                     "429 with Retry-After 0.2 s) and a 0.3 s latency; 600 requests for each setting.\n",
                     "| --concurrency | wall s | req/s | fraction of the hidden limit | final concurrency |",
                     "|---|---|---|---|---|"]
            lines += [f"| {c} | {r['wall_s']:.1f} | {r['rps']} | {r['fraction_of_limit']} | {r['concurrency'] or ''} |"
                      for c, r in result["runs"].items()]
            lines.append(f"\nBest fixed setting: {result['best_fixed']}; auto reaches "
                         f"{result['auto_over_best_fixed']}x its throughput without being told the limit.\n")
            _write(args, "Adaptive concurrency", "\n".join(lines))
        if args.batch:
            result = _fleet.batch_cost(tmp, 1000)
            text = (f"\n## Batch API cost ({time.strftime('%Y-%m-%d')})\n\n"
                    "Command: `.venv/bin/python bench/throughput.py --batch --write`. 1,000 explanation records from "
                    "the loopback teacher, online and through its /v1/files + /v1/batches, at the same scripted prices "
                    "($2.50 / $10 per million tokens; the batch discount 50%).\n\n"
                    "| run | records | cost USD | batch jobs |\n|---|---|---|---|\n"
                    f"| online | {result['records'][0]} | {result['online_usd']:.4f} | |\n"
                    f"| --batch | {result['records'][1]} | {result['batch_usd']:.4f} | {result['jobs']} |\n\n"
                    f"Batch over online: {result['ratio']}x (target at most 0.5x). The batch run's manifest puts its "
                    f"online equivalent at ${result['online_equivalent_usd']:.4f}.\n")
            _write(args, "Batch API cost", text)


def _write(args, title: str, table: str) -> None:
    print(table)
    if args.write:
        results = HERE / "RESULTS.md"
        results.write_text(replace_section(results.read_text(encoding="utf-8"), title, table), encoding="utf-8")


def render(rows: list[dict], args) -> str:
    synth_rps = {r["concurrency"]: r["rps"] for r in rows if r["system"] == "synth" and "rps" in r}
    lines = [f"\n## Generation throughput ({time.strftime('%Y-%m-%d')})\n",
             f"Command: `.venv/bin/python bench/throughput.py --n {args.n} --concurrency {' '.join(map(str, args.concurrency))} "
             f"{('--n-for ' + ' '.join(args.n_for) + ' ') if args.n_for else ''}--write` (via `make bench`). Teacher: loopback server, log-normal latency (median 0.8 s, ~1% over 10 s), "
             "2% 429 with Retry-After 1 s, ~300-token replies. T0 prompts from shared/data. The naive loop runs "
             f"{args.naive_n} requests sequentially.\n",
             "Latency belongs to each query, so every system meets the same slow queries. \"Ideal client\" is the wall "
             "time of a client with no overhead of its own that sends the queries in order, concurrency at a time, and "
             "is never idle while one is ready; \"N·mean/C\" is the concurrency / mean-latency bound, which no client "
             "reaches because the last queries' long tail runs with most slots empty. Each clock starts after the "
             "system's imports.\n",
             "| system | concurrency | requests | wall s | ideal client s | req/s | fraction of ideal | fraction of N·mean/C | synth / system | peak RSS MB | attempts | lost |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['system']} | {r['concurrency']} | - | failed: {r['error']} | | | | | | | | |")
            continue
        ratio = synth_rps.get(r["concurrency"], 0.0) / r["rps"] if r["rps"] and r["concurrency"] in synth_rps else float("nan")
        lines.append(f"| {r['system']} | {r['concurrency']} | {r['requests']} | {r['wall_s']:.1f} | {r['ideal_s']:.1f} | "
                     f"{r['rps']:.1f} | {r['fraction']:.2f} | {r['fraction_of_mean_bound']:.2f} | {ratio:.2f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['attempts']} | {r['lost']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
