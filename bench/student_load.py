"""Load time of the embedded student: the cached safetensors folder against dequantising the GGUF, in one run.

    .venv/bin/python bench/student_load.py [--repeat 3]

Each arm loads in a fresh subprocess, twice: the first load pays transformers' lazy imports (tokenizer and
loader modules), the second is the load alone. Module-level imports of torch and transformers are excluded.
Medians over --repeat subprocesses. The baseline is what a first run (or a tool without the cache) does: transformers reading the GGUF.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOAD = """
import json, os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, gguf = sys.argv[1], sys.argv[2]
def load():
    started = time.perf_counter()
    if gguf:
        AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
    else:
        AutoTokenizer.from_pretrained(folder)
        AutoModelForCausalLM.from_pretrained(folder)
    return time.perf_counter() - started
print(json.dumps({"first": load(), "again": load()}))
"""


def timed_load(folder: Path, gguf: str) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD, str(folder), gguf], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from synth.training.student import _default_gguf, default_student

    gguf = _default_gguf()
    cached = default_student()
    timed_load(cached, "")                                  # warm the page cache for both files once
    timed_load(gguf.parent, gguf.name)
    from_gguf = [timed_load(gguf.parent, gguf.name) for _ in range(args.repeat)]
    from_cache = [timed_load(cached, "") for _ in range(args.repeat)]
    def median(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print("| load (model + tokenizer) | first in a fresh process, s | again in that process, s | runs |")
    print("|---|---:|---:|---:|")
    for name, runs in (("GGUF, dequantised by transformers (baseline)", from_gguf),
                       ("synth's safetensors cache", from_cache)):
        print(f"| {name} | {median(runs, 'first'):.2f} | {median(runs, 'again'):.2f} | {len(runs)} |")
    for key, label in (("first", "first load in a fresh process"), ("again", "load once transformers is warm")):
        print(f"\n{label}: the cache is {median(from_gguf, key) / median(from_cache, key):.1f}x faster than the GGUF")


if __name__ == "__main__":
    main()
