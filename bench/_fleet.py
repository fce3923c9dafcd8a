"""Fleet scaling and adaptive concurrency, run by `bench/throughput.py --fleet` and `--auto`.

Fleet: 1, 2, 4 and 8 loopback servers in a process of their own, each working on at most `capacity` requests at once
(the rest wait, as vLLM queues them). A query's latency is fixed by its text and spread evenly around a mean, so the
fleet's capacity is k x capacity / mean latency requests per second. One synth process drives them all (`--api-base`
with k URLs, `--concurrency` k x capacity, up to 1,024 in flight), with either client (`--client openai` or
litellm); the measure is the ideal makespan (a client that costs nothing, same latencies) over the measured one.

Auto: one server with a hidden limit (at most `most` requests in any half second; the rest get a 429 with
Retry-After 0.2 s) and a fixed latency. A sweep of fixed --concurrency values finds the best fixed setting; then
--concurrency auto runs the same requests. Both are reported as a fraction of the hidden limit's rate.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = ROOT / ".venv/bin/python"


def serve(args: list[str]) -> None:
    """In a process of its own: `fleet K CAPACITY LATENCY` or `busy MOST LATENCY`; prints the URLs, serves until stdin
    closes."""
    sys.path.insert(0, str(ROOT))
    from synth.testing import Fault, FakeTeacherServer, Reply, explain_reply

    def answer(body: dict, latency: float, jitter: float = 0.0) -> Reply:
        """An explained answer of its own per query: a repeated stock reply would be rejected by the free
        signals (repetition), and the figure would time rejections instead of records."""
        reply = explain_reply(body)
        reply.delay = query_latency(body["messages"][-1]["content"], latency, jitter)
        return reply

    kind = args[0]
    if kind == "fleet":
        k, capacity, latency, jitter = int(args[1]), int(args[2]), float(args[3]), float(args[4])
        servers = [FakeTeacherServer(lambda body, attempt: answer(body, latency, jitter),
                                     max_inflight=capacity).start() for _ in range(k)]
    else:
        most, latency = int(args[1]), float(args[2])
        lock, times = threading.Lock(), []

        def busy(body, attempt):
            with lock:
                now = time.monotonic()
                times[:] = [t for t in times if t > now - 0.5]
                if len(times) >= most:
                    return Fault("status", status=429, headers={"Retry-After": "0.2"}, error_type="rate_limit_exceeded")
                times.append(now)
            return answer(body, latency)

        servers = [FakeTeacherServer(busy).start()]
    print(",".join(s.url for s in servers), flush=True)
    sys.stdin.read()
    for server in servers:
        server.stop()


def query_latency(query: str, latency: float, jitter: float) -> float:
    """A query's latency, spread evenly over latency x (1 +- jitter) and fixed by its text, as real answers differ
    in length: the bench knows each one, so it can work out what a client with no overhead would take."""
    return latency * (1 + random.Random(query).uniform(-jitter, jitter))


def ideal_makespan(n: int, in_flight: int, latency: float, jitter: float) -> float:
    """The wall time of a client that costs nothing: the n queries sent in order, each of `in_flight` places
    refilled the moment its reply comes. With no jitter it is ceil(n / in_flight) x latency."""
    ends = [query_latency(_query(i), latency, jitter) for i in range(min(n, in_flight))]
    heapq.heapify(ends)
    for i in range(in_flight, n):
        heapq.heappush(ends, heapq.heappop(ends) + query_latency(_query(i), latency, jitter))
    return max(ends)


def _query(i: int) -> str:
    return f"Explain fact number {i} in two lines."


def _queries(tmp: Path, n: int) -> Path:
    path = tmp / f"q{n}.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "instruction": _query(i)}) + "\n"
                            for i in range(n)))
    return path


def _synth(tmp: Path, queries: Path, urls: str, concurrency: str, name: str, client: str = "litellm") -> dict:
    code = ("import json, sys, time, synth\n"
            "start = time.monotonic()\n"
            f"r = synth.generate(queries={str(queries)!r}, out={str(tmp / name)!r}, teacher='openai/fleet-model', "
            f"api_base={urls!r}, concurrency={concurrency!r}, client={client!r}, max_tokens=300, max_retries=30, max_outage=120)\n"
            "print('RESULT ' + json.dumps({'wall_s': time.monotonic() - start, 'records': r.records, "
            "'concurrency': r.manifest.get('concurrency', {}).get('final')}))\n")
    proc = subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True, timeout=3600,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OPENAI_API_KEY": "sk-bench",
                               "HOME": str(Path.home())})
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if not line:
        raise RuntimeError((proc.stderr or proc.stdout).strip().splitlines()[-1])
    return json.loads(line[-1][len("RESULT "):])


def _servers(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([str(PYTHON), __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def _children_cpu() -> float:
    """CPU seconds (user + system) of the child processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fleet(tmp: Path, sizes: list[int], capacity: int, latency: float, seconds: float, client: str = "litellm",
          jitter: float = 0.0) -> list[dict]:
    rows = []
    for k in sizes:
        in_flight = k * capacity
        n = int(in_flight / latency * seconds)
        proc, urls = _servers(["fleet", str(k), str(capacity), str(latency), str(jitter)])
        before = _children_cpu()
        try:
            result = _synth(tmp, _queries(tmp, n), urls, in_flight, f"fleet{k}-{client}-{jitter}", client)
        finally:
            synth_cpu = _children_cpu() - before
            proc.stdin.close()
            proc.wait()
        servers_cpu = _children_cpu() - before - synth_cpu
        ideal = ideal_makespan(n, in_flight, latency, jitter)
        rows.append({"client": client, "endpoints": k, "in_flight": in_flight, "requests": n, "records": result["records"],
                     "wall_s": round(result["wall_s"], 2), "capacity_rps": in_flight / latency,
                     "ideal_s": round(ideal, 2), "rps": round(n / result["wall_s"], 1), "fraction": round(ideal / result["wall_s"], 3),
                     "synth_cpu_ms": round(1000 * synth_cpu / n, 1), "servers_cpu_ms": round(1000 * servers_cpu / n, 1),
                     "cpu_ceiling_rps": round(os.cpu_count() * n / (synth_cpu + servers_cpu), 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def auto(tmp: Path, most: int, latency: float, n: int, sweep: list[int]) -> dict:
    limit_rps = most / 0.5
    runs = {}
    for concurrency in [*sweep, "auto"]:
        proc, url = _servers(["busy", str(most), str(latency)])
        try:
            result = _synth(tmp, _queries(tmp, n), url, concurrency, f"auto-{concurrency}")
        finally:
            proc.stdin.close()
            proc.wait()
        runs[str(concurrency)] = {**result, "rps": round(n / result["wall_s"], 2),
                                  "fraction_of_limit": round(n / result["wall_s"] / limit_rps, 3)}
        print(json.dumps({"concurrency": concurrency, **runs[str(concurrency)]}), flush=True)
    best = max((c for c in runs if c != "auto"), key=lambda c: runs[c]["rps"])
    return {"limit_rps": limit_rps, "latency_s": latency, "requests": n, "runs": runs, "best_fixed": best,
            "auto_over_best_fixed": round(runs["auto"]["rps"] / runs[best]["rps"], 3)}


def batch_cost(tmp: Path, n: int) -> dict:
    """The same n explanation records, online and through the batch API, on the same scripted prices."""
    sys.path.insert(0, str(ROOT))
    import synth
    from synth.testing import FakeTeacherServer, explain_reply

    prices = dict(input_cost=2.5, output_cost=10.0, teacher="openai/fake-teacher")
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        online = synth.generate(queries=str(_queries(tmp, n)), out=str(tmp / "online"), api_base=server.url,
                                concurrency=64, **prices)
        batch = synth.generate(queries=str(_queries(tmp, n)), out=str(tmp / "batch"), api_base=server.url,
                               batch=True, batch_poll=0.2, **prices)
        jobs = len(server.batches.submitted)
    online_usd, batch_usd = online.manifest["usage"]["cost_usd"], batch.manifest["usage"]["cost_usd"]
    return {"records": [online.records, batch.records], "online_usd": online_usd, "batch_usd": batch_usd,
            "jobs": jobs, "ratio": round(batch_usd / online_usd, 4),
            "online_equivalent_usd": batch.manifest["batch"]["online_equivalent_usd"]}


if __name__ == "__main__":
    serve(sys.argv[1:])
