"""`synth.train(...)`: the library call behind `synth train`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, RunFolderError
from ..files import FolderSwap, refuse_overlap
from .config import CONFIG_FILE, TrainConfig
from .loop import Trainer, TrainResult

# settings that may change on --resume without breaking the exact replay of the data order
RESUMABLE = {"epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "samples",
             "sample_max_tokens", "merge", "lr", "max_grad_norm"}
# of those, the ones that change the losses from the resumed step on: logged, so the change is on record
CHANGES_THE_RUN = {"lr", "max_grad_norm"}
# what a train output folder may hold; anything else is the user's, and the folder is not replaced
OWN_ENTRIES = {CONFIG_FILE, "provenance.json", "summary.json", "metrics.jsonl", "samples.jsonl", "loss.png",
               "adapter", "merged", "checkpoints", "run.lock", "evals"}


def train(config: TrainConfig | dict[str, Any] | None = None, *, resume: str | Path | None = None,
          overwrite: bool = False, log: Callable[[str], None] | None = None,
          on_step: Callable[[dict[str, Any]], None] | None = None, **overrides: Any) -> TrainResult:
    """Fine-tune a LoRA adapter on a synth run or any dataset; returns where everything was written.

    `synth.train(data="runs/general", out="students/general")`, or `synth.train(resume="students/general")`.
    An existing output folder is replaced only with `overwrite`, only if synth wrote it, and only once the new run
    has taken its first step: until then it is moved aside, and put back if the new run fails to start.
    """
    if resume is not None:
        config = _resumed(resume, config, overrides, log)
        return Trainer(config, resume=True, log=log, on_step=on_step).run()
    config = TrainConfig.resolve(base=config, flags=overrides)
    out = Path(config.out)
    refuse_overlap(out, Path(config.data))
    swap = None
    if out.exists() and any(out.iterdir()):
        if not (out / CONFIG_FILE).exists():
            raise RunFolderError(f"{out} is not empty and is not a synth train output folder; pick another --out")
        if not overwrite:
            raise RunFolderError(f"{out} already holds a training run; pass --resume to continue it "
                                 "or --overwrite to start again")
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN_ENTRIES)
        if foreign:
            raise RunFolderError(f"{out} holds {', '.join(foreign[:5])}, which synth did not write; refusing to "
                                 "replace it: pick another --out")
        swap = FolderSwap(out)
    trainer = Trainer(config, resume=False, log=log, on_step=on_step, replacing=swap)
    return trainer.run()


def _resumed(resume: str | Path, config, overrides: dict[str, Any], log) -> TrainConfig:
    saved = TrainConfig.load(resume)
    given = config.changed() if isinstance(config, TrainConfig) else dict(config or {})
    requested = {**given, **overrides}
    changed = sorted(k for k, v in requested.items() if k != "out" and v != getattr(saved, k, v))
    frozen = [k for k in changed if k not in RESUMABLE]
    if frozen:
        raise ConfigError(f"cannot change {', '.join(frozen)} on --resume (the data order and split depend on them); "
                          f"only {', '.join(sorted(RESUMABLE))} may change")
    resumed = TrainConfig.resolve(base=saved, flags={**requested, "out": str(resume)})
    for key in sorted(CHANGES_THE_RUN & set(changed)):
        if log:
            log(f"resume: {key} changes from {getattr(saved, key)} to {getattr(resumed, key)} from the next step on")
    return resumed

