"""`synth eval`'s batched greedy decoding against a one-prompt-at-a-time `model.generate` loop, on the same prompts
and model, in one run; and (with --demo) the wall time of `make demo-eval`.

    .venv/bin/python bench/eval.py                       # embedded SmolLM2-135M, CPU fp32, 16 prompts, batch 8
    .venv/bin/python bench/eval.py --gpu                 # CUDA, bf16 (the precision synth eval picks on a GPU)
    .venv/bin/python bench/eval.py --demo                # also: make demo-eval, timed

Arms, each on the first --prompts bundled held-out tasks, greedy, at most --new-tokens per answer:
  one-by-one   model.generate on one prompt at a time (what synth.training.evaluate does for its samples)
  hf-batched   model.generate on left-padded batches of --batch (for reference)
  synth        synth.evaluation.decode.greedy on batches of --batch grouped by prompt length
Tokens/s counts the answer tokens each arm generated (stop tokens excluded). The arms run in --rounds interleaved
rounds; the headline is the median of the rounds' synth / one-by-one ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def one_by_one(model, prompts, new_tokens, stops, pad_id):
    import torch

    answers = []
    for ids in prompts:
        x = torch.tensor([ids], device=model.device)
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens,
                             do_sample=False, eos_token_id=sorted(stops), pad_token_id=pad_id)
        answers.append(_cut(out[0, len(ids):].tolist(), stops))
    return answers


def hf_batched(model, prompts, new_tokens, stops, pad_id, batch):
    from synth.evaluation.decode import in_batches, pad_batch

    answers = [None] * len(prompts)
    for group in in_batches([len(p) for p in prompts], batch):
        padded = pad_batch([prompts[i] for i in group], pad_id)
        out = model.generate(input_ids=padded.input_ids.to(model.device),
                             attention_mask=padded.attention_mask.to(model.device), max_new_tokens=new_tokens,
                             do_sample=False, eos_token_id=sorted(stops), pad_token_id=pad_id)
        for row, index in enumerate(group):
            answers[index] = _cut(out[row, padded.input_ids.shape[1]:].tolist(), stops)
    return answers


def synth_batched(model, prompts, new_tokens, stops, pad_id, batch):
    from synth.evaluation.decode import greedy, in_batches

    answers = [None] * len(prompts)
    for group in in_batches([len(p) for p in prompts], batch):
        for index, gen in zip(group, greedy(model, [prompts[i] for i in group], pad_id=pad_id, stop_ids=stops,
                                            max_new_tokens=new_tokens)):
            answers[index] = gen.tokens
    return answers


def _cut(tokens, stops):
    end = next((i for i, t in enumerate(tokens) if t in stops), len(tokens))
    return tokens[:end]


def timed(arm, *args):
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    answers = arm(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tokens = sum(len(a) for a in answers)
    return answers, {"tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 2)}


def decoding(args) -> dict:
    import torch

    from synth.evaluation.answers import load_base
    from synth.evaluation.decode import prompt_ids
    from synth.evaluation.tasks import bundled_tasks_path, load_task_file
    from synth.training.masking import stop_token_ids
    from synth.training.student import load_tokenizer, resolve_student

    folder = resolve_student(args.student)
    tokenizer = load_tokenizer(folder)
    model = load_base(folder, "bf16" if args.gpu else "fp32")
    stops = stop_token_ids(tokenizer, model.generation_config.eos_token_id)
    tasks = load_task_file(bundled_tasks_path())[: args.prompts]
    prompts = [prompt_ids(tokenizer, t.messages) for t in tasks]
    synth_batched(model, prompts[: args.batch], 4, stops, tokenizer.pad_token_id, args.batch)      # warm-up
    arms = {"one-by-one": (one_by_one, (model, prompts, args.new_tokens, stops, tokenizer.pad_token_id)),
            "hf-batched": (hf_batched, (model, prompts, args.new_tokens, stops, tokenizer.pad_token_id, args.batch)),
            "synth": (synth_batched, (model, prompts, args.new_tokens, stops, tokenizer.pad_token_id, args.batch))}
    rounds, answers = [], {}
    for round_index in range(args.rounds):             # interleaved, so a busy spell on the machine hits every arm
        results = {}
        for name, (arm, arm_args) in arms.items():
            answers[name], results[name] = timed(arm, *arm_args)
            print(f"round {round_index + 1} {name:>11}: {results[name]['tokens']} tokens in "
                  f"{results[name]['seconds']} s, {results[name]['tokens_per_s']} tokens/s", flush=True)
        rounds.append(results)
    same = sum(a == b for a, b in zip(answers["synth"], answers["one-by-one"]))
    per_round = [r["synth"]["tokens_per_s"] / r["one-by-one"]["tokens_per_s"] for r in rounds]
    versus_hf = [r["synth"]["tokens_per_s"] / r["hf-batched"]["tokens_per_s"] for r in rounds]
    ratios = sorted(per_round)
    ratio = statistics.median(ratios)
    median = rounds[sorted(range(len(rounds)), key=per_round.__getitem__)[len(rounds) // 2]]   # the table's round
    print(f"synth batched / one-by-one: {ratio:.2f}x at batch {args.batch}, median of {len(rounds)} rounds "
          f"({', '.join(f'{r:.2f}' for r in ratios)}; {same}/{len(prompts)} answers token-identical); "
          f"synth / hf-batched: {statistics.median(versus_hf):.2f}x")
    return {"device": "cuda" if torch.cuda.is_available() and args.gpu else "cpu", "threads": torch.get_num_threads(),
            "prompts": len(prompts), "batch": args.batch, "new_tokens": args.new_tokens, "arms": median,
            "rounds": rounds, "speedup_vs_one_by_one": round(ratio, 2),
            "speedup_per_round": [round(r, 2) for r in ratios], "identical_answers": same}


def demo() -> dict:
    started = time.perf_counter()
    subprocess.run(["make", "demo-eval"], cwd=ROOT, check=True)
    seconds = time.perf_counter() - started
    print(f"make demo-eval: {seconds:.0f} s wall")
    return {"make_demo_eval_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="default", help="a Hugging Face model folder (default: embedded)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median ratio is reported")
    parser.add_argument("--gpu", action="store_true", help="run on CUDA in bf16")
    parser.add_argument("--demo", action="store_true", help="also time make demo-eval")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    figures = {"decoding": decoding(args)}
    if args.demo:
        figures.update(demo())
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
