"""Checkpoints: adapter, optimizer, scheduler, RNG states and data position, written atomically, with no pickles.

A checkpoint is built in a hidden temporary folder and renamed into place, so `checkpoints/step-N` either
exists whole or not at all; a kill mid-write leaves the previous one untouched. Tensors go to safetensors and
everything else to JSON, so loading a checkpoint never unpickles anything. `files.json`, written last, holds the
sha256 of every file: a checkpoint whose files are missing or changed is skipped on resume, and the newest
complete one before it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

CHECKPOINTS = "checkpoints"
FILES = "files.json"


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's RNG states, split into tensors (for safetensors) and plain values (for JSON)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64))}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda_{i}"] = state
    plain = {"python": [version, list(internal), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)]}
    return tensors, plain


def set_rng_state(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> None:
    version, internal, gauss = plain["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda_{i}"] for i in range(torch.cuda.device_count()) if f"cuda_{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _seal(folder: Path) -> None:
    """fsync every file, then write files.json (their sha256) last: a checkpoint without it is incomplete."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            files[path.relative_to(folder).as_posix()] = _sha256(path)
    with open(folder / FILES, "w", encoding="utf-8") as fh:
        json.dump(files, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())


def is_complete(folder: Path) -> bool:
    """True when every file the checkpoint listed is there with the same sha256."""
    try:
        files = json.loads((folder / FILES).read_text(encoding="utf-8"))
        return bool(files) and all(_sha256(folder / name) == digest for name, digest in files.items())
    except (OSError, ValueError):
        return False


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
    from safetensors.torch import save_file

    tensors, plain = rng_state()
    save_file(tensors, str(tmp / f"rng-{rank}.safetensors"))
    (tmp / f"rng-{rank}.json").write_text(json.dumps(plain), encoding="utf-8")


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state_dict as named tensors plus a JSON skeleton that points at them."""
    tensors: dict[str, torch.Tensor] = {}
    per_param: dict[str, dict[str, Any]] = {}
    for param_id, values in state["state"].items():
        entry = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                name = f"{param_id}.{key}"
                tensors[name] = value.detach().contiguous().cpu()
                entry[key] = {"tensor": name}
            else:
                entry[key] = value
        per_param[str(param_id)] = entry
    return tensors, {"state": per_param, "param_groups": state["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], skeleton: dict[str, Any]) -> dict[str, Any]:
    state = {int(pid): {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
                        for k, v in values.items()} for pid, values in skeleton["state"].items()}
    return {"state": state, "param_groups": skeleton["param_groups"]}


def finish(out: Path, step: int, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any], keep: int) -> Path:
    """Write the rest into the staging folder, rename it into place and drop checkpoints beyond `keep`."""
    from safetensors.torch import save_file

    tmp = staging_path(out, step)
    model.save_pretrained(tmp / "adapter", safe_serialization=True)
    tensors, skeleton = _flatten_optimizer(optimizer.state_dict())
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "trainer.json").write_text(json.dumps({"optimizer": skeleton, "scheduler": scheduler.state_dict()}),
                                      encoding="utf-8")
    (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    _seal(tmp)
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


def latest_complete(out: Path, skipped: Callable[[Path], None] | None = None) -> Path | None:
    """The newest checkpoint whose files all match their recorded sha256; `skipped` hears of each damaged one."""
    for folder in reversed(list_checkpoints(out)):
        if is_complete(folder):
            return folder
        if skipped is not None:
            skipped(folder)
    return None


def load(folder: Path, model: Any, optimizer: Any, scheduler: Any, rank: int) -> dict[str, Any]:
    """Restore adapter weights, optimizer, scheduler and this process's RNG; returns the saved state."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(folder / "adapter" / "adapter_model.safetensors")))
    trainer = json.loads((folder / "trainer.json").read_text(encoding="utf-8"))
    optimizer.load_state_dict(_unflatten_optimizer(load_file(str(folder / "optimizer.safetensors")),
                                                   trainer["optimizer"]))
    scheduler.load_state_dict(trainer["scheduler"])
    name = f"rng-{rank}" if (folder / f"rng-{rank}.json").exists() else "rng-0"
    set_rng_state(load_file(str(folder / f"{name}.safetensors")),
                  json.loads((folder / f"{name}.json").read_text(encoding="utf-8")))
    return json.loads((folder / "state.json").read_text(encoding="utf-8"))
