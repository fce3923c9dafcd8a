"""One system answering the benchmark queries against the loopback teacher; prints one JSON line.

Run by bench/throughput.py under the right interpreter: synth's venv for synth, the peers' venv for the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

SYSTEM_PROMPT = ("Work through the task one step at a time, and after each step say briefly why it is valid. "
                 "Give the final answer only once the reasoning supports it.")
MODEL = "gpt-4o-mini"


def run_synth(rows, url, concurrency, tmp):
    import litellm  # noqa: F401  (imported before the clock starts, as the peers import theirs)

    import synth

    path = os.path.join(tmp, "q.jsonl")
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    start = time.monotonic()
    result = synth.generate(queries=path, out=os.path.join(tmp, "run"), teacher=f"openai/{MODEL}", api_base=url,
                            concurrency=concurrency, max_tokens=600, max_retries=5, timeout=120.0)
    return time.monotonic() - start, result.records, result.manifest.get("timings_s", {})


def run_naive(rows, url, concurrency, tmp):
    import openai

    client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=5)
    start, done = time.monotonic(), 0
    for row in rows:
        reply = client.chat.completions.create(model=MODEL, max_tokens=600, messages=[
            {"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": row["instruction"]}])
        done += bool(reply.choices[0].message.content)
    return time.monotonic() - start, done, {}


def run_distilabel(rows, url, concurrency, tmp):
    os.environ["DISTILABEL_CACHE_DIR"] = tmp
    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    with Pipeline(name="bench-throughput", cache_dir=tmp) as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": r["instruction"]} for r in rows], batch_size=concurrency)
        generate = TextGeneration(
            llm=OpenAILLM(model=MODEL, base_url=url, api_key="sk-bench", max_retries=5, timeout=120,
                          generation_kwargs={"max_new_tokens": 600}),
            system_prompt=SYSTEM_PROMPT, input_batch_size=concurrency)
        load >> generate
    start = time.monotonic()
    distiset = pipeline.run(use_cache=False)
    wall = time.monotonic() - start
    data = distiset["default"]["train"]
    return wall, sum(1 for g in data["generation"] if g), {}


def run_curator(rows, url, concurrency, tmp):
    import importlib.util

    os.environ["CURATOR_CACHE_DIR"] = tmp
    # Curator counts tokens with tiktoken, which downloads its tables; litellm ships them, so point tiktoken there.
    litellm_dir = os.path.dirname(importlib.util.find_spec("litellm").origin)
    os.environ["TIKTOKEN_CACHE_DIR"] = os.path.join(litellm_dir, "litellm_core_utils", "tokenizers")
    from bespokelabs import curator

    class Explain(curator.LLM):
        def prompt(self, row):
            return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": row["instruction"]}]

        def parse(self, row, response):
            return {"instruction": row["instruction"], "response": response}

    llm = Explain(model_name=MODEL, backend="openai", generation_params={"max_tokens": 600},
                  backend_params={"base_url": url, "api_key": "sk-bench", "max_concurrent_requests": concurrency,
                                  "max_requests_per_minute": 10_000_000, "max_tokens_per_minute": 10_000_000_000,
                                  "max_retries": 5, "request_timeout": 120, "seconds_to_pause_on_rate_limit": 1})
    start = time.monotonic()
    out = llm([{"instruction": r["instruction"]} for r in rows])
    wall = time.monotonic() - start
    dataset = getattr(out, "dataset", out)
    return wall, sum(1 for r in dataset["response"] if r), {}


SYSTEMS = {"synth": run_synth, "naive": run_naive, "distilabel": run_distilabel, "curator": run_curator}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(args.queries)]
    with tempfile.TemporaryDirectory() as tmp:
        wall, records, timings = SYSTEMS[args.system](rows, args.url, args.concurrency, tmp)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"wall_s": wall, "records": records, "peak_rss_mb": peak, "timings_s": timings}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
