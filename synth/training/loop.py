"""The training recipe in one readable class: setup(), train(), save().

One optimizer step takes `batch_size` packed rows x `grad_accum` micro-batches on each of the `world` processes.
The loss of a step is the mean over every trained token in it, across all processes, so a run on two processes
matches a run on one with twice the accumulation.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import InputFileError, RunFolderError
from ..files import FolderLock, FolderSwap
from . import checkpoint, dist, metrics
from .config import TrainConfig
from .data import erase_prompts, fingerprint, load_conversations, split
from .errors import DivergedError, TrainMemoryError
from .evaluate import token_loss_sums
from .masking import IGNORE, encode_dataset, stop_token_ids
from .packing import collate, epoch_batches, real_tokens
from .attention import NAME as PACKED
from .student import add_lora, apply_liger, load_model, load_tokenizer, pick_runtime, resolve_student


@dataclass
class TrainResult:
    out: Path
    steps: int
    train_loss: float | None
    eval_loss_before: float | None
    eval_loss_after: float | None
    tokens_per_s: float
    adapter: Path
    merged: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Trainer:
    def __init__(self, config: TrainConfig, resume: bool = False, log: Callable[[str], None] | None = None,
                 on_step: Callable[[dict[str, Any]], None] | None = None, replacing: FolderSwap | None = None):
        self.config = config.validate()
        self.resume = resume
        self.replacing = replacing       # an old output folder, moved aside until the first step is taken
        self.lock = FolderLock(Path(config.out))
        self.out = Path(config.out)
        self._log = log or _stderr
        self.on_step = on_step

    def log(self, message: str) -> None:
        if self.world.main:
            self._log(message)

    def _selection(self) -> dict:
        c = self.config
        if not c.select:
            return {}
        return {"selection": {"budget": c.select, "strategy": c.select_strategy, "scores": c.select_scores,
                              "kept": len(self.train_convs) + len(self.eval_convs)}}

    # ---------------------------------------------------------------- setup
    def setup(self) -> "Trainer":
        c = self.config
        self.world = dist.init()
        self.runtime = pick_runtime(c, self.world.local_rank)
        random.seed(c.seed)
        np.random.seed(c.seed)
        torch.manual_seed(c.seed)
        conversations = load_conversations(c.data, select=c.select, strategy=c.select_strategy, scores=c.select_scores)
        if c.erase_prompt:
            conversations = erase_prompts(conversations, c.generic_system)
        self.train_convs, self.eval_convs = split(conversations, c.eval_fraction, c.eval_max, c.seed)
        self.provenance = {"data": fingerprint(c.data), **self._selection(),
                           "train_ids": [x.id for x in self.train_convs], "eval_ids": [x.id for x in self.eval_convs]}
        self._refuse_existing_out()
        if self.world.main:
            self.student_folder = resolve_student(c.student)   # builds the default student's cache once
        self.world.barrier()
        self.student_folder = resolve_student(c.student)
        self.tokenizer = load_tokenizer(self.student_folder)
        model = load_model(self.student_folder, self.runtime)
        self.stop_ids = stop_token_ids(self.tokenizer, getattr(model.generation_config, "eos_token_id", None))
        self.train_examples, self.counts = encode_dataset(self.train_convs, self.tokenizer, self.stop_ids,
                                                          c.max_len, c.overlong)
        self.eval_examples, eval_counts = encode_dataset(self.eval_convs, self.tokenizer, self.stop_ids,
                                                         c.max_len, c.overlong)
        self.counts.update({f"eval_{k}": v for k, v in eval_counts.items()})
        if not self.train_examples:
            raise InputFileError(c.data, f"no training example fits in --max-len {c.max_len}; raise it "
                                         "or use --overlong truncate")
        self.log(f"data: {len(self.train_examples)} train / {len(self.eval_examples)} eval examples; "
                 f"{self.counts['truncated'] + self.counts['eval_truncated']} truncated, "
                 f"{self.counts['dropped'] + self.counts['eval_dropped']} dropped (longer than {c.max_len} tokens)")
        self.liger = apply_liger(model, c)
        self.model = add_lora(model, c, self.runtime)
        self._prepare_out()          # only now: a bad student, template or setting leaves no half-made folder behind
        self.ddp_model = self.model
        if self.world.distributed:
            ids = [self.world.local_rank] if self.runtime.device.type == "cuda" else None
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self._schedule()
        self._restore()
        return self

    def _refuse_existing_out(self) -> None:
        if not self.resume and self.replacing is None and (self.out / "train_config.json").exists():
            raise RunFolderError(f"{self.out} already holds a training run; pass --resume to continue it "
                                 "or --overwrite to start again")

    def _prepare_out(self) -> None:
        if self.world.main:
            if self.replacing is not None:
                self.replacing.begin()
            self.out.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
            self.config.save(self.out)
        self.world.barrier()

    def _schedule(self) -> None:
        from transformers import get_scheduler

        c = self.config
        self.per_step = self.world.size * c.grad_accum
        self.lengths = [len(e.input_ids) for e in self.train_examples]
        self.steps_per_epoch = len(self._batches(0)) // self.per_step
        self.total_steps = c.max_steps or self.steps_per_epoch * c.epochs
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        self.scheduler = get_scheduler(c.scheduler, self.optimizer, num_warmup_steps=math.ceil(c.warmup_ratio *
                                       self.total_steps), num_training_steps=self.total_steps)
        self.log(f"training: {self.total_steps} steps ({self.steps_per_epoch} per epoch) on {self.world.size} "
                 f"process(es), {self.runtime.device.type} {str(self.runtime.dtype).removeprefix('torch.')}, "
                 f"attention {self.runtime.attn}, qlora {self.runtime.qlora}, liger {self.liger}")

    def _batches(self, epoch: int) -> list[list[list[int]]]:
        c = self.config
        if getattr(self, "_epoch_cache", (None,))[0] != epoch:
            self._epoch_cache = (epoch, epoch_batches(self.lengths, c.max_len, c.batch_size, self.per_step,
                                                      c.seed, epoch, c.packing))
        return self._epoch_cache[1]

    def _restore(self) -> None:
        self.step, self.eval_before, self.tokens, self.train_seconds, self.last_loss = 0, None, 0, 0.0, None
        skipped = lambda folder: self.log(f"skipped {folder}: incomplete or damaged, using the one before")  # noqa: E731
        found = checkpoint.latest_complete(self.out, skipped) if self.resume else None
        if found is not None:
            state = checkpoint.load(found, self.model, self.optimizer, self.scheduler, self.world.rank)
            if state["data_sha256"] != self.provenance["data"].get("sha256"):
                raise RunFolderError(f"the data in {self.config.data} changed since {found.name}; an exact resume "
                                     "needs the same data (start a new --out to train on the new data)")
            self.step, self.eval_before, self.tokens = state["step"], state["eval_loss_before"], state["tokens"]
            self.train_seconds, self.last_loss = state["train_seconds"], state["loss"]
            self._apply_lr(self.config.lr)
            self.log(f"resumed from {found} at step {self.step}")
        self.metrics = metrics.open_log(self.out, self.step if found else None) if self.world.main else None

    def _apply_lr(self, lr: float) -> None:
        """A peak learning rate changed on --resume: the schedule keeps its shape, scaled to the new peak."""
        saved = self.scheduler.base_lrs[0]
        if saved == lr:
            return
        self.scheduler.base_lrs = [lr for _ in self.scheduler.base_lrs]
        for group in self.optimizer.param_groups:
            group["lr"] *= lr / saved
            group["initial_lr"] = lr

    # ---------------------------------------------------------------- train
    def train(self) -> "Trainer":
        if self.step == 0 and self.eval_examples:
            self.eval_before = self.evaluate()
            self._record({"kind": "eval", "step": 0, "eval_loss": self.eval_before})
            self.log(f"eval loss before training: {self.eval_before:.4f}")
        while self.step < self.total_steps:
            epoch, index = divmod(self.step, self.steps_per_epoch)
            micro = self._batches(epoch)[index * self.per_step: (index + 1) * self.per_step]
            started = time.perf_counter()
            loss, grad_norm, tokens = self._optimizer_step(micro[self.world.rank:: self.world.size])
            self.train_seconds += time.perf_counter() - started
            self.step, self.tokens, self.last_loss = self.step + 1, self.tokens + tokens, loss
            row = {"kind": "train", "step": self.step, "epoch": epoch, "loss": loss, "grad_norm": grad_norm,
                   "lr": self.scheduler.get_last_lr()[0], "tokens": self.tokens,
                   "tokens_per_s": self.tokens / max(self.train_seconds, 1e-9)}
            if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                self._record(row)
                self.log(f"step {self.step}/{self.total_steps}  loss {loss:.4f}  grad norm {grad_norm:.3f}  "
                         f"{row['tokens_per_s']:.0f} tok/s")
            if self.on_step:
                self.on_step(row)
            if self.replacing is not None and self.world.main:
                self.replacing.commit()          # the new run trains: the student it replaces can go now
            if self.step % self.config.checkpoint_every == 0 or self.step == self.total_steps:
                self.save_checkpoint()
        self.eval_after = self.evaluate() if self.eval_examples else None
        if self.eval_after is not None:
            self._record({"kind": "eval", "step": self.step, "eval_loss": self.eval_after})
            self.log(f"eval loss after training: {self.eval_after:.4f} (before: {self.eval_before:.4f})")
        return self

    def _autocast(self) -> Any:
        if self.runtime.device.type == "cuda" and self.runtime.dtype != torch.float32:
            return torch.autocast("cuda", dtype=self.runtime.dtype)
        return contextlib.nullcontext()

    def _optimizer_step(self, mine: list[list[list[int]]]) -> tuple[float, float, int]:
        """Forward and backward over this process's micro-batches, then one optimizer step."""
        batches = [collate(self.train_examples, rows, self.tokenizer.pad_token_id,
                           flatten=self.runtime.attn.startswith("flash") or self.runtime.attn == PACKED) for rows in mine]
        local_items = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in batches)
        local_tokens = sum(real_tokens(self.train_examples, rows) for rows in mine)
        global_items, global_tokens = self.world.sum(local_items, local_tokens)
        # DDP averages gradients over processes, so each one divides its token-loss sum by items / world size
        divisor = torch.tensor(global_items / self.world.size, device=self.runtime.device)
        total = 0.0
        try:
            for i, batch in enumerate(batches):
                last = i == len(batches) - 1
                sync = contextlib.nullcontext() if last or not self.world.distributed else self.ddp_model.no_sync()
                with sync, self._autocast():
                    batch = {k: v.to(self.runtime.device) for k, v in batch.items()}
                    out = self.ddp_model(**batch, num_items_in_batch=divisor, use_cache=False)
                    out.loss.backward()
                total += float(out.loss.detach()) * float(divisor)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if isinstance(exc, torch.OutOfMemoryError) or "allocate" in str(exc) or "out of memory" in str(exc):
                raise self._memory_error() from None
            raise
        params = [p for p in self.model.parameters() if p.requires_grad]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm))
        loss = self.world.sum(total)[0] / max(global_items, 1)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            kept = checkpoint.latest(self.out)
            raise DivergedError(f"loss became {'nan' if math.isnan(loss) else loss} at step {self.step + 1}; "
                                f"stopped with the last good checkpoint kept ({kept or 'none yet'}); "
                                f"continue with synth train --resume {self.out} --lr {self.config.lr / 10:g} (a lower --lr, or "
                                "--max-grad-norm, may change on --resume)")
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, grad_norm, int(global_tokens)

    def _memory_error(self) -> TrainMemoryError:
        c = self.config
        hint = "" if c.grad_checkpointing else ", or add --grad-checkpointing"
        return TrainMemoryError(f"out of memory on a micro-batch of {c.batch_size} x {c.max_len} tokens: lower "
                                f"--batch-size (now {c.batch_size}) or --max-len (now {c.max_len}){hint}")

    def evaluate(self) -> float:
        c, world = self.config, self.world
        rows = [[i] for i in range(len(self.eval_examples))]
        mine = rows[world.rank:: world.size]
        batches = [collate(self.eval_examples, mine[i: i + c.batch_size], self.tokenizer.pad_token_id)
                   for i in range(0, len(mine), c.batch_size)]
        total, count = token_loss_sums(self.model, batches, self.runtime.device, self._autocast)
        total, count = world.sum(total, count)
        return total / max(count, 1)

    def save_checkpoint(self) -> Path | None:
        state = {"step": self.step, "epoch": self.step // self.steps_per_epoch,
                 "batch_in_epoch": (self.step % self.steps_per_epoch) * self.per_step, "loss": self.last_loss,
                 "eval_loss_before": self.eval_before, "tokens": self.tokens, "train_seconds": self.train_seconds,
                 "data_sha256": self.provenance["data"].get("sha256")}
        if self.world.main:
            checkpoint.begin(self.out, self.step)
        self.world.barrier()
        checkpoint.write_rank_rng(checkpoint.staging_path(self.out, self.step), self.world.rank)
        self.world.barrier()
        path = None
        if self.world.main:
            path = checkpoint.finish(self.out, self.step, self.model, self.optimizer, self.scheduler, state,
                                     self.config.keep_checkpoints)
        self.world.barrier()
        return path

    def _record(self, row: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.append(row)

    # ---------------------------------------------------------------- save
    def save(self) -> TrainResult:
        from .output import write_outputs

        result = write_outputs(self) if self.world.main else None
        self.world.barrier()
        dist.shutdown(self.world)
        return result or TrainResult(self.out, self.step, self.last_loss, self.eval_before, self.eval_after,
                                     0.0, self.out / "adapter")

    def run(self) -> TrainResult:
        try:
            return self.setup().train().save()
        finally:
            self.lock.release()
            if self.replacing is not None and self.world.main:
                self.replacing.rollback()        # a no-op once committed; else the old student comes back whole
