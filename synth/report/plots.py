"""The report's plots as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _bars(ax, histogram: dict[str, list[float]], label: str, color: str, bottom=None) -> None:
    edges = histogram["edges"]
    widths = [b - a for a, b in zip(edges, edges[1:])]
    ax.bar(edges[:-1], histogram["counts"], width=widths, align="edge", label=label, color=color,
           edgecolor="white", bottom=bottom)


def nn_similarity(numbers: dict[str, Any]) -> bytes:
    novelty = numbers["novelty"]
    figure, ax = plt.subplots(figsize=(7, 3.4))
    _bars(ax, novelty["accepted_scores"], "accepted", "#4c8bf5")
    _bars(ax, novelty["rejected_scores"], "rejected as near-duplicate", "#e8710a",
          bottom=novelty["accepted_scores"]["counts"])
    ax.axvline(novelty["threshold"], color="black", linestyle="--", label=f"threshold {novelty['threshold']}")
    ax.set_xlabel("cosine similarity to the nearest pool task")
    ax.set_ylabel("candidate tasks")
    ax.set_title("Nearest-neighbour similarity at the novelty gate")
    ax.legend(fontsize=8)
    return _png(figure)


def lengths(numbers: dict[str, Any]) -> bytes:
    figure, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, (name, color) in zip(axes, (("instruction", "#34a853"), ("response", "#a142f4"))):
        _bars(ax, numbers["lengths_words"][name]["histogram"], name, color)
        ax.set_xlabel("words")
        ax.set_title(f"{name} length")
    axes[0].set_ylabel("records")
    return _png(figure)


def acceptance(numbers: dict[str, Any]) -> bytes:
    data = numbers["acceptance"]
    figure, ax = plt.subplots(figsize=(7, 3))
    ax.plot(data["bootstrap_prompts"], data["rolling_rate"], color="#4c8bf5")
    ax.set_ylim(0, 1)
    ax.set_xlabel("bootstrap prompt")
    ax.set_ylabel(f"accepted / proposed\n(rolling {data['window']})")
    ax.set_title("Acceptance rate over the run")
    return _png(figure)


def shares(numbers: dict[str, Any], key: str, title: str) -> bytes:
    items = list(numbers["shares"][key].items())[::-1]
    figure, ax = plt.subplots(figsize=(7, 0.6 + 0.28 * max(len(items), 3)))   # lower, tight_layout gives up
    ax.barh([k for k, _ in items], [v for _, v in items], color="#4c8bf5")
    if not items:
        ax.text(0.5, 0.5, "no records", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("share of records")
    ax.set_title(title)
    return _png(figure)


def reasons(numbers: dict[str, Any]) -> bytes:
    counts = numbers["counts"]
    items = [("kept: records", counts["records"])]
    items += [(f"rejected: {k}", v) for k, v in sorted(counts["rejected"].items())]
    items += [(f"failed: {k}", v) for k, v in sorted(counts["failed"].items())]
    items = items[::-1]
    figure, ax = plt.subplots(figsize=(7, 0.6 + 0.3 * len(items)))
    ax.barh([k for k, _ in items], [v for _, v in items], color=["#e8710a" if not k.startswith("kept") else "#34a853"
                                                                 for k, _ in items])
    ax.set_title("Kept and rejected, by reason")
    return _png(figure)


def judge_scores(numbers: dict[str, Any]) -> bytes:
    rubrics = numbers["quality"]["judge"]["rubrics"]
    figure, axes = plt.subplots(1, len(rubrics), figsize=(4 * len(rubrics) + 0.5, 3.2), squeeze=False)
    for ax, (name, rubric), color in zip(axes[0], rubrics.items(), ("#4c8bf5", "#a142f4")):
        scores = list(rubric["histogram"])
        ax.bar(scores, [rubric["histogram"][s] for s in scores], color=color)
        ax.set_xlabel(f"{name} score ({rubric['scale'][0]}-{rubric['scale'][1]})")
        ax.set_title(f"{name}: mean {rubric['mean']}, {rubric['scored']} judged")
    axes[0][0].set_ylabel("records")
    return _png(figure)


def evol_rounds(numbers: dict[str, Any]) -> bytes:
    rounds = numbers["methods"]["evol"]["rounds"]
    x = [r["round"] for r in rounds]
    figure, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(x, [r["instruction_words"] for r in rounds], marker="o", color="#34a853", label="instruction words")
    ax.set_xlabel("Evol-Instruct round (0 = seeds)")
    ax.set_ylabel("words")
    ax.set_xticks(x)
    judged = [(r["round"], r["judge_complexity"]) for r in rounds if r["judge_complexity"] is not None]
    _right_axis(ax, "markers / score", [(x, [r["constraints"] for r in rounds], "constraint markers", "#e8710a"),
                                        (*zip(*judged), "judge complexity (1-6)", "#a142f4") if judged else None])
    ax.set_title("Complexity per round")
    return _png(figure)


def _right_axis(ax, label: str, lines: list) -> None:
    """Lines (x, y, label, colour) on a second y axis from 0, and one legend for both axes."""
    right = ax.twinx()
    for x, y, name, color in filter(None, lines):
        right.plot(x, y, marker="." if len(x) < 30 else None, color=color, linewidth=0.9, label=name)
    right.set_ylabel(label)
    right.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left")


def concurrency(numbers: dict[str, Any]) -> bytes:
    data = numbers["operations"]["concurrency"]
    figure, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(data["seconds"], data["limit"], color="#4c8bf5", label="concurrency limit")
    ax.plot(data["seconds"], data["in_flight"], color="#9aa0a6", linewidth=0.8, label="in flight")
    ax.set_xlabel("seconds since the session started")
    ax.set_ylabel("requests")
    points = [(t, r) for t, r in zip(data["seconds"], data["throughput"]) if r is not None]
    _right_axis(ax, "replies per second", [(*zip(*points), "throughput", "#e8710a") if points else None])
    ax.set_title("--concurrency auto: limit and throughput over time")
    return _png(figure)


def render_all(numbers: dict[str, Any]) -> dict[str, bytes]:
    plots = {
        "outcomes": reasons(numbers),
        "acceptance": acceptance(numbers),
        "nn_similarity": nn_similarity(numbers),
        "lengths": lengths(numbers),
        "system_messages": shares(numbers, "system_message", "System messages"),
        "task_kinds": shares(numbers, "task_kind", "Task kinds"),
    }
    if (numbers["quality"]["judge"] or {}).get("rubrics"):
        plots["judge_scores"] = judge_scores(numbers)
    if numbers["methods"]["evol"]:
        plots["evol_rounds"] = evol_rounds(numbers)
    if numbers["operations"]["concurrency"] and numbers["operations"]["concurrency"]["samples"]:
        plots["concurrency"] = concurrency(numbers)
    return plots
