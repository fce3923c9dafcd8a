"""Metrics as JSONL (one object per logged step or evaluation) and a PNG of the loss curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import JsonlAppender, read_complete_lines, to_json, write_text_atomic

METRICS = "metrics.jsonl"
PLOT = "loss.png"


def open_log(out: Path, keep_until_step: int | None) -> JsonlAppender:
    """The metrics log; on resume the lines logged after the restored checkpoint are dropped (they are redone)."""
    path = Path(out) / METRICS
    if keep_until_step is not None and path.exists():
        kept = [row for row in read_complete_lines(path) if row.get("step", 0) <= keep_until_step]
        write_text_atomic(path, "".join(to_json(row).decode("utf-8") + "\n" for row in kept))
    elif keep_until_step is None and path.exists():
        path.unlink()
    return JsonlAppender(path)


def read(out: Path) -> list[dict[str, Any]]:
    return list(read_complete_lines(Path(out) / METRICS))


def plot(out: Path) -> Path | None:
    """loss.png from metrics.jsonl: train loss per step, eval loss as points. None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = read(out)
    train = [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train"]
    evals = [(r["step"], r["eval_loss"]) for r in rows if r.get("kind") == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), label="train loss")
    if evals:
        ax.plot(*zip(*evals), "o--", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per trained token")
    ax.legend()
    fig.tight_layout()
    path = Path(out) / PLOT
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
