"""The full reliability soak (`make soak`), against the scripted loopback teacher, explanation step alone:

- the same requests with no faults and with ~30% of attempts faulted (every fault kind, length and
  content_filter replies included): requests, faults injected, attempts, failed, rejected, lost, duplicated;
- SIGKILL at random points and once half-way through writing a record, then resume: lost, duplicated,
  and requests paid twice beyond those in flight at a kill;
- a run capped with --max-cost, killed once and resumed: what the server billed against the cap;
- a total 503 outage: attempts during it, and how soon the run recovers;
- a canary API key, looked for in every run folder and in everything synth printed.

Every figure is in the pass check (exit 1 if one fails), and the section "## Reliability soak" of
bench/RESULTS.md is replaced with the table.

    .venv/bin/python bench/soak.py            # 10,000 requests at concurrency 64, a 60-second outage
    .venv/bin/python bench/soak.py --smoke    # a small version in about two minutes; writes no results file
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from synth.files import read_complete_lines
from synth.records import schema_errors
from synth.testing import FakeTeacherServer, OutageScript, Reply, expected_rejections, explain_reply, fault_mix
from synth.testing.soak import billed, canary_hits, lost_and_duplicated, replace_section, write_queries

ROOT = Path(__file__).resolve().parent.parent
CANARY = "sk-canary-soak-7d1c2b3a4f5e6d7c8b9a"
PRICES = (2.5, 10.0)          # USD per million tokens, given by flag: litellm has no price for the fake teacher


@dataclass
class Soak:
    """Runs the synth CLI in a child process and keeps what it printed for the canary scan."""

    tmp: Path
    concurrency: int
    timeout: float                # per attempt; the slow faults (silence, drip) outlast it
    printed: list[str] = field(default_factory=list)

    def faults(self, seed: int):
        """~30% of attempts faulted, every kind, chosen from the seed and the request."""
        return fault_mix(explain_reply, seed=seed, rate=0.3, timeout=self.timeout)

    def start(self, args: list[str], **env: str) -> subprocess.Popen:
        log = self.tmp / f"printed-{len(self.printed)}.txt"
        self.printed.append(str(log))
        child_env = {**os.environ, "OPENAI_API_KEY": CANARY, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **env}
        with open(log, "w") as out:
            return subprocess.Popen([sys.executable, "-m", "synth", *args], cwd=self.tmp, env=child_env,
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def run(self, args: list[str], **env: str) -> int:
        return self.start(args, **env).wait()

    def generate(self, server: FakeTeacherServer, queries: Path, out: Path, *extra: str) -> list[str]:
        return ["generate", "--queries", str(queries), "--teacher", "openai/fake-teacher", "--api-base", server.url,
                "--out", str(out), "--concurrency", str(self.concurrency), "--timeout", str(self.timeout), *extra]

    def output(self) -> list[str]:
        return [Path(name).read_text(errors="replace") for name in self.printed]


def tally(run: Path, count: int, attempts: list, wall: float) -> dict:
    lost, duplicated = lost_and_duplicated(run, count)
    records = list(read_complete_lines(run / "data.jsonl"))
    ended = list(read_complete_lines(run / "rejected.jsonl"))
    rejected = Counter(r["reason"] for r in ended if r["kind"] == "rejected")
    return {
        "requests": count, "attempts": len(attempts), "faults": sum(a.faulted for a in attempts),
        "failed": sum(r["kind"] == "failed" for r in ended), "rejected": rejected, "lost": lost,
        "duplicated": duplicated, "records": len(records), "wall_s": wall,
        "bad_records": sum(r["provenance"]["finish_reason"] != "stop" or bool(schema_errors(r)) for r in records),
        "rejections_as_served": rejected == expected_rejections(attempts),
    }


def plain_run(soak: Soak, script, queries: Path, count: int, name: str) -> dict:
    with FakeTeacherServer(script) as server:
        start = time.monotonic()
        code = soak.run(soak.generate(server, queries, soak.tmp / name))
        wall = time.monotonic() - start
        attempts = server.attempts
    return {**tally(soak.tmp / name, count, attempts, wall), "exit": code,
            "billed": sum(billed(attempts, *PRICES).values()),
            "fault_kinds": Counter(a.outcome if a.outcome != "reply" else f"finish:{a.finish_reason}"
                                   for a in attempts if a.faulted)}


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen, limit: float = 600.0) -> None:
    deadline = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)


def every_line_parses(path: Path) -> bool:
    try:
        return all(line.endswith(b"\n") and json.loads(line) for line in path.read_bytes().splitlines(True))
    except ValueError:
        return False


def killed_run(soak: Soak, queries: Path, count: int, kills: int, seed: int) -> dict:
    """SIGKILL at `kills` random record counts, once more half-way through writing a record, then resume."""
    run = soak.tmp / "killed"
    points = sorted(random.Random(seed).sample(range(max(1, count // 20), max(2, count * 3 // 4)), kills))
    killed_at: list[float] = []
    with FakeTeacherServer(soak.faults(seed)) as server:
        start = time.monotonic()
        for i, point in enumerate(points):
            done = (run / "data.jsonl").read_bytes().count(b"\n") if (run / "data.jsonl").exists() else 0
            proc = soak.start(soak.generate(server, queries, run) if i == 0 else ["generate", "--resume", str(run)])
            wait_for_lines(run / "data.jsonl", max(point, done + 1), proc)
            if proc.poll() is None:
                killed_at.append(time.monotonic())
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        mid_write = soak.run(["generate", "--resume", str(run)], SYNTH_TEST_KILL_MID_WRITE="data.jsonl:2")
        killed_at.append(time.monotonic())
        cut_tail = not (run / "data.jsonl").read_bytes().endswith(b"\n")
        code = soak.run(["generate", "--resume", str(run)])
        wall = time.monotonic() - start
        attempts = server.attempts
    replies: dict[str, list[float]] = {}
    for a in attempts:
        if a.outcome == "reply" and a.finish_reason is not None:    # an answer synth keeps (a cut one is retried)
            replies.setdefault(a.key, []).append(a.at)
    # A request is paid again only if it was in flight at a kill: sent at most one deadline before it.
    repaid = [t for times in replies.values() for t in times[:-1]]
    beyond = sum(not any(k - soak.timeout - 1.0 <= t <= k for k in killed_at) for t in repaid)
    lines_parse = every_line_parses(run / "data.jsonl")
    return {**tally(run, count, attempts, wall), "exit": code, "kills": len(killed_at) - 1,
            "mid_write": mid_write == -signal.SIGKILL and cut_tail, "repaid_in_flight": len(repaid) - beyond,
            "repaid_beyond": beyond, "lines_parse": lines_parse}


def capped_run(soak: Soak, queries: Path, cap: float, seed: int) -> dict:
    """--max-cost with a kill half-way to the cap: what the server billed stays within the cap plus what was in flight."""
    run = soak.tmp / "capped"
    prices = ["--max-cost", f"{cap:.6f}", "--input-cost", str(PRICES[0]), "--output-cost", str(PRICES[1])]
    with FakeTeacherServer(soak.faults(seed)) as server:
        proc = soak.start(soak.generate(server, queries, run, *prices))
        while proc.poll() is None and sum(billed(server.attempts, *PRICES).values()) < cap / 2:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        codes = [soak.run(["generate", "--resume", str(run)]) for _ in range(2)]
        per_request = billed(server.attempts, *PRICES)
    settled = sum(r.get("cost", 0.0) for r in read_complete_lines(run / "spend.jsonl"))
    allowance = soak.concurrency * max(per_request.values(), default=0.0)
    spent = sum(per_request.values())
    return {"cap": cap, "spent": spent, "allowance": allowance, "settled": settled, "exits": codes,
            "ok": codes == [3, 3] and 0 < spent <= cap + allowance}


def outage_run(soak: Soak, seconds: float, count: int) -> dict:
    script = OutageScript(seconds, after=2.0, reply=Reply("An explained answer, step by step.", delay=0.2))
    queries = write_queries(soak.tmp / "outage.jsonl", count)
    with FakeTeacherServer(script) as server:
        code = soak.run(soak.generate(server, queries, soak.tmp / "outage"))
        attempts = server.attempts
    during = sum(1 for a in attempts if script.start <= a.at < script.end)
    back = [a.at for a in attempts if a.at >= script.end and a.outcome == "reply"]
    lost, duplicated = lost_and_duplicated(soak.tmp / "outage", count)
    failed = sum(r["kind"] == "failed" for r in read_complete_lines(soak.tmp / "outage" / "rejected.jsonl"))
    bound = soak.concurrency + 12 + int(seconds)    # the wave in flight, a margin, at most a probe a second
    return {"seconds": seconds, "during": during, "bound": bound, "exit": code, "failed": failed, "lost": lost,
            "duplicated": duplicated, "recovered_s": (back[0] - script.end) if back else float("inf")}


def checks(n: int, kills: int, clean: dict, faulty: dict, killed: dict, capped: dict, outage: dict,
           canary: list[str]) -> list[tuple[str, str, str, bool]]:
    """(what, figure, limit, passed) for every figure that has a limit."""
    return [
        ("fault-free run: completed, nothing failed, lost or duplicated",
         f"exit {clean['exit']}, {clean['failed']}/{clean['lost']}/{clean['duplicated']}", "exit 0, 0/0/0",
         clean["exit"] == 0 and clean["failed"] == clean["lost"] == clean["duplicated"] == 0),
        ("faulted attempts", f"{faulty['faults'] / max(1, faulty['attempts']):.1%}", "20-40%",
         0.2 <= faulty["faults"] / max(1, faulty["attempts"]) <= 0.4),
        ("faulted run: failed after retries", f"{faulty['failed']} ({faulty['failed'] / n:.3%})", "<= 0.1%",
         faulty["failed"] <= 0.001 * n),
        ("faulted run: attempts per request", f"{faulty['attempts'] / n:.3f}", "<= 1.5", faulty["attempts"] <= 1.5 * n),
        ("faulted run: lost / duplicated / bad records",
         f"{faulty['lost']} / {faulty['duplicated']} / {faulty['bad_records']}", "0 / 0 / 0",
         faulty["exit"] == 0 and faulty["lost"] == faulty["duplicated"] == faulty["bad_records"] == 0),
        ("faulted run: every length / content_filter reply rejected with its reason",
         " / ".join(str(faulty["rejected"].get(r, 0)) for r in ("finish_length", "finish_content_filter")),
         "as served", faulty["rejections_as_served"]),
        ("SIGKILL and resume: kills at random points, mid-write kill",
         f"{killed['kills']}, {'yes' if killed['mid_write'] else 'no'}", f"{kills}, yes",
         killed["kills"] == kills and killed["mid_write"]),
        ("SIGKILL and resume: lost / duplicated / repaid beyond in-flight",
         f"{killed['lost']} / {killed['duplicated']} / {killed['repaid_beyond']}", "0 / 0 / 0",
         killed["exit"] == 0 and killed["lines_parse"] and killed["lost"] == killed["duplicated"] == killed["repaid_beyond"] == 0),
        ("--max-cost across a kill: billed against cap + in flight",
         f"${capped['spent']:.4f} (exits {capped['exits']})", f"${capped['cap']:.4f} + ${capped['allowance']:.4f}",
         capped["ok"]),
        (f"{outage['seconds']:.0f}-second total 503 outage: attempts during it", str(outage["during"]),
         f"<= {outage['bound']}", outage["during"] <= outage["bound"]),
        ("outage: recovered after the server came back", f"{outage['recovered_s']:.1f} s", "<= 10 s",
         outage["recovered_s"] <= 10.0),
        ("outage: failed / lost / duplicated", f"{outage['failed']} / {outage['lost']} / {outage['duplicated']}",
         "0 / 0 / 0", outage["exit"] == 0 and outage["failed"] == outage["lost"] == outage["duplicated"] == 0),
        ("canary key hits (run folders, cache, captured stdout/stderr)", str(len(canary)), "0", not canary),
    ]


def section(args, clean: dict, faulty: dict, killed: dict, capped: dict, results: list) -> str:
    n = args.requests
    lines = [
        f"## Reliability soak ({time.strftime('%Y-%m-%d')})", "",
        f"Command: `make soak` (`.venv/bin/python bench/soak.py --requests {n} --concurrency {args.concurrency} "
        f"--outage {args.outage:.0f} --kills {args.kills} --timeout {args.timeout:g}`) on {os.cpu_count()} cores. Scripted loopback teacher, "
        f"explanation step alone, synth in a child process, per-attempt deadline {args.timeout:g} s, max_retries 5.", "",
        "| run | requests | attempts | faults injected | failed | rejected | lost | duplicated | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in (("fault-free", clean), ("~30% of attempts faulted", faulty),
                    (f"faulted, {killed['kills']} SIGKILLs + 1 mid-write, resumed", killed)):
        lines.append(f"| {name} | {r['requests']} | {r['attempts']} | {r['faults']} | {r['failed']} | "
                     f"{sum(r['rejected'].values())} | {r['lost']} | {r['duplicated']} | {r['wall_s']:.1f} |")
    kinds = ", ".join(f"{k} {v}" for k, v in faulty["fault_kinds"].most_common())
    lines += [
        "", f"Faults injected in the faulted run: {kinds}.",
        f"Wall time, faulted against fault-free (same requests, this run): {faulty['wall_s'] / clean['wall_s']:.2f}x. "
        f"Requests sent again after a kill because they were in flight: {killed['repaid_in_flight']}.",
        f"--max-cost run: cap ${capped['cap']:.4f}, server billed ${capped['spent']:.4f}, ledger settled "
        f"${capped['settled']:.4f}, in-flight allowance ${capped['allowance']:.4f} "
        f"({args.concurrency} requests at the dearest one's cost).", "",
        "| check | figure | limit | pass |", "|---|---|---|---|",
    ]
    lines += [f"| {what} | {figure} | {limit} | {'yes' if ok else '**no**'} |" for what, figure, limit, ok in results]
    return "\n".join(lines) + "\n"


def say(text: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds of total 503 outage")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs at random points (plus one mid-write)")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-attempt deadline in seconds")
    parser.add_argument("--results", type=Path, default=None, help="file whose soak section to replace "
                        "(default bench/RESULTS.md; none with --smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help="120 requests, concurrency 16, 2 kills, a 3 s outage, a 2 s deadline")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.concurrency, args.kills, args.outage, args.timeout = 120, 16, 2, 3.0, 2.0
    results_file = args.results or (None if args.smoke else ROOT / "bench" / "RESULTS.md")
    n = args.requests
    with tempfile.TemporaryDirectory() as tmp_name:
        soak = Soak(Path(tmp_name), args.concurrency, args.timeout)
        queries = write_queries(soak.tmp / "q.jsonl", n)
        say(f"fault-free run, {n} requests at concurrency {args.concurrency}")
        clean = plain_run(soak, lambda body, attempt: explain_reply(body), queries, n, "clean")
        say("the same requests with ~30% of attempts faulted")
        faulty = plain_run(soak, soak.faults(1), queries, n, "faulty")
        say(f"SIGKILL at {args.kills} random points and once mid-write, then resume")
        killed = killed_run(soak, queries, n, args.kills, seed=2)
        say("--max-cost at a quarter of the fault-free bill, killed once")
        capped = capped_run(soak, queries, cap=clean["billed"] / 4, seed=3)
        say(f"{args.outage:.0f}-second total outage")
        outage = outage_run(soak, args.outage, max(400, args.concurrency * 25))
        canary = canary_hits(CANARY, [soak.tmp / name for name in ("clean", "faulty", "killed", "capped", "outage")],
                             soak.output())
    results = checks(n, args.kills, clean, faulty, killed, capped, outage, canary)
    text = section(args, clean, faulty, killed, capped, results)
    print(text)
    if results_file is not None:
        results_file.write_text(replace_section(results_file.read_text() if results_file.exists() else "",
                                                "Reliability soak", text))
        say(f"wrote the section to {results_file}")
    sys.exit(0 if all(ok for *_, ok in results) else 1)


if __name__ == "__main__":
    main()
