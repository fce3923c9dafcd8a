"""Checkpoints: adapter, optimizer, scheduler, RNG states and data position, written atomically.

A checkpoint is built in a hidden temporary folder and renamed into place, so `checkpoints/step-N` either
exists whole or not at all; a kill mid-write leaves the previous one untouched.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINTS = "checkpoints"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def checkpoint_path(out: Path, step: int) -> Path:
    return Path(out) / CHECKPOINTS / f"step-{step:08d}"


def staging_path(out: Path, step: int) -> Path:
    return Path(out) / CHECKPOINTS / f".tmp-step-{step:08d}"


def begin(out: Path, step: int) -> Path:
    """A fresh staging folder for the checkpoint of `step` (called by the main process only)."""
    tmp = staging_path(out, step)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def write_rank_rng(tmp: Path, rank: int) -> None:
    """Every process saves its own RNG state (dropout draws differ per process)."""
    torch.save(rng_state(), tmp / f"rng-{rank}.pt")


def finish(out: Path, step: int, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any], keep: int) -> Path:
    """Write the rest into the staging folder, rename it into place and drop checkpoints beyond `keep`."""
    tmp = staging_path(out, step)
    model.save_pretrained(tmp / "adapter")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "trainer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    _fsync_tree(tmp)
    final = checkpoint_path(out, step)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(out: Path) -> list[Path]:
    folder = Path(out) / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-"))


def latest(out: Path) -> Path | None:
    found = list_checkpoints(out)
    return found[-1] if found else None


def load(folder: Path, model: Any, optimizer: Any, scheduler: Any, rank: int) -> dict[str, Any]:
    """Restore adapter weights, optimizer, scheduler and this process's RNG; returns the saved state."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
    set_peft_model_state_dict(model, weights)
    trainer = torch.load(folder / "trainer.pt", weights_only=False)
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    rng_file = folder / f"rng-{rank}.pt"
    set_rng_state(torch.load(rng_file if rng_file.exists() else folder / "rng-0.pt", weights_only=False))
    return json.loads((folder / "state.json").read_text(encoding="utf-8"))
