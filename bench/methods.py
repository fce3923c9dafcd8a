"""The ways of making tasks on the same budget: Self-Instruct, Self-Instruct led by personas, Evol-Instruct and
Magpie, on the scripted loopback teacher and on the embedded SmolLM2.

    .venv/bin/python bench/methods.py [--teacher scripted|local|both] [--budget 0.05] [--write]

Each method gets the same --max-cost at the same prices (USD 1 / 2 per million prompt / completion tokens; the embedded
model is priced too, so its budget binds the same way). Per method: accepted tasks per 100 teacher calls, cost per
record, diversity of the tasks (mean pairwise cosine distance, Vendi score, k-means cluster coverage against the
seeds, from `synth report`'s numbers) and complexity proxies (words per instruction, constraints per instruction).
The baseline is Self-Instruct without personas, measured in the same run; the other methods print their ratio to it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import synth  # noqa: E402
from synth.report.numbers import collect  # noqa: E402
from synth.testing import FakeTeacherServer  # noqa: E402
from synth.testing.soak import replace_section  # noqa: E402

METHODS = {"self-instruct": {}, "self-instruct + personas": {"personas": "builtin"},
           "evol": {"method": "evol", "rounds": 3}, "magpie": {"method": "magpie"}}
CONSTRAINT = re.compile(r"\b(\d+|exactly|at least|at most|no more than|without|must|only|each|every|step|compare|"
                        r"explain why|in (?:one|two|three|four|five) )", re.I)


def scripted(body, attempt):
    """One script for every method: bootstrap lists, persona prompts, mutations, raw completions, and the answer
    stages, all from the test suite's scripted teachers."""
    from test_methods import evol_script, magpie_script

    if "prompt" in body:
        return magpie_script(body, attempt)
    return evol_script(body, attempt)


def complexity(texts: list[str]) -> dict[str, float]:
    words = [len(t.split()) for t in texts]
    constraints = [len(CONSTRAINT.findall(t)) for t in texts]
    return {"words": round(sum(words) / len(words), 1) if words else 0.0,
            "constraints": round(sum(constraints) / len(constraints), 2) if constraints else 0.0}


def run(name: str, extra: dict, tmp: Path, teacher: dict, budget: float) -> dict:
    out = tmp / re.sub(r"\W+", "-", name)
    started = time.monotonic()
    result = synth.generate(out=str(out), num=100_000, max_cost=budget, input_cost=1.0, output_cost=2.0,
                            max_idle_rounds=15, **teacher, **extra)
    usage = result.manifest["usage"]
    calls = usage["calls"] - usage["cached_calls"]
    accepted = result.manifest["counts"]["tasks_accepted"]
    tasks = [r["task"]["instruction"] for r in synth.load_records(out)] if result.records else []
    numbers = collect(out, clusters=10) if result.records > 2 else {"diversity": {}}
    diversity = numbers["diversity"]
    return {"method": name, "status": result.status, "records": result.records, "tasks": accepted, "calls": calls,
            "tasks_per_100_calls": round(100 * accepted / calls, 1) if calls else 0.0,
            "cost_per_record": round(usage["total_cost_usd"] / result.records, 6) if result.records else None,
            "distance": diversity.get("mean_pairwise_cosine_distance"), "vendi": diversity.get("vendi_score"),
            "coverage": (diversity.get("cluster_coverage") or {}).get("coverage"), **complexity(list(dict.fromkeys(tasks))),
            "wall_s": round(time.monotonic() - started, 1)}


def table(rows: list[dict], label: str) -> str:
    base = next((r for r in rows if r["method"] == "self-instruct"), None)
    lines = [f"\n### {label}\n", "| method | status | records | tasks | teacher calls | tasks / 100 calls | USD / record | "
             "pairwise distance | Vendi | cluster coverage | words | constraints | Vendi vs self-instruct |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = (round(r["vendi"] / base["vendi"], 2) if base and r["vendi"] and base["vendi"] else "")
        lines.append(f"| {r['method']} | {r['status']} | {r['records']} | {r['tasks']} | {r['calls']} | "
                     f"{r['tasks_per_100_calls']} | {r['cost_per_record']} | {r['distance']} | {r['vendi']} | "
                     f"{r['coverage']} | {r['words']} | {r['constraints']} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", choices=("scripted", "local", "both"), default="both")
    parser.add_argument("--budget", type=float, default=0.05, help="USD per method at $1 / $2 per million tokens")
    parser.add_argument("--local-budget", type=float, default=0.004)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    sections = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.teacher in ("scripted", "both"):
            from synth.training.student import default_student

            with FakeTeacherServer(scripted) as server:
                teacher = {"teacher": "openai/fake-teacher", "api_base": server.url, "concurrency": 8}
                rows = [run(name, {**extra, **({"chat_template": str(default_student())} if name == "magpie" else {})},
                            tmp / "scripted", teacher, args.budget) for name, extra in METHODS.items()]
            print(json.dumps(rows, indent=1))
            sections.append(table(rows, f"Scripted loopback teacher, ${args.budget} each"))
        if args.teacher in ("local", "both"):
            rows = [run(name, extra, tmp / "local", {"teacher": "local", "max_tokens": 300}, args.local_budget)
                    for name, extra in METHODS.items()]
            print(json.dumps(rows, indent=1))
            sections.append(table(rows, f"Embedded SmolLM2-135M, ${args.local_budget} each (priced like the others)"))
    text = (f"\n## Methods ({time.strftime('%Y-%m-%d')})\n\nCommand: `.venv/bin/python bench/methods.py "
            f"--teacher {args.teacher} --budget {args.budget} --local-budget {args.local_budget} --write`. "
            "Every method gets the same --max-cost at USD 1 / 2 per million tokens. The scripted teacher answers "
            "every stage from the test suite's scripts, so its figures check the plumbing and the accounting, not a "
            "model; the embedded model's are a real, weak model's.\n" + "".join(sections))
    print(text)
    if args.write:
        results = HERE / "RESULTS.md"
        results.write_text(replace_section(results.read_text(encoding="utf-8"), "Methods", text), encoding="utf-8")


if __name__ == "__main__":
    main()
