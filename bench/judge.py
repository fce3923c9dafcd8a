"""How well `synth judge` (quality rubric) tells good answers from faulty ones on tests/data/quality_labelled.jsonl.

    .venv/bin/python bench/judge.py                      # loopback judges only: the oracle and the constant baseline
    .venv/bin/python bench/judge.py --local --limit 60   # and the embedded SmolLM2 on a balanced, seeded sample

Every judge runs through the same path as `synth judge` (rubric rendering, litellm, cache, parser, scores file):
- constant: a loopback judge that answers "Score: 3" to everything, the baseline each ratio is taken against;
- oracle: a loopback judge that knows the labels (5 for good, 1 for faulty); it checks the plumbing end to end,
  not any model's judgement;
- local: the embedded SmolLM2-135M under llama.cpp, its verdicts bound to the JSON schema by a grammar.

A verdict of 4 or 5 counts as "good". Accuracy counts a failed verdict as wrong; AUC is the chance that a good answer
scores above a faulty one (ties count half; failed verdicts left out), 0.5 for any constant judge.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth.quality.judge import judge  # noqa: E402
from synth.quality.scores import load_scores  # noqa: E402
from synth.testing import FakeTeacherServer, Reply  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "quality_labelled.jsonl"
GOOD_FROM = 4


def load_rows(limit: int | None, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit is None or limit >= len(rows):
        return rows
    rng = random.Random(seed)
    good = [r for r in rows if r["label"] == "good"]
    faulty = [r for r in rows if r["label"] == "faulty"]
    sample = rng.sample(good, limit // 2) + rng.sample(faulty, limit - limit // 2)
    rng.shuffle(sample)              # a run cut short still holds both labels
    return sample


def write_dataset(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": r["id"], "instruction": r["instruction"], "input": r["input"],
                                        "response": r["response"], "system": r["system_message"]}) + "\n"
                            for r in rows), encoding="utf-8")
    return path


def oracle_script(rows: list[dict]):
    label_of = {r["response"].strip(): r["label"] for r in rows}

    def script(body: dict, attempt: int) -> Reply:
        prompt = body["messages"][-1]["content"]
        answer = prompt.rsplit("<answer>\n", 1)[1].rsplit("\n</answer>", 1)[0]
        good = label_of.get(answer.strip()) == "good"        # an empty answer is shown as "(none)": faulty
        return Reply(f"Score: {5 if good else 1}\nReason: labelled {'good' if good else 'faulty'}.")

    return script


def measure(name: str, rows: list[dict], scores: dict, seconds: float, summary: dict) -> dict:
    labels = {r["id"]: r["label"] == "good" for r in rows}
    verdicts = {rid: s["quality"][0] for rid, s in scores.items() if "quality" in s}
    right = sum((verdicts[rid] >= GOOD_FROM) == good for rid, good in labels.items() if rid in verdicts)
    goods = [verdicts[r] for r, g in labels.items() if g and r in verdicts]
    bads = [verdicts[r] for r, g in labels.items() if not g and r in verdicts]
    pairs = len(goods) * len(bads)
    auc = sum((g > b) + 0.5 * (g == b) for g in goods for b in bads) / pairs if pairs else float("nan")
    caught = Counter(f for r in rows if r["label"] == "faulty" and verdicts.get(r["id"], 5) < GOOD_FROM
                     for f in r["faults"])
    return {"judge": name, "rows": len(rows), "answered": len(verdicts), "accuracy": right / len(rows), "auc": auc,
            "seconds_per_verdict": seconds / max(1, len(rows)), "caught": caught,
            "spearman_length": summary["rubrics"]["quality"]["length_bias"]["spearman"]}


def run_loopback(name: str, script, rows: list[dict], data: Path, folder: Path) -> dict:
    with FakeTeacherServer(script) as server:
        started = time.perf_counter()
        result = judge(data, judge=f"openai/{name}", api_base=server.url, rubrics=["quality"],
                       out=str(folder / f"{name}.jsonl"), concurrency=16)
        seconds = time.perf_counter() - started
    return measure(name, rows, load_scores(result.out), seconds, result.summary)


def run_local(rows: list[dict], data: Path, folder: Path, max_tokens: int) -> dict:
    started = time.perf_counter()
    result = judge(data, judge="local", rubrics=["quality"], out=str(folder / "local.jsonl"), max_tokens=max_tokens)
    seconds = time.perf_counter() - started
    failures = result.summary["rubrics"]["quality"]["failures"]
    if failures or result.status != "completed":
        print(f"local judge: {result.status}, failures {failures}", file=sys.stderr)
    return measure("smollm2-135m (local)", rows, load_scores(result.out), seconds, result.summary)


def table(results: list[dict], baseline: dict, rows: list[dict]) -> str:
    lines = ["| judge | verdicts | accuracy | x constant | AUC | x constant | quality~length Spearman | s/verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        rho = "n/a" if r["spearman_length"] is None else f"{r['spearman_length']:+.2f}"
        lines.append(f"| {r['judge']} | {r['answered']}/{r['rows']} | {r['accuracy']:.3f} | "
                     f"{r['accuracy'] / baseline['accuracy']:.2f} | {r['auc']:.3f} | {r['auc'] / baseline['auc']:.2f} | "
                     f"{rho} | {r['seconds_per_verdict']:.3f} |")
    faults = Counter(f for row in rows if row["label"] == "faulty" for f in row["faults"])
    lines += ["", "Faulty answers scored below 4, by fault:", "",
              "| fault | rows | " + " | ".join(r["judge"] for r in results) + " |",
              "|---|---|" + "---|" * len(results)]
    for fault, count in sorted(faults.items()):
        lines.append(f"| {fault} | {count} | " + " | ".join(f"{r['caught'][fault]}" for r in results) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local", action="store_true", help="Also judge with the embedded SmolLM2 (slow on CPU).")
    parser.add_argument("--limit", type=int, default=None, help="A balanced, seeded sample of this many rows.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=120)
    args = parser.parse_args()
    rows = load_rows(args.limit, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = write_dataset(rows, folder / "labelled.jsonl")
        baseline = run_loopback("constant", lambda body, attempt: Reply("Score: 3\nReason: always 3."), rows, data,
                                folder)
        results = [baseline, run_loopback("oracle", oracle_script(rows), rows, data, folder)]
        if args.local:
            results.append(run_local(rows, data, folder, args.max_tokens))
    print(f"{len(rows)} labelled rows ({sum(r['label'] == 'good' for r in rows)} good), seed {args.seed}\n")
    print(table(results, baseline, rows))


if __name__ == "__main__":
    main()
