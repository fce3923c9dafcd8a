"""Free quality signals and `synth select`: how well, how fast, and what they find in a real run.

    .venv/bin/python bench/quality.py signals                 # precision/recall on tests/data/quality_labelled.jsonl
    .venv/bin/python bench/quality.py select [--rows 50000]   # synth select on T0 rows: time split, embedding vs rest
    .venv/bin/python bench/quality.py demo --run runs/demo    # what each signal flags in a run folder

`signals` measures a naive keyword-and-length baseline in the same run (what a quick script would check: short,
long, "sorry"/"cannot", no final full stop...) and prints both. Prints markdown tables for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from novelty import precision_recall  # noqa: E402
from synth.quality.signals import SIGNALS, check_response, record_signals  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "quality_labelled.jsonl"
T0 = ROOT.parent / "shared" / "data" / "t0_train_50k.jsonl.gz"


# ---- the naive baseline: one keyword or length rule per signal ----------------------------------------------

def naive(row: dict) -> set[str]:
    response, instruction = row["response"], row["instruction"]
    text, words = response.strip(), response.split()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = set()
    rules = {
        "empty": not text,
        "truncated": bool(text) and text[-1] not in ".!?\"')]`*",
        "repetition": len(lines) != len(set(lines)),
        "non_text": bool(text) and sum(c.isascii() and c.isalpha() for c in text) < 0.5 * len(text.replace(" ", "")),
        "refusal": bool(re.search(r"sorry|cannot|can't|as an ai|unable", text, re.IGNORECASE)),
        "echo": bool(text) and text.lower() in (instruction + " " + row["input"]).lower(),
        "language_mismatch": instruction.isascii() and not text.isascii(),
        "ignores_system_form": bool(row.get("system_message_id")) and len(lines) <= 1,
        "too_short": len(words) < 10,
        "too_long": len(words) > 300,
        "missing_input": not row["input"] and bool(re.search(r"\b(?:following|below|this)\b", instruction, re.I)),
        "label_mismatch": bool(row["is_classification"] and row["reference_output"]
                               and row["reference_output"].lower() not in text.lower()),
    }
    found.update(name for name, hit in rules.items() if hit)
    return found


def synth_signals(row: dict) -> set[str]:
    return {s.name for s in check_response(
        row["instruction"], row["input"], row["response"], system_message=row["system_message"],
        system_message_id=row["system_message_id"], finish_reason=row["finish_reason"],
        reference_output=row["reference_output"], is_classification=row["is_classification"], kind=row["kind"])}


def signals_table() -> None:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    start = time.perf_counter()
    ours = [synth_signals(r) for r in rows]
    elapsed = time.perf_counter() - start
    theirs = [naive(r) for r in rows]
    faulty = [r["label"] == "faulty" for r in rows]
    print(f"Labelled set: {len(rows)} rows, {sum(faulty)} faulty, {len(rows) - sum(faulty)} good "
          f"({elapsed * 1e3 / len(rows):.2f} ms a row for all twelve checks).\n")
    print("| signal | rows with the fault | flagged | precision | recall | baseline flagged | baseline precision "
          "| baseline recall |")
    print("|---|---|---|---|---|---|---|---|")
    for name in SIGNALS:
        truth = [name in r["faults"] for r in rows]
        mine, base = [name in found for found in ours], [name in found for found in theirs]
        p, r = precision_recall(mine, truth)
        bp, br = precision_recall(base, truth)
        print(f"| {name} | {sum(truth)} | {sum(mine)} | {p:.2f} | {r:.2f} | {sum(base)} | {bp:.2f} | {br:.2f} |")
    p, r = precision_recall([bool(f) for f in ours], faulty)
    bp, br = precision_recall([bool(f) for f in theirs], faulty)
    print(f"| **any signal, over rows** (faulty or not) | {sum(faulty)} | {sum(map(bool, ours))} | {p:.2f} | {r:.2f} "
          f"| {sum(map(bool, theirs))} | {bp:.2f} | {br:.2f} |")
    good_flagged = [r["id"] for r, f in zip(rows, ours) if f and r["label"] == "good"]
    print(f"\nGood rows flagged: {len(good_flagged)} {good_flagged[:10]}")
    print("Precision is against the row's own fault for each signal; over rows, against the label faulty.")


# ---- select: speed on T0 rows -------------------------------------------------------------------------------

def select_speed(rows: int, budget: int, strategy: str) -> None:
    from synth.gate.embeddings import shared_embedder
    from synth.quality.select import SelectConfig, select

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "t0.jsonl"
        with gzip.open(T0, "rt", encoding="utf-8") as fh, open(source, "w", encoding="utf-8") as out:
            for number, line in enumerate(fh):
                if number >= rows:
                    break
                out.write(line)
        load = time.perf_counter()
        embedder = shared_embedder()
        load = time.perf_counter() - load
        start = time.perf_counter()
        result = select(source, Path(folder) / "best.jsonl", SelectConfig(budget=budget, strategy=strategy),
                        embedder=embedder)
        wall = time.perf_counter() - start
    t = result.timings
    rest = wall - t["embedding"]
    print(f"synth select --strategy {strategy} --budget {budget} on {result.total} T0 rows: {wall:.1f} s "
          f"(+{load:.1f} s loading MiniLM once), {result.selected} selected")
    print("\n| step | seconds | share |")
    print("|---|---|---|")
    for step in ("read", "signals", "embedding", "choosing", "writing"):
        print(f"| {step} | {t[step]:.2f} | {t[step] / wall:.0%} |")
    print(f"| **embedding / everything else** | {t['embedding']:.2f} / {rest:.2f} | "
          f"{t['embedding'] / wall:.0%} / {rest / wall:.0%} |")
    print(f"\nleft out: {dict(result.dropped)}; ranked by {result.ranked_by}")
    print(f"signals: {t['signals'] / result.total * 1e6:.0f} µs a row")


# ---- demo: what the signals find in a run -----------------------------------------------------------------------

def demo(run: Path) -> None:
    from synth.formats.export import load_records

    records = load_records(run)
    found = [record_signals(r) for r in records]
    counts = Counter(s.name for signals in found for s in {x.name: x for x in signals}.values())
    print(f"{run}: {len(records)} records, {sum(map(bool, found))} flagged by at least one signal\n")
    print("| signal | records flagged | share | an example |")
    print("|---|---|---|---|")
    for name in SIGNALS:
        example = next((s.detail for signals in found for s in signals if s.name == name), "")
        print(f"| {name} | {counts[name]} | {counts[name] / len(records):.0%} | {example[:70]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("signals", help="precision and recall on the labelled set, against a naive baseline")
    speed = sub.add_parser("select", help="synth select on T0 rows: time split, embedding vs the rest")
    speed.add_argument("--rows", type=int, default=50_000)
    speed.add_argument("--budget", type=int, default=1000)
    speed.add_argument("--strategy", default="deita", choices=("deita", "quality", "diverse", "random"))
    run = sub.add_parser("demo", help="how many of a run's records each signal flags")
    run.add_argument("--run", type=Path, default=ROOT / "runs" / "demo")
    args = parser.parse_args()
    if args.what == "signals":
        signals_table()
    elif args.what == "select":
        select_speed(args.rows, args.budget, args.strategy)
    else:
        demo(args.run)


if __name__ == "__main__":
    main()
