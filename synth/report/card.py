"""The dataset card: README.md in the Hugging Face dataset-card layout (YAML header, then sections)."""

from __future__ import annotations

import json
from typing import Any

from .tables import Link, Table, fmt, sections as extra_sections


def _size_category(count: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if count < limit:
            return name
    return "n>1M"


def _table(rows: list[tuple[str, Any]], head: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


_MARKDOWN = str.maketrans({"\\": "\\\\", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]", "|": "\\|",
                           "<": "&lt;", ">": "&gt;", "&": "&amp;"})
CELL = 160                   # characters of untrusted text in a card's table cell


def cell(value: Any, limit: int = CELL) -> str:
    """A table cell of untrusted text: one line, cut short, its Markdown and HTML made inert."""
    if isinstance(value, Link):
        return f"[{cell(value.text)}](<{value.href.replace('>', '%3E').replace(chr(10), ' ')}>)"
    text = " ".join(fmt(value).split())
    text = text if len(text) <= limit else text[:limit].rstrip() + " …"
    return text.translate(_MARKDOWN)


def markdown_table(table: Table) -> str:
    lines = [f"### {table.title}", "", "| " + " | ".join(cell(h) for h in table.head) + " |",
             "|" + "---|" * len(table.head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.rows]
    return "\n".join(lines + ([f"\n{cell(table.note, 1000)}"] if table.note else []))


def dataset_card(numbers: dict[str, Any], name: str) -> str:
    counts, usage, diversity = numbers["counts"], numbers["usage"], numbers["diversity"]
    config = numbers["config"]
    coverage = diversity.get("cluster_coverage") or {}
    header = "\n".join([
        "---", "language:", "- en", "task_categories:", "- text-generation", "tags:", "- synthetic",
        "- instruction-tuning", "- self-instruct", "- orca", "size_categories:", f"- {_size_category(counts['records'])}",
        "---",
    ])
    rejected = [(f"rejected: {k}", v) for k, v in sorted(counts["rejected"].items())]
    failed = [(f"failed: {k}", v) for k, v in sorted(counts["failed"].items())]
    distinct = numbers["distinct"]
    sections = [
        header,
        f"# {name}",
        "Instruction-tuning data made by synth: new tasks bootstrapped from seed tasks "
        "the Self-Instruct way, filtered, gated for novelty, and answered by a teacher model under Orca-style system "
        "messages that ask for explanations. Every record keeps its provenance (teacher, usage, cost, prompt examples, "
        "novelty verdict).",
        "## Dataset summary",
        _table([("records", counts["records"]), ("distinct tasks", counts["tasks_in_records"]),
                ("tasks accepted by the gate", counts["tasks_accepted"]),
                ("acceptance rate (accepted / proposed tasks)", fmt(numbers["acceptance"]["overall"])),
                ("teacher(s)", ", ".join(f"{k} ({v})" for k, v in numbers["teachers"].items()) or "n/a"),
                ("run status", numbers.get("manifest_status") or "n/a")], ("", "value")),
        "## Kept and rejected",
        _table([("kept: records", counts["records"])] + rejected + failed, ("outcome", "count")),
        "## Novelty gate",
        f"A task was rejected when its cosine similarity to the pool reached {numbers['novelty']['threshold']} "
        f"(embedder `{config.get('embedder', 'n/a')}`). Accepted tasks were decided by: "
        + (", ".join(f"{k} ({v})" for k, v in numbers["novelty"]["decided_by"].items()) or "n/a") + ".",
        "## Diversity",
        _table([
            ("instruction distinct-1 / 2 / 3", " / ".join(fmt(distinct["instruction"][f"distinct_{n}"]) for n in (1, 2, 3))),
            ("response distinct-1 / 2 / 3", " / ".join(fmt(distinct["response"][f"distinct_{n}"]) for n in (1, 2, 3))),
            ("mean pairwise cosine distance of tasks", fmt(diversity["mean_pairwise_cosine_distance"])),
            (f"Vendi score (sample of {diversity['sample_size']}, seed {diversity['sample_seed']})", fmt(diversity["vendi_score"])),
            ("embedding clusters occupied by tasks", f"{coverage.get('occupied', 'n/a')} of {coverage.get('clusters', 'n/a')}"
             f" (evenness {fmt(coverage.get('evenness'))})"),
        ], ("measure", "value")),
        "## Lengths (words)",
        _table([(k, f"mean {fmt(v['mean'])}, median {fmt(v['median'])}, max {fmt(v['max'])}")
                for k, v in numbers["lengths_words"].items()], ("field", "length")),
        "## System messages and task kinds",
        _table([(k, f"{v:.1%}") for k, v in numbers["shares"]["system_message"].items()], ("system message", "share")),
        _table([(k, f"{v:.1%}") for k, v in numbers["shares"]["task_kind"].items()], ("task kind", "share")),
        "## Cost",
        _table([("tokens per record (answer call)", fmt(usage["tokens_per_record"])),
                ("cost per record (answer call, USD)", fmt(usage["cost_usd_per_record"])),
                ("all tokens of the run per record", fmt(usage["run_tokens_per_record"])),
                ("run cost (USD)", fmt(usage["run_cost_usd"]))], ("", "value")),
        *(f"## {title}\n\n" + "\n\n".join(markdown_table(t) for t in tables) for title, tables in extra_sections(numbers)),
        "## Configuration",
        "```json\n" + json.dumps(config, indent=2) + "\n```",
        "## Limitations",
        "The data is machine-written. Its quality is bounded by the teacher; the novelty gate removes near-duplicate "
        "tasks but does not check that answers are correct. Review a sample before training on it.",
    ]
    return "\n\n".join(sections) + "\n"
