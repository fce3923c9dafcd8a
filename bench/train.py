"""Throughput of `synth train` against TRL's SFTTrainer on the same data, model and LoRA config, in one process.

    python bench/train.py                          # CPU: the embedded SmolLM2-135M student on runs/demo
    python bench/train.py --gpu                    # GPU: also a ~1B Llama built from a config (random weights), MFU

Arms: synth (packed rows, no cross-attention), TRL SFTTrainer + PEFT with its defaults (padded batches), and
TRL with packing on (BFD). Every figure counts non-padding tokens only and is reported only when that arm passed
the gate: its loss on a fixed probe set (the first examples of the data, assistant tokens only, scored the same
way for every arm) fell from the base model's, and its gradient norm was never zero. Prints a Markdown table
and writes bench/train_results.json. TRL lives in .bench-synth-venv (make bench-synth-env), never in synth's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from synth.training import TrainConfig, Trainer  # noqa: E402
from synth.training.data import load_conversations  # noqa: E402
from synth.training.evaluate import token_loss_sums  # noqa: E402
from synth.training.masking import encode_dataset, stop_token_ids  # noqa: E402
from synth.training.packing import collate, epoch_batches  # noqa: E402
from synth.training.student import default_student  # noqa: E402

PROBE_EXAMPLES = 8

PEAK_BF16 = {"H100": 989e12, "H200": 989e12}          # dense bf16 FLOP/s, SXM parts


class Probe:
    """A fixed set of examples whose assistant-token loss is measured the same way before and after every arm."""

    def __init__(self, student: Path, data: Path, max_len: int):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(student))
        base = AutoModelForCausalLM.from_pretrained(str(student), dtype=torch.float32, attn_implementation="sdpa")
        conversations = load_conversations(str(data))[:PROBE_EXAMPLES]
        stops = stop_token_ids(tokenizer, base.generation_config.eos_token_id)
        examples, _ = encode_dataset(conversations, tokenizer, stops, max_len, "truncate")
        self.batches = [collate(examples, [[i]], tokenizer.pad_token_id or 0) for i in range(len(examples))]
        self.before = self.loss(base.to(self.device()))
        del base

    @staticmethod
    def device() -> torch.device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def loss(self, model) -> float:
        def autocast():
            return torch.autocast("cuda", dtype=torch.bfloat16) if torch.cuda.is_available() else contextlib.nullcontext()
        total, count = token_loss_sums(model, self.batches, self.device(), autocast)
        return total / count


def build_llama_1b(folder: Path) -> Path:
    """A Llama-3.2-1B-shaped model with random weights and the SmolLM2 tokenizer (vocab 49152): ~1.07B params."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(default_student()))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def data_file(source: str, repeat: int, folder: Path) -> Path:
    """The source's conversations as openai-chat JSONL, repeated so long runs do not run out of data."""
    rows = [{"messages": c.messages} for c in load_conversations(source)] * repeat
    path = folder / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_synth(student: Path, data: Path, args, out: Path, probe: Probe) -> dict:
    config = TrainConfig(data=str(data), out=str(out), student=str(student), max_steps=args.steps,
                         batch_size=args.rows, max_len=args.max_len, eval_fraction=0.0, samples=0,
                         checkpoint_every=10 ** 9, warmup_ratio=0.0, lr=args.lr, grad_checkpointing=args.grad_checkpointing)
    trainer = Trainer(config, log=lambda m: None).setup()
    batches = epoch_batches(trainer.lengths, args.max_len, args.rows, 1, 0, 0)
    cells = real = n_rows = 0
    for rows in batches:
        batch = collate(trainer.train_examples, rows, 0)
        cells += batch["input_ids"].numel()
        real += sum(trainer.lengths[i] for row in rows for i in row)
        n_rows += len(rows)
    trainer.train()
    probe_after = probe.loss(trainer.model)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["kind"] == "train"]
    return {"tokens": trainer.tokens, "seconds": trainer.train_seconds, "losses": [r["loss"] for r in steps],
            "grad_norms": [r["grad_norm"] for r in steps], "real_token_share": real / cells, "probe_after": probe_after,
            "row_fill": real / (n_rows * args.max_len),
            "lengths": trainer.lengths, "trainable": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
            "params": sum(p.numel() for p in trainer.model.parameters())}


def run_trl(student: Path, data: Path, args, packing: bool, out: Path, probe: Probe) -> dict:
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    gpu = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(str(student))
    model = AutoModelForCausalLM.from_pretrained(str(student), dtype=torch.bfloat16 if gpu else torch.float32,
                                                 attn_implementation="sdpa")
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    # TRL's defaults apart from what must match synth's arm: steps, batch, length, lr, schedule, precision
    batch = args.rows if packing else args.trl_batch        # a packed TRL row is the same unit as a synth row
    config = SFTConfig(output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=batch,
                       max_length=args.max_len, learning_rate=args.lr, lr_scheduler_type="cosine", warmup_steps=0,
                       logging_steps=1, save_strategy="no", report_to=[], bf16=gpu, packing=packing,
                       gradient_checkpointing=args.grad_checkpointing, dataloader_num_workers=0,
                       disable_tqdm=True, seed=0)
    dataset = load_dataset("json", data_files=str(data), split="train")
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return {"tokens": int(trainer._total_train_tokens), "seconds": seconds, "losses": [h["loss"] for h in logs],
            "grad_norms": [h.get("grad_norm", 0.0) for h in logs], "probe_after": probe.loss(trainer.model)}


def mfu(result: dict, params: int, config, peak: float) -> float:
    """(4 N + attention) FLOPs per trained token x tokens/s over the peak. 4N: forward 2N + activation grads 2N
    (LoRA leaves base weights without grads). Attention: 12 x layers x width x the mean causal context."""
    lengths = result["lengths"]
    mean_ctx = sum(n * (n + 1) / 2 for n in lengths) / sum(lengths)
    per_token = 4 * params + 12 * config.num_hidden_layers * config.hidden_size * mean_ctx
    return per_token * result["tokens"] / result["seconds"] / peak


def bench(label: str, student: Path, data: Path, args, work: Path) -> list[dict]:
    rows = []
    probe = Probe(student, data, args.max_len)
    arms = [("synth train", lambda o: run_synth(student, data, args, o, probe)),
            ("TRL SFTTrainer (defaults, padded)", lambda o: run_trl(student, data, args, False, o, probe))]
    if not args.no_trl_packing:
        arms.append(("TRL SFTTrainer (packing=True)", lambda o: run_trl(student, data, args, True, o, probe)))
    for name, fn in arms:
        print(f"[{label}] {name} ...", file=sys.stderr, flush=True)
        try:
            result = fn(work / f"{label}-{len(rows)}")
        except Exception as exc:  # an arm that does not run is reported, not fatal
            rows.append({"model": label, "arm": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        ok = result["probe_after"] < probe.before and all(g > 0 for g in result["grad_norms"])
        row = {"model": label, "arm": name, "tokens": result["tokens"], "seconds": round(result["seconds"], 2),
               "tokens_per_s": round(result["tokens"] / result["seconds"], 1) if ok else None, "gate_ok": ok,
               "loss_first": round(result["losses"][0], 4), "loss_last": round(result["losses"][-1], 4),
               "probe_before": round(probe.before, 4), "probe_after": round(result["probe_after"], 4),
               "grad_norm_min": round(min(result["grad_norms"]), 4)}
        if "real_token_share" in result:
            row["real_token_share"] = round(result["real_token_share"], 4)
            row["row_fill"] = round(result["row_fill"], 4)
            if torch.cuda.is_available():
                from transformers import AutoConfig

                name_gpu = torch.cuda.get_device_name()
                peak = next((v for k, v in PEAK_BF16.items() if k in name_gpu), None)
                if peak and ok:
                    row["mfu"] = round(mfu(result, result["params"], AutoConfig.from_pretrained(str(student)), peak), 4)
        rows.append(row)
    base = rows[0].get("tokens_per_s")
    for row in rows[1:]:
        if base and row.get("tokens_per_s"):
            row["synth_speedup"] = round(base / row["tokens_per_s"], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "runs" / "demo"), help="a synth run folder or exported dataset")
    parser.add_argument("--gpu", action="store_true", help="also run the ~1B Llama (needs a CUDA GPU)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per arm (CPU 12, GPU 30)")
    parser.add_argument("--max-len", type=int, default=None, help="tokens per row (CPU 1024, GPU 4096)")
    parser.add_argument("--rows", type=int, default=None, help="synth: packed rows per step (CPU 1, GPU 8)")
    parser.add_argument("--trl-batch", type=int, default=None, help="TRL: examples per step (CPU 3, GPU 64)")
    parser.add_argument("--repeat", type=int, default=None, help="repeat the data this many times (CPU 1, GPU 200)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (CPU 1e-3 so 12 steps move the loss, GPU 2e-4)")
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--no-trl-packing", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "train_results.json"))
    args = parser.parse_args()
    gpu = args.gpu and torch.cuda.is_available()
    if args.gpu and not gpu:
        sys.exit("--gpu needs a CUDA GPU")
    for key, cpu_value, gpu_value in [("steps", 12, 30), ("lr", 1e-3, 2e-4), ("max_len", 1024, 4096), ("rows", 1, 8),
                                      ("trl_batch", 3, 64), ("repeat", 1, 200)]:
        if getattr(args, key) is None:
            setattr(args, key, gpu_value if gpu else cpu_value)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = data_file(args.data, args.repeat, work)
        results += bench("SmolLM2-135M", default_student(), data, args, work)
        if gpu:
            results += bench("Llama-1B (random)", build_llama_1b(work / "llama-1b"), data, args, work)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    report = {"device": device, "torch": torch.__version__, "args": vars(args), "results": results,
              "load_average_after": os.getloadavg()}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"device: {device}; load average after: {os.getloadavg()}\n")
    print("| model | arm | tokens/s (non-padding) | synth speed-up | real-token share | MFU | probe loss before -> after | gate |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['model']} | {r['arm']} | did not run: {r['error']} | | | | | |")
            continue
        print(f"| {r['model']} | {r['arm']} | {r['tokens_per_s']} | {r.get('synth_speedup', '')} | "
              f"{r.get('real_token_share', '')} | {r.get('mfu', '')} | {r['probe_before']} -> {r['probe_after']} | "
              f"{'ok' if r['gate_ok'] else 'FAILED'} |")


if __name__ == "__main__":
    main()
