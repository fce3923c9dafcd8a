"""The report's new sections as plain tables (quality, methods, teachers and cost), made once from the numbers and
drawn twice: as Markdown in the dataset card and as HTML in the page. Cells hold untrusted text (instructions,
responses, the judge's reasons); each renderer escapes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PERSONAS_SHOWN = 20


@dataclass
class Table:
    title: str
    head: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    note: str = ""


@dataclass
class Link:
    """A cell that links to a local file (a path relative to the report folder); Markdown and HTML both link it."""
    text: str
    href: str

    def __str__(self) -> str:
        return self.href


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sections(numbers: dict[str, Any]) -> list[tuple[str, list[Table]]]:
    """(section title, its tables), leaving out what the run has no data for."""
    found = [("Quality", quality_tables(numbers["quality"], numbers["counts"]["records"])),
             ("How the tasks were made", method_tables(numbers["methods"])),
             ("Teachers, cost and throughput", operation_tables(numbers["quality"], numbers["operations"]))]
    if "evidence" in numbers:
        from .evidence import tables as evidence_tables

        found += evidence_tables(numbers["evidence"])
    return [(title, tables) for title, tables in found if tables]


def quality_tables(quality: dict[str, Any], records: int) -> list[Table]:
    tables = []
    judge = quality["judge"]
    if judge:
        tables += _judge_tables(judge)
    signals = quality["signals"]
    tables.append(Table("Free quality signals", ("signal", "records flagged", "share of records"),
                        [(name, n, f"{n / records:.1%}" if records else "n/a") for name, n in signals["by_signal"].items()],
                        f"{signals['records_flagged']} of {records} kept records carry at least one signal (computed "
                        "as each record was written, no model; a filtering signal rejects the answer instead)."))
    rejections = [(stage, reason, n) for stage in ("quality", "judge") for reason, n in quality["rejections"][stage].items()]
    if rejections:
        tables.append(Table("Answers rejected for quality", ("stage", "reason", "answers"), rejections,
                            "quality: a filtering free signal; judge: scored below --min-quality."))
    return tables


def _judge_tables(judge: dict[str, Any]) -> list[Table]:
    rubrics = judge["rubrics"]
    names = list(rubrics)
    top = max(rubric["scale"][1] for rubric in rubrics.values())
    rows = [(str(s), *(rubrics[r]["histogram"].get(str(s), "") for r in names)) for s in range(1, top + 1)]
    rows.append(("mean", *(fmt(rubrics[r]["mean"]) for r in names)))
    rows.append(("not scored", *(rubrics[r]["unscored"] for r in names)))
    tables = [Table("Judge scores", ("score", *names), rows,
                    f"Judge {judge['model'] or 'n/a'}: records of each score per rubric (quality 1-5, complexity "
                    f"1-6). {judge['judged_not_kept']} judged answers were not kept.")]
    for key, label in (("by_task_kind", "task kind"), ("by_system_message", "system message")):
        groups = {g for r in rubrics.values() for g in r[key]}
        order = sorted(groups, key=lambda g: -max(r[key].get(g, {}).get("n", 0) for r in rubrics.values()))
        tables.append(Table(f"Mean score by {label}", (label, *(f"{r} (n)" for r in names)),
                            [(g, *(_mean_n(rubrics[r][key].get(g)) for r in names)) for g in order]))
    bias = judge["length_bias"]
    if bias:
        tables.append(Table("Quality score and response length", ("correlation", "value"),
                            [("Pearson r", fmt(bias["pearson"])), ("Spearman rho", fmt(bias["spearman"])),
                             ("records", bias["n"])],
                            "Length in characters. A strong positive correlation is a sign of a judge that rewards "
                            "length, which the rubric tells it not to."))
    if judge["lowest"]:
        tables.append(Table("Lowest-scored records", ("score", "task kind", "instruction", "response", "judge's reason"),
                            [(x["score"], x["task_kind"], x["instruction"], x["response"], x["reason"])
                             for x in judge["lowest"]]))
    return tables


def _mean_n(group: dict[str, Any] | None) -> str:
    return f"{fmt(group['mean'])} ({group['n']})" if group else ""


def method_tables(methods: dict[str, Any]) -> list[Table]:
    tables = [Table("Tasks and records per method", ("method", "tasks accepted", "records"),
                    [(m, v["tasks"], v["records"]) for m, v in methods["by_method"].items()])]
    personas = methods["personas"]
    if personas:
        shown = list(personas["by_persona"].items())[:PERSONAS_SHOWN]
        tables.append(Table("Personas", ("persona", "tasks", "records", "persona text"),
                            [(p, v["tasks"], v["records"], v["text"] or "") for p, v in shown],
                            f"{personas['used']} personas led {personas['tasks_with']} tasks "
                            f"({personas['records_with']} records); {personas['tasks_without']} tasks had no persona. "
                            f"The {len(shown)} personas with the most records are shown."))
    coverage = methods["persona_coverage"]
    if coverage:
        tables.append(_coverage_table(coverage))
    evol = methods["evol"]
    if evol:
        tables.append(Table("Complexity per Evol-Instruct round",
                            ("round", "tasks", "records", "instruction words", "constraint markers",
                             "judge complexity (n)"),
                            [("0 (seeds)" if r["round"] == 0 else r["round"], r["tasks"], r["records"],
                              fmt(r["instruction_words"]), fmt(r["constraints"]),
                              f"{fmt(r['judge_complexity'])} ({r['judged']})") for r in evol["rounds"]],
                            "Means per task. Constraint markers count requirement words, bounds and counts in the "
                            "instruction (a model-free proxy); the judge's complexity score (1-6) where records "
                            "were judged."))
        tables.append(Table("Evol-Instruct mutations", ("mutation", "kept", "eliminated"),
                            [(m, v["kept"], ", ".join(f"{k} {n}" for k, n in v["eliminated"].items()) or "none")
                             for m, v in evol["by_mutation"].items()]))
    return tables


def _coverage_table(coverage: dict[str, Any]) -> Table:
    a, b = coverage["with_personas"], coverage["without"]
    rows = [("clusters occupied", f"{a.get('occupied', 'n/a')} of {a.get('clusters', 'n/a')}",
             f"{b.get('occupied', 'n/a')} of {b.get('clusters', 'n/a')}"),
            ("evenness", fmt(a.get("evenness")), fmt(b.get("evenness"))),
            ("Vendi score", fmt(a["vendi_score"]), fmt(b["vendi_score"])),
            ("mean pairwise cosine distance", fmt(a["mean_pairwise_cosine_distance"]),
             fmt(b["mean_pairwise_cosine_distance"]))]
    return Table("Topic coverage with personas", ("measure", "persona-led tasks", coverage["compared"]), rows,
                 f"Persona-led tasks against {coverage['compared']}: seeded samples of {coverage['sample_size']} "
                 f"tasks from each (seed {coverage['sample_seed']}), one k-means fit over both, and each group's "
                 "share of its clusters.")


def operation_tables(quality: dict[str, Any], operations: dict[str, Any]) -> list[Table]:
    cost = quality["cost"]
    rows = [(name.replace("_", " "), v["model"] or "n/a", fmt(v["requests"]), fmt(v["tokens"]), fmt(v["cost_usd"]))
            for name, v in cost["by_teacher"].items()]
    if cost["unsettled_usd"]:
        rows.append(("reserved, never settled", "", "", "", fmt(cost["unsettled_usd"])))
    rows.append(("total", "", "", "", fmt(cost["total_cost_usd"])))
    tables = [Table("Cost per teacher", ("teacher", "model", "requests", "tokens", "USD"), rows)]
    strong = quality["strong_teacher"]
    if strong["records"]:
        tables.append(Table("Strong teacher", ("", "value"), [
            ("records re-answered", f"{strong['records']} ({strong['share']:.1%})"),
            ("why", ", ".join(f"{k} {n}" for k, n in strong["why"].items())),
            ("cost of the cheap answers replaced (USD)", fmt(strong["cheap_cost_usd"]))]))
    if operations["endpoints"]:
        tables.append(Table("Endpoints of the fleet", ("endpoint", "requests", "share", "failures", "times taken out",
                                                       "mean latency (s)"),
                            [(url, s.get("requests"), fmt(s["share"]), s.get("failures"), s.get("times_taken_out"),
                              fmt(s.get("mean_latency_s"))) for url, s in operations["endpoints"].items()]))
    concurrency = operations["concurrency"]
    if concurrency:
        tables.append(Table("Adaptive concurrency", ("", "value"), [
            ("final limit", fmt(concurrency["final"])), ("peak limit", fmt(concurrency["peak_limit"])),
            ("mean throughput (replies/s)", fmt(concurrency["mean_throughput"])),
            ("peak throughput (replies/s)", fmt(concurrency["peak_throughput"])),
            ("samples (about one a second, last session)", concurrency["samples"])]))
    batch = operations["batch"]
    if batch:
        tables.append(Table("Batch jobs", ("", "value"), [
            ("jobs", batch.get("jobs")), ("jobs resubmitted", batch.get("resubmitted_jobs")),
            ("jobs re-attached after a resume", batch.get("reattached_jobs")), ("requests", batch.get("requests")),
            ("requests failed", batch.get("failed")), ("cost (USD)", fmt(batch.get("cost_usd"))),
            ("online equivalent (USD)", fmt(batch.get("online_equivalent_usd"))),
            ("saved (USD)", fmt(batch["saved_usd"])), ("batch / online", fmt(batch["cost_ratio"]))]))
    return tables
