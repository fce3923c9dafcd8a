"""`synth report` on a small run folder built here, with the real MiniLM; and the diversity metrics by hand."""

import base64
from collections import Counter
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from synth.report import diversity as metrics
from synth.gate.embeddings import shared_embedder
from synth.gate.novelty import NoveltyGate
from synth.report import build_report, collect
from synth.cli import app as synth_app

TASKS = [
    ("t1", "Explain how tides are caused by the Moon.", "science", "step_by_step"),
    ("t2", "Write a limerick about a forgetful wizard.", "writing", "detailed"),
    ("t3", "Convert 5 kilometres to miles and show the working.", "math", "show_math_working"),
    ("t4", "List four ways to keep basil alive indoors.", "advice", "detailed"),
]
SEEDS = [("seed_a", "Summarise the article in one sentence."), ("seed_b", "Translate the phrase into German."),
         ("seed_c", "Give three tips for a job interview."), ("seed_d", "Solve the equation 2x + 3 = 11.")]


def record(task_id, instruction, kind, system, index, response):
    return {"id": f"rec-{task_id}-{index}",
            "task": {"id": task_id, "instruction": instruction, "is_classification": False, "kind": kind, "origin": "machine"},
            "instance": {"index": index, "input": "", "reference_output": ""},
            "system_message": {"id": system, "text": "Be helpful."}, "response": response,
            "provenance": {"teacher": "openai/test-teacher", "usage": {"prompt_tokens": 30, "completion_tokens": 10,
                                                                       "total_tokens": 40},
                           "cost_usd": 0.002, "novelty": {"neighbour_id": "seed_a", "score": 0.5, "threshold": 0.9,
                                                          "stage": "embedding"}}}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def run_folder(tmp_path):
    return write_run_folder(tmp_path)


def write_run_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    seeds = tmp_path / "seeds.jsonl"
    write_jsonl(seeds, [{"id": i, "instruction": t, "instances": []} for i, t in SEEDS])
    (run / "config.json").write_text(json.dumps({"seeds": str(seeds), "novelty_threshold": 0.9,
                                                  "embedder": "bundled:all-MiniLM-L6-v2", "teacher": "openai/test-teacher"}))
    (run / "manifest.json").write_text(json.dumps({"status": "completed", "usage": {
        "prompt_tokens": 900, "completion_tokens": 300, "cost_usd": 0.05}}))
    records = [record(t, ins, kind, system, i, f"Answer {i} for {ins} the the")
               for t, ins, kind, system in TASKS for i in range(2)]
    write_jsonl(run / "data.jsonl", records)
    accepted = [{"status": "accepted", "bootstrap_no": n, "task": {"id": t, "instruction": ins},
                 "novelty": {"neighbour_id": "seed_a", "score": s, "threshold": 0.9, "stage": "embedding"}}
                for n, (t, ins, _, _), s in zip([0, 0, 1, 2], TASKS, [0.31, 0.52, 0.44, 0.87])]
    write_jsonl(run / "tasks.jsonl", accepted + [{"status": "completed", "id": "t1"}])
    write_jsonl(run / "rejected.jsonl", [
        {"id": "r1", "kind": "rejected", "stage": "novelty", "reason": "near_duplicate", "bootstrap_no": 1, "score": 0.95},
        {"id": "r2", "kind": "rejected", "stage": "novelty", "reason": "near_duplicate", "bootstrap_no": 2, "score": 0.97},
        {"id": "r3", "kind": "rejected", "stage": "filter", "reason": "blacklisted_word", "bootstrap_no": 2},
        {"id": "r4", "kind": "rejected", "stage": "parse", "reason": "unparseable_instances", "task_id": "t2"},
        {"id": "r5", "kind": "failed", "stage": "answer", "reason": "finish_length"},
    ])
    return run


@pytest.fixture(scope="module")
def embedder():
    return shared_embedder()


def test_numbers_count_every_outcome_and_rate(run_folder, embedder):
    numbers = collect(run_folder, embedder=embedder, clusters=3)
    counts = numbers["counts"]
    assert counts["records"] == 8 and counts["tasks_in_records"] == 4 and counts["tasks_accepted"] == 4
    assert counts["rejected"] == {"near_duplicate": 2, "blacklisted_word": 1, "unparseable_instances": 1}
    assert counts["failed"] == {"finish_length": 1}
    acceptance = numbers["acceptance"]
    assert acceptance["bootstrap_prompts"] == [0, 1, 2]
    assert acceptance["overall"] == pytest.approx(4 / 7, abs=1e-4)        # 4 accepted of 7 proposed
    assert acceptance["rolling_rate"] == [1.0, pytest.approx(3 / 4, abs=1e-4), pytest.approx(4 / 7, abs=1e-4)]
    assert sum(numbers["novelty"]["accepted_scores"]["counts"]) == 4
    assert sum(numbers["novelty"]["rejected_scores"]["counts"]) == 2
    assert numbers["shares"]["system_message"] == {"detailed": 0.5, "step_by_step": 0.25, "show_math_working": 0.25}
    assert numbers["usage"]["tokens_per_record"] == 40 and numbers["usage"]["run_tokens_per_record"] == 150
    assert numbers["teachers"] == {"openai/test-teacher": 8}
    diversity = numbers["diversity"]
    assert diversity["sample_size"] == 4 and 1.0 < diversity["vendi_score"] <= 4.0
    assert 0.0 < diversity["mean_pairwise_cosine_distance"] < 1.5
    assert 1 <= diversity["cluster_coverage"]["occupied"] <= 3


def test_report_reuses_the_gate_store_instead_of_embedding(run_folder, embedder):
    gate = NoveltyGate(embedder, 0.9, store=run_folder / "gate")
    gate.add([t for t, *_ in TASKS] + [i for i, _ in SEEDS], [ins for _, ins, *_ in TASKS] + [t for _, t in SEEDS])

    class Refusing:
        name, dim = embedder.name, embedder.dim

        def encode(self, texts):
            raise AssertionError(f"embedded {texts}")

    stored = collect(run_folder, embedder=Refusing(), clusters=3)
    fresh = collect(run_folder, embedder=embedder, clusters=3)
    assert stored["diversity"]["vendi_score"] == pytest.approx(fresh["diversity"]["vendi_score"], abs=1e-3)


def test_report_files_card_page_and_json(run_folder, embedder):
    paths = build_report(run_folder, embedder=embedder, clusters=3)
    assert paths.card.parent == run_folder / "report"
    card = paths.card.read_text()
    assert card.startswith("---\n") and "size_categories:\n- n<1K" in card
    assert "| rejected: near_duplicate | 2 |" in card and "| failed: finish_length | 1 |" in card
    page = paths.html.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 6
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http" not in page                                        # self-contained: nothing fetched
    assert json.loads(paths.numbers.read_text())["counts"]["records"] == 8


def test_report_command_and_a_folder_that_is_not_a_run(run_folder, tmp_path, embedder):
    from synth.errors import RunFolderError

    result = CliRunner().invoke(synth_app, ["report", str(run_folder), "--out", str(tmp_path / "r"), "--clusters", "3",
                                            "--browser-size", "0"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "report.html").read_text()
    assert 'id="browser-data"' not in page and 'id="examples"' not in page and "<h2>Plots</h2>" in page
    with pytest.raises(RunFolderError):
        collect(tmp_path / "nothing-here")


@pytest.mark.parametrize("texts, n, expected", [
    (["a b a b"], 1, 0.5), (["a b a b"], 2, 2 / 3), (["a b c", "a b d"], 3, 1.0), (["x"], 2, 0.0),
])
def test_distinct_n(texts, n, expected):
    assert metrics.distinct_n(texts, n) == pytest.approx(expected)


def test_vendi_and_pairwise_distance_on_known_vectors():
    identical = np.tile(np.array([[1.0, 0.0, 0.0]], dtype=np.float32), (5, 1))
    orthogonal = np.eye(3, dtype=np.float32)
    assert metrics.vendi_score(identical) == pytest.approx(1.0)
    assert metrics.vendi_score(orthogonal) == pytest.approx(3.0)
    assert metrics.mean_pairwise_cosine_distance(identical) == pytest.approx(0.0, abs=1e-6)
    assert metrics.mean_pairwise_cosine_distance(orthogonal) == pytest.approx(1.0)


def test_fixed_sample_is_seeded():
    assert list(metrics.sample_rows(1000, 5, seed=3)) == list(metrics.sample_rows(1000, 5, seed=3))
    assert list(metrics.sample_rows(4, 10)) == [0, 1, 2, 3]


# Bad input: a one-line error naming the file (and line), exit code 2, never a traceback.

def report_cli(monkeypatch, capsys, *args):
    from synth.cli import main

    monkeypatch.setattr("sys.argv", ["synth", "report", *map(str, args)])
    with pytest.raises(SystemExit) as stop:
        main()
    captured = capsys.readouterr()
    return stop.value.code, captured.err


@pytest.mark.parametrize("name, text, fragment", [
    ("config.json", '{"novelty_threshold": ', "config.json: not valid JSON (Expecting value: line 1"),
    ("config.json", "[1, 2]\n", "config.json: holds an array, not a JSON object"),
    ("config.json", '{"novelty_threshold": "high"}', "config.json: its 'novelty_threshold' is \"high\", not"),
    ("manifest.json", '{"status": "comp', "manifest.json: not valid JSON"),
])
def test_broken_json_file_is_a_one_line_error(run_folder, monkeypatch, capsys, name, text, fragment):
    (run_folder / name).write_text(text)
    code, err = report_cli(monkeypatch, capsys, run_folder)
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and fragment in err and "move it aside" in err


@pytest.mark.parametrize("name, line, fragment", [
    ("data.jsonl", {"instruction": "Add 2 and 2.", "input": "", "output": "4"}, "data.jsonl:9: not a synth record"),
    ("data.jsonl", 5, "data.jsonl:9: expected a JSON object, not int"),
    ("data.jsonl", "{not json", "data.jsonl:9: is not valid JSON"),
    ("rejected.jsonl", 5, "rejected.jsonl:6: expected a JSON object, not int"),
    ("tasks.jsonl", [1], "tasks.jsonl:6: expected a JSON object, not list"),
])
def test_a_line_that_is_not_a_synth_row_names_file_and_line(run_folder, name, line, fragment):
    from synth.errors import InputFileError

    with open(run_folder / name, "a") as fh:
        fh.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    with pytest.raises(InputFileError, match=re.escape(fragment)):
        collect(run_folder)


def test_a_cut_last_line_is_still_skipped(run_folder, embedder):
    with open(run_folder / "data.jsonl", "a") as fh:
        fh.write('{"id": "rec-cut", "task": {"id"')
    assert collect(run_folder, embedder=embedder, clusters=3)["counts"]["records"] == 8


@pytest.mark.parametrize("option, value", [("sample_size", -5), ("sample_size", 1), ("clusters", 0), ("seed", -1)])
def test_numeric_options_are_checked(run_folder, option, value):
    from synth.errors import ConfigError

    with pytest.raises(ConfigError, match=f"--{option.replace('_', '-')} must be"):
        collect(run_folder, **{option: value})


def test_negative_sample_size_on_the_command_line(run_folder, monkeypatch, capsys):
    code, err = report_cli(monkeypatch, capsys, run_folder, "--sample-size", "-5")
    assert code == 2 and err.count("\n") == 1 and "--sample-size must be at least 2" in err


class CountingEmbedder:
    """A 4-d stand-in that records what it was asked to embed."""
    name, dim = "counting", 4

    def __init__(self):
        self.seen = []

    def encode(self, texts):
        self.seen += texts
        vectors = np.array([[len(t), t.count(" "), t.count("e"), 1.0] for t in texts], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def cut_items_line(gate):
    lines = (gate / "items.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1][:12] + "\n"
    (gate / "items.jsonl").write_text("".join(lines))


@pytest.mark.parametrize("damage", [
    lambda gate: (gate / "meta.json").write_text('{"embedder": "coun'),
    lambda gate: (gate / "meta.json").write_text('{"embedder": "counting"}'),
    cut_items_line,
    lambda gate: (gate / "items.jsonl").write_text("5\n"),
], ids=["meta-cut", "meta-no-dim", "items-cut", "items-number"])
def test_an_unreadable_gate_store_is_re_embedded_with_a_note(run_folder, damage):
    from synth.gate.embeddings import EmbeddingStore

    gate = run_folder / "gate"
    fake = CountingEmbedder()
    EmbeddingStore(gate, fake.name, fake.dim).append([t for t, *_ in TASKS], [i for _, i, *_ in TASKS],
                                                      fake.encode([i for _, i, *_ in TASKS]))
    fake.seen.clear()
    damage(gate)
    numbers = collect(run_folder, embedder=fake, clusters=3)
    assert set(fake.seen) >= {i for _, i, *_ in TASKS}                 # the tasks were embedded afresh
    [note] = numbers["notes"]
    assert note.startswith(str(gate / "")) and "embedded the tasks afresh" in note and "\n" not in note


def test_the_command_warns_in_one_line_about_an_unreadable_gate_store(run_folder, monkeypatch, capsys):
    (run_folder / "gate").mkdir()
    (run_folder / "gate" / "meta.json").write_text('{"embedder": "bundled:all-MiniLM-L6-v2", "di')
    code, err = report_cli(monkeypatch, capsys, run_folder, "--clusters", "3")
    assert code == 0 and err.count("\n") == 1
    assert err.startswith("warning: ") and "gate/meta.json: not valid JSON" in err
    assert json.loads((run_folder / "report" / "report.json").read_text())["notes"] == [err[len("warning: "):].strip()]


def test_an_empty_run_is_reported_without_warnings(tmp_path, embedder):
    import warnings

    run = tmp_path / "empty"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"embedder": "bundled:all-MiniLM-L6-v2"}))
    (run / "data.jsonl").write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = build_report(run, embedder=embedder)
    assert json.loads(paths.numbers.read_text())["counts"]["records"] == 0


def _edit_jsonl(path, index, change):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    change(rows[index])
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.mark.parametrize("name, change, fragment", [
    ("data.jsonl", lambda r: r.update(system_message={}), "data.jsonl:1: not a synth record (no string system_message.id)"),
    ("data.jsonl", lambda r: r["provenance"].update(usage=[1, 2]), "data.jsonl:1: in provenance, its 'usage' is [1, 2]"),
    ("rejected.jsonl", lambda r: r.update(score="high"), "rejected.jsonl:1: its 'score' is \"high\""),
    ("tasks.jsonl", lambda r: r.update(bootstrap_no="0"), "tasks.jsonl:1: its 'bootstrap_no' is \"0\""),
])
def test_a_field_of_the_wrong_type_is_one_line_naming_file_and_line(run_folder, monkeypatch, capsys, name, change,
                                                                     fragment):
    _edit_jsonl(run_folder / name, 0, change)
    code, err = report_cli(monkeypatch, capsys, run_folder)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1 and fragment in err, err


def test_a_string_count_in_the_manifest_is_one_line(run_folder, monkeypatch, capsys):
    manifest = json.loads((run_folder / "manifest.json").read_text())
    (run_folder / "manifest.json").write_text(json.dumps({**manifest, "counts": {"records": "8"}}))
    code, err = report_cli(monkeypatch, capsys, run_folder)
    assert code == 2 and "manifest.json: in counts, its 'records' is \"8\"" in err and err.count("\n") == 1


def _stored_gate(run_folder):
    from synth.gate.embeddings import EmbeddingStore

    fake = CountingEmbedder()
    texts = [i for _, i, *_ in TASKS]
    EmbeddingStore(run_folder / "gate", fake.name, fake.dim).append([t for t, *_ in TASKS], texts, fake.encode(texts))
    fake.seen.clear()
    return fake


@pytest.mark.parametrize("damage", [
    lambda raw: np.random.default_rng(0).bytes(len(raw)),
    lambda raw: np.full(len(raw) // 4, np.nan, dtype=np.float32).tobytes(),
    lambda raw: raw[: len(raw) // 2],
], ids=["random-bytes", "nan", "short"])
def test_damaged_vectors_are_embedded_afresh_with_a_note_and_the_run_is_never_written(run_folder, damage):
    fake = _stored_gate(run_folder)
    vectors = run_folder / "gate" / "vectors.f32"
    vectors.write_bytes(damage(vectors.read_bytes()))
    before = {p.name: p.read_bytes() for p in (run_folder / "gate").iterdir()}
    numbers = collect(run_folder, embedder=fake, clusters=3)
    assert {p.name: p.read_bytes() for p in (run_folder / "gate").iterdir()} == before
    assert numbers["diversity"]["vendi_score"] is not None and set(fake.seen)
    assert any("vectors.f32" in note and "embedded those tasks afresh" in note for note in numbers["notes"])


def test_sound_vectors_are_used_as_saved(run_folder):
    fake = _stored_gate(run_folder)
    numbers = collect(run_folder, embedder=fake, clusters=3)
    assert not numbers["notes"] and not set(fake.seen) & {i for _, i, *_ in TASKS}


def test_a_retried_failure_no_longer_counts_as_failed(run_folder, embedder):
    with open(run_folder / "rejected.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "r5", "kind": "retried", "stage": "answer", "reason": "finish_length"}) + "\n")
    assert collect(run_folder, embedder=embedder, clusters=3)["counts"]["failed"] == {}


# ---- quality, methods, teachers and the example browser, on a schema-2 run ---------------------------------------

HOSTILE = '</script><script>alert("x")</script><img src=x onerror=alert(1)> & <!--'
PERSONAS = [("p-nurse", "A night-shift nurse in Lagos who studies statistics."),
            ("p-farmer", "A retired farmer in Manitoba who restores tractors.")]


def rich_record(task_id, instruction, kind, system, index, response, **provenance):
    row = record(task_id, instruction, kind, system, index, response)
    row["provenance"].update(schema_version=2, **provenance)
    return row


def evol_lineage(parent, rnd, mutations):
    return {"method": "evol", "parent_id": parent, "round": rnd, "mutation": mutations[-1], "root_id": "seed_a",
            "mutations": [{"round": r + 1, "mutation": m, "parent_id": "x"} for r, m in enumerate(mutations)]}


@pytest.fixture
def rich_run(run_folder, tmp_path):
    return write_rich_run(run_folder, tmp_path)


@pytest.fixture(scope="module")
def rich_report(tmp_path_factory):
    """The report of a rich run, built once for the tests that only read it."""
    folder = tmp_path_factory.mktemp("rich")
    paths = build_report(write_rich_run(write_run_folder(folder), folder), embedder=CountingEmbedder(), clusters=3)
    return paths.html.read_text(), paths.card.read_text()


def write_rich_run(run_folder, tmp_path):
    """run_folder made by schema 2: personas, evol rounds, judge scores (sidecar and provenance), signals, a strong
    teacher, quality and judge rejections, a fleet, an adaptive-concurrency timeline and batch jobs."""
    personas = tmp_path / "personas.jsonl"
    write_jsonl(personas, [{"id": i, "persona": t} for i, t in PERSONAS])
    config = json.loads((run_folder / "config.json").read_text())
    config.update(method="self-instruct", personas=str(personas), judge="openai/judge", strong_teacher="openai/strong",
                  verifier="openai/verifier")
    (run_folder / "config.json").write_text(json.dumps(config))
    si = {"method": "self-instruct", "prompt_pool_ids": []}
    records = [
        rich_record("t1", TASKS[0][1], "science", "step_by_step", 0, "The Moon pulls the oceans.", method="self-instruct",
                    lineage=si, persona_id="p-nurse"),
        rich_record("t1", TASKS[0][1], "science", "step_by_step", 1, "Tides rise twice a day because the Moon and the "
                    "Sun pull on the water of the oceans in turn.", method="self-instruct", lineage=si,
                    persona_id="p-nurse", strong_teacher={"why": "judged 2", "cheap_teacher": "openai/cheap",
                                                          "cheap_response": "Moon.", "cheap_cost_usd": 0.0001}),
        rich_record("t2", TASKS[1][1], "writing", "detailed", 0, HOSTILE, method="self-instruct", lineage=si,
                    persona_id="p-farmer"),
        rich_record("t3", TASKS[2][1], "math", "show_math_working", 0, "5 km is 3.11 miles.", method="self-instruct",
                    lineage=si, persona_id=None),
        rich_record("t5", "List four ways to keep basil alive indoors, each in at most 10 words.", "advice", "detailed",
                    0, "Water it, sun it, trim it, feed it.", method="evol",
                    lineage=evol_lineage("t4", 1, ["add_constraints"]),
                    judge={"model": "openai/judge", "quality": {"score": 5, "reason": "fine"},
                           "complexity": {"score": 4, "reason": "two bounds"}}),
        rich_record("t6", "List four ways to keep basil alive indoors, each in at most 10 words, and explain why each "
                    "works without using jargon.", "advice", "detailed", 0, "Sun: it feeds the leaves. " * 3,
                    method="evol", lineage=evol_lineage("t5", 2, ["add_constraints", "more_reasoning"])),
    ]
    records[0]["quality"] = {"signals": [{"name": "too_short", "detail": "5 words for a detailed answer"}]}
    records[5]["quality"] = {"signals": [{"name": "repetition", "detail": "a sentence 3 times"},
                                         {"name": "too_short", "detail": "short"}]}
    write_jsonl(run_folder / "data.jsonl", records)
    write_jsonl(run_folder / "scores.jsonl", [
        {"id": f"{rid}#{rubric}", "record_id": rid, "rubric": rubric, "status": "ok", "model": "openai/judge",
         "result": {"score": score, "reason": reason}}
        for rid, rubric, score, reason in [
            ("rec-t1-0", "quality", 2, "too short to explain tides"), ("rec-t1-1", "quality", 4, "correct"),
            ("rec-t2-0", "quality", 1, "not a limerick: " + HOSTILE), ("rec-t3-0", "quality", 5, "right"),
            ("rec-t1-0", "complexity", 2, "one step"), ("rec-t6-0", "complexity", 6, "many constraints"),
            ("rec-gone-0", "quality", 1, "rejected later")]])
    accepted = [{"status": "accepted", "bootstrap_no": n, "task": {"id": t, "instruction": ins}, "lineage": lineage,
                 "persona_id": persona, "novelty": {"neighbour_id": "seed_a", "score": 0.3, "stage": "embedding"}}
                for n, (t, ins, lineage, persona) in enumerate([
                    ("t1", TASKS[0][1], si, "p-nurse"), ("t2", TASKS[1][1], si, "p-farmer"),
                    ("t3", TASKS[2][1], si, None), ("t4", TASKS[3][1], si, None),
                    ("t5", records[4]["task"]["instruction"], records[4]["provenance"]["lineage"], None),
                    ("t6", records[5]["task"]["instruction"], records[5]["provenance"]["lineage"], None)])]
    write_jsonl(run_folder / "tasks.jsonl", accepted)
    write_jsonl(run_folder / "rejected.jsonl", [
        {"id": "r1", "kind": "rejected", "stage": "novelty", "reason": "near_duplicate", "bootstrap_no": 1,
         "score": 0.96, "neighbour_id": "t1", "text": "Explain how the Moon causes the tides."},
        {"id": "r2", "kind": "rejected", "stage": "novelty", "reason": "same_task", "score": 0.71,
         "neighbour_id": "seed_b", "text": "Put the phrase into German.", "parent_id": "seed_b",
         "mutation": "deepen"},
        {"id": "r3", "kind": "rejected", "stage": "quality", "reason": "repetition", "detail": "a line 14 times",
         "text": "Step 1. Step 1. Step 1."},
        {"id": "r4", "kind": "rejected", "stage": "judge", "reason": "low_quality", "score": 2,
         "detail": "wrong unit", "text": "5 km is 5 miles."},
        {"id": "r5", "kind": "rejected", "stage": "evolve", "reason": "copies_mutation_prompt", "parent_id": "t4",
         "mutation": "add_constraints", "text": "Add a constraint to the task."},
    ])
    spend = {"requests": 7, "attempts": 7, "prompt_tokens": 700, "completion_tokens": 70, "cost_usd": 0.01}
    (run_folder / "manifest.json").write_text(json.dumps({
        "status": "completed", "teacher": "openai/test-teacher",
        "usage": {"calls": 20, "prompt_tokens": 900, "completion_tokens": 300, "cost_usd": 0.05,
                  "verifier": {**spend, "cost_usd": 0.002}, "judge": spend, "strong_teacher": {**spend, "requests": 1},
                  "total_cost_usd": 0.072},
        "endpoints": {"http://a:8000/v1": {"requests": 30, "failures": 1, "times_taken_out": 0, "mean_latency_s": 0.5},
                      "http://b:8000/v1": {"requests": 10, "failures": 4, "times_taken_out": 1, "mean_latency_s": 1.5}},
        "concurrency": {"final": 12.5, "timeline": [[0.0, 8.0, 3, 0], [1.0, 9.0, 8, 10], [3.0, 12.5, 12, 40]]},
        "batch": {"jobs": 3, "resubmitted_jobs": 1, "requests": 40, "failed": 0, "cost_usd": 0.5,
                  "online_equivalent_usd": 1.0}}))
    return run_folder


def test_quality_numbers_from_the_judge_the_signals_and_the_ledger(rich_run):
    numbers = collect(rich_run, embedder=CountingEmbedder(), clusters=3)
    quality = numbers["quality"]
    judge = quality["judge"]
    assert judge["model"] == "openai/judge" and judge["judged_not_kept"] == 1
    q = judge["rubrics"]["quality"]
    assert q["histogram"] == {"1": 1, "2": 1, "3": 0, "4": 1, "5": 2} and q["scored"] == 5 and q["unscored"] == 1
    assert q["mean"] == pytest.approx((2 + 4 + 1 + 5 + 5) / 5, abs=1e-3)
    assert q["by_task_kind"]["science"] == {"n": 2, "mean": 3.0}
    assert q["by_system_message"]["detailed"] == {"n": 2, "mean": 3.0}       # t2's 1 and t5's 5 (from provenance)
    c = judge["rubrics"]["complexity"]
    assert c["histogram"]["6"] == 1 and c["scored"] == 3 and c["scale"] == [1, 6]
    assert judge["length_bias"]["n"] == 5
    lowest = judge["lowest"]
    assert [x["score"] for x in lowest] == [1, 2, 4, 5, 5] and lowest[0]["reason"].startswith("not a limerick")
    assert quality["signals"]["by_signal"] == {"repetition": 1, "too_short": 2}
    assert quality["signals"]["records_flagged"] == 2
    assert quality["rejections"]["quality"] == {"repetition": 1} and quality["rejections"]["judge"] == {"low_quality": 1}
    assert quality["rejections"]["judge_scores"] == {"2": 1}
    cost = quality["cost"]["by_teacher"]
    assert cost["teacher"] == {"model": "openai/test-teacher", "requests": 20, "tokens": 1200, "cost_usd": 0.05}
    assert cost["verifier"]["cost_usd"] == 0.002 and cost["judge"]["model"] == "openai/judge"
    assert cost["strong_teacher"] == {"model": "openai/strong", "requests": 1, "tokens": 770, "cost_usd": 0.01}
    assert quality["cost"]["total_cost_usd"] == pytest.approx(0.072)
    assert quality["strong_teacher"] == {"records": 1, "share": pytest.approx(1 / 6, abs=1e-4),
                                         "why": {"judged 2": 1}, "cheap_cost_usd": 0.0001}


def test_a_later_synth_judge_is_costed_from_its_summary(rich_run):
    manifest = json.loads((rich_run / "manifest.json").read_text())
    del manifest["usage"]["judge"]
    (rich_run / "manifest.json").write_text(json.dumps(manifest))
    (rich_run / "scores.summary.json").write_text(json.dumps({"judge": "openai/later-judge", "usage": {
        "requests": 12, "attempts": 12, "prompt_tokens": 100, "completion_tokens": 20, "cost_usd": 0.25}}))
    numbers = collect(rich_run, embedder=CountingEmbedder(), clusters=3)
    judge = numbers["quality"]["cost"]["by_teacher"]["judge"]
    assert judge == {"model": "openai/later-judge", "requests": 12, "tokens": 120, "cost_usd": 0.25}
    assert numbers["quality"]["judge"]["model"] == "openai/later-judge"


def test_methods_personas_evol_rounds_and_persona_coverage(rich_run):
    numbers = collect(rich_run, embedder=CountingEmbedder(), clusters=3)
    methods = numbers["methods"]
    assert methods["by_method"] == {"self-instruct": {"tasks": 4, "records": 4}, "evol": {"tasks": 2, "records": 2}}
    personas = methods["personas"]
    assert personas["used"] == 2 and personas["tasks_with"] == 2 and personas["tasks_without"] == 4
    assert personas["by_persona"]["p-nurse"] == {"tasks": 1, "records": 2, "text": PERSONAS[0][1]}
    rounds = {r["round"]: r for r in methods["evol"]["rounds"]}
    assert set(rounds) == {0, 1, 2} and rounds[0]["tasks"] == len(SEEDS)          # round 0: the seeds
    assert rounds[1]["judge_complexity"] == 4.0 and rounds[2]["judge_complexity"] == 6.0
    assert rounds[2]["constraints"] > rounds[1]["constraints"] > rounds[0]["constraints"]
    assert rounds[2]["instruction_words"] > rounds[1]["instruction_words"]
    mutations = methods["evol"]["by_mutation"]
    assert mutations["add_constraints"] == {"kept": 1, "eliminated": {"copies_mutation_prompt": 1}}
    assert mutations["deepen"] == {"kept": 0, "eliminated": {"same_task": 1}}
    coverage = methods["persona_coverage"]
    assert coverage["compared"] == "machine tasks of prompts without a persona" and coverage["sample_size"] == 2
    assert 1 <= coverage["with_personas"]["occupied"] <= 2 and coverage["without"]["clusters"] >= 2


def test_persona_coverage_falls_back_to_the_seeds(rich_run):
    _edit_jsonl(rich_run / "tasks.jsonl", 2, lambda r: r.update(persona_id="p-nurse"))
    for i in (3, 4, 5):
        _edit_jsonl(rich_run / "tasks.jsonl", i, lambda r: r.update(persona_id="p-farmer"))
    coverage = collect(rich_run, embedder=CountingEmbedder(), clusters=3)["methods"]["persona_coverage"]
    assert coverage["compared"] == "the seed tasks" and coverage["sample_size"] == 4


@pytest.mark.parametrize("text, count", [
    ("Write a poem.", 0),
    ("Write a poem of exactly 4 lines that must not rhyme.", 3),
    ("List 3 tips, each under 10 words, without jargon, and explain why.", 4),
])
def test_constraint_markers(text, count):
    from synth.report.methods import constraint_count

    assert constraint_count(text) == count


def test_operations_from_the_manifest(rich_run):
    operations = collect(rich_run, embedder=CountingEmbedder(), clusters=3)["operations"]
    assert operations["endpoints"]["http://a:8000/v1"]["share"] == 0.75
    concurrency = operations["concurrency"]
    assert concurrency["throughput"] == [None, 10.0, 15.0] and concurrency["mean_throughput"] == pytest.approx(40 / 3, abs=1e-3)
    assert concurrency["peak_limit"] == 12.5 and concurrency["final"] == 12.5
    assert operations["batch"]["saved_usd"] == 0.5 and operations["batch"]["cost_ratio"] == 0.5


def browser_payload(page):
    """The example browser's data, read back out of the page as the browser's script reads it."""
    match = re.search(r'<script type="application/json" id="browser-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def test_the_page_and_card_show_every_new_section(rich_report):
    page, card = rich_report
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 9          # + judge scores, evol rounds, concurrency
    for title in ("Judge scores", "Mean score by task kind", "Mean score by system message", "Lowest-scored records",
                  "Free quality signals", "Answers rejected for quality", "Cost per teacher", "Strong teacher",
                  "Tasks and records per method", "Personas", "Topic coverage with personas",
                  "Complexity per Evol-Instruct round", "Evol-Instruct mutations", "Endpoints of the fleet",
                  "Adaptive concurrency", "Batch jobs", "Quality score and response length"):
        assert f"<h3>{title}</h3>" in page and f"### {title}\n" in card, title
    assert "| 0 (seeds) | 4 | 0 |" in card and "| deepen | 0 | same_task 1 |" in card
    assert "| strong teacher | openai/strong | 1 | 770 | 0.01 |" in card
    assert "persona-led tasks against machine tasks of prompts without a persona" in page.lower()


def test_untrusted_text_is_escaped_in_page_card_and_browser(rich_report):
    from html.parser import HTMLParser

    page, card = rich_report

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags = Counter()

        def handle_starttag(self, tag, attrs):
            self.tags[tag] += 1

    parsed = Tags()
    parsed.feed(page)
    assert parsed.tags["script"] == 2 and parsed.tags["img"] == 9          # the browser's two; the plots alone
    assert "<img src=x" not in page and "<script>alert" not in page        # never raw, anywhere
    assert "&lt;img src=x onerror=alert(1)&gt;" in page                      # the lowest-scored table, escaped
    data = browser_payload(page)
    response = data["record_fields"].index("response")
    assert HOSTILE in [row[response] for row in data["records"]]          # the text survives, exactly
    assert "<img" not in card and "&lt;img src=x onerror=alert(1)&gt;" in card
    assert "<script" not in card


def test_the_browser_holds_records_rejections_and_the_neighbours_they_repeat(rich_report):
    data = browser_payload(rich_report[0])
    fields = {name: i for i, name in enumerate(data["record_fields"])}
    assert len(data["records"]) == 6 and data["sample"]["records_total"] == 6
    by_id = {row[fields["id"]]: row for row in data["records"]}
    lookups = data["lookups"]
    nurse = by_id["rec-t1-0"]
    assert lookups["kind"][nurse[fields["kind"]]] == "science" and nurse[fields["quality"]] == 2
    assert lookups["persona"][nurse[fields["persona"]]] == "p-nurse"
    assert data["persona_text"][nurse[fields["persona"]]] == PERSONAS[0][1]
    assert [lookups["signal"][s] for s, _ in nurse[fields["signals"]]] == ["too_short"]
    evolved = by_id["rec-t6-0"]
    assert lookups["method"][evolved[fields["method"]]] == "evol" and evolved[fields["parent"]] == "t5"
    assert evolved[fields["lineage"]] == "root seed_a → add_constraints (round 1) → more_reasoning (round 2)"
    assert data["pool"]["t5"].startswith("List four ways") and by_id["rec-t1-1"][fields["strong"]][0] == "openai/cheap"
    rejected = {row[0]: dict(zip(data["rejected_fields"], row)) for row in data["rejected"]}
    assert rejected["r1"]["score"] == 0.96 and data["pool"][rejected["r1"]["neighbour"]] == TASKS[0][1]
    assert data["pool"]["seed_b"] == "Translate the phrase into German."       # a seed as the pool task repeated
    assert lookups["stage"][rejected["r4"]["stage"]] == "judge" and rejected["r4"]["detail"] == "wrong unit"


def test_the_browser_is_a_seeded_sample_above_its_size(rich_run):
    from synth.report.browser import browser_data
    from synth.report.reading import load_run

    page = build_report(rich_run, embedder=CountingEmbedder(), clusters=3, browser_size=4).html.read_text()
    data = browser_payload(page)
    assert len(data["records"]) == 4 and len(data["rejected"]) == 4
    assert data["sample"] == {"size": 4, "seed": 0, "records": 4, "records_total": 6, "rejected": 4,
                              "rejected_total": 5}
    assert "a seeded sample of 4 of the 6 records (seed 0)" in page and "all 5 rejected" not in page
    run = load_run(rich_run)
    ids = [r[0] for r in browser_data(run, 4, 0)["records"]]
    assert ids == [r[0] for r in data["records"]] == [r[0] for r in browser_data(run, 4, 0)["records"]]
    assert ids != [r[0] for r in browser_data(run, 4, 5)["records"]]          # another seed, another sample
    assert len(browser_data(run, 6, 0)["records"]) == 6 and len(browser_data(run, 6, 0)["rejected"]) == 5


def test_a_version_1_run_still_reports(run_folder):
    paths = build_report(run_folder, embedder=CountingEmbedder(), clusters=3)
    numbers = json.loads(paths.numbers.read_text())
    assert numbers["counts"]["schema_versions"] == {"1": 8}
    assert numbers["quality"]["judge"] is None and numbers["quality"]["signals"]["records_flagged"] == 0
    assert numbers["methods"]["by_method"] == {"self-instruct": {"tasks": 4, "records": 8}}
    assert numbers["methods"]["evol"] is None and numbers["methods"]["personas"] is None
    assert numbers["operations"] == {"endpoints": None, "concurrency": None, "batch": None}
    data = browser_payload(paths.html.read_text())
    assert len(data["records"]) == 8 and data["lookups"]["persona"] == []


def test_the_browser_script_cannot_end_its_own_element():
    from pathlib import Path

    import synth.report.browser as browser

    script = (Path(browser.__file__).parent / "browser.js").read_text()
    assert "</" not in script and "http" not in script


@pytest.mark.parametrize("name, index, change, fragment", [
    ("data.jsonl", 0, lambda r: r["provenance"].update(method=5), "data.jsonl:1: in provenance, its 'method' is 5"),
    ("data.jsonl", 4, lambda r: r["provenance"]["lineage"].update(round="1"),
     "data.jsonl:5: in provenance.lineage, its 'round' is \"1\""),
    ("data.jsonl", 5, lambda r: r["provenance"]["lineage"]["mutations"].append(3),
     "data.jsonl:6: in provenance.lineage, in mutations[2], it is 3, not an object"),
    ("data.jsonl", 4, lambda r: r["provenance"]["judge"]["quality"].update(score="5"),
     "data.jsonl:5: in provenance.judge.quality, its 'score' is \"5\""),
    ("data.jsonl", 0, lambda r: r["quality"].update(signals=[{"name": 3, "detail": ""}]),
     "data.jsonl:1: in quality, in signals[0], its 'name' is 3"),
    ("data.jsonl", 0, lambda r: r.update(quality=[]), "data.jsonl:1: in quality, it is [], not an object"),
    ("data.jsonl", 1, lambda r: r["provenance"]["strong_teacher"].update(cheap_cost_usd="cheap"),
     "data.jsonl:2: in provenance.strong_teacher, its 'cheap_cost_usd' is \"cheap\""),
    ("data.jsonl", 0, lambda r: r["provenance"].update(persona_id=7), "data.jsonl:1: in provenance, its 'persona_id' is 7"),
    ("rejected.jsonl", 0, lambda r: r.update(neighbour_id=3), "rejected.jsonl:1: its 'neighbour_id' is 3"),
    ("rejected.jsonl", 2, lambda r: r.update(detail=["x"]), "rejected.jsonl:3: its 'detail' is [\"x\"]"),
    ("tasks.jsonl", 0, lambda r: r.update(persona_id=1), "tasks.jsonl:1: its 'persona_id' is 1"),
    ("tasks.jsonl", 4, lambda r: r["lineage"].update(mutation=2), "tasks.jsonl:5: in lineage, its 'mutation' is 2"),
])
def test_a_damaged_new_field_is_one_line_naming_file_and_line(rich_run, name, index, change, fragment):
    from synth.errors import InputFileError

    _edit_jsonl(rich_run / name, index, change)
    with pytest.raises(InputFileError, match=re.escape(fragment)) as caught:
        collect(rich_run, embedder=CountingEmbedder())
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name, change, fragment", [
    ("manifest.json", lambda m: m["usage"]["judge"].update(cost_usd="free"),
     "manifest.json: in usage.judge, its 'cost_usd' is \"free\""),
    ("manifest.json", lambda m: m["endpoints"].update({"http://c/v1": [1]}),
     "manifest.json: in endpoints['http://c/v1'], it is [1], not an object"),
    ("manifest.json", lambda m: m["concurrency"]["timeline"].append([1, 2]),
     "manifest.json: in concurrency, timeline point 3 is [1, 2], not [seconds, limit, in flight, replies]"),
    ("manifest.json", lambda m: m["batch"].update(online_equivalent_usd=None),
     "manifest.json: in batch, its 'online_equivalent_usd' is null"),
    ("config.json", lambda c: c.update(personas=5), "config.json: its 'personas' is 5"),
    ("scores.summary.json", lambda s: s.update(usage={"cost_usd": "x"}),
     "scores.summary.json: in usage, its 'cost_usd' is \"x\""),
])
def test_a_damaged_new_json_field_is_one_line(rich_run, monkeypatch, capsys, name, change, fragment):
    path = rich_run / name
    value = json.loads(path.read_text()) if path.exists() else {}
    change(value)
    path.write_text(json.dumps(value))
    code, err = report_cli(monkeypatch, capsys, rich_run)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1 and fragment in err, err


def test_a_damaged_scores_file_is_one_line(rich_run, monkeypatch, capsys):
    with open(rich_run / "scores.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "rec-t3-0#quality", "record_id": "rec-t3-0", "rubric": "quality", "status": "ok",
                             "result": {"score": "high", "reason": ""}}) + "\n")
    code, err = report_cli(monkeypatch, capsys, rich_run)
    assert code == 2 and err.count("\n") == 1 and "scores.jsonl" in err, err


@pytest.mark.parametrize("one_key", [True, False], ids=["int64-keys", "unique-rows"])
def test_distinct_n_matches_counting_tuples(monkeypatch, one_key):
    import random

    if not one_key:
        monkeypatch.setattr(metrics, "KEY_LIMIT", 0)
    rng = random.Random(3)
    texts = [" ".join(rng.choice("ab cd ef gh ij kl".split()) for _ in range(rng.randint(0, 9))) for _ in range(40)]
    for n in (1, 2, 3, 4):
        grams = [tuple(w[i:i + n]) for w in map(metrics.words, texts) for i in range(len(w) - n + 1)]
        assert metrics.distinct_n(texts, n) == pytest.approx(len(set(grams)) / len(grams))


def test_contamination_and_the_evals_of_trained_students_are_shown(run_folder, embedder, tmp_path):
    flag = {"reason": "contaminated:gsm8k", "benchmark": "gsm8k", "item_id": "gsm8k-17", "stage": "ngram",
            "score": 0.92, "matched": "natalia sold clips to 48 of her friends", "item_text": "Natalia sold clips..."}
    with open(run_folder / "rejected.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "r6", "kind": "rejected", "stage": "decontaminate", "reason": "contaminated:gsm8k",
                             "text": "Natalia sold clips to 48 of her friends <b>in April</b>", "contamination": flag})
                 + "\n")
    (run_folder / "decontamination.json").write_text(json.dumps({
        "checked": 9, "flagged": 1, "settings": {"ngram": 13, "similarity": 0.9, "verifier": None},
        "benchmarks": {"gsm8k": {"items": 50, "flagged": 1, "by_stage": {"ngram": 1}, "items_matched": 1}}}))
    evaluation = tmp_path / "students" / "s1" / "evals" / "vs-base"
    evaluation.mkdir(parents=True)
    (evaluation / "summary.json").write_text(json.dumps({
        "status": "completed", "first": "tuned", "second": "base", "judge": "openai/judge",
        "results": {"pairs": 12, "win_rate": 0.625, "win_rate_ci95": [0.41, 0.8]}}))
    gone = tmp_path / "students" / "s2" / "evals" / "vs-base"
    damaged = tmp_path / "students" / "s3" / "evals" / "vs-base"
    damaged.mkdir(parents=True)
    (damaged / "summary.json").write_text('{"status": "compl')
    write_jsonl(run_folder / "evals.jsonl", [
        {"eval": str(evaluation), "student": str(tmp_path / "students" / "s1"), "win_rate": 0.1},
        {"eval": str(gone), "student": str(tmp_path / "students" / "s2"), "second": "base", "win_rate": 0.3},
        {"eval": str(damaged), "student": str(tmp_path / "students" / "s3"), "win_rate": 0.2}])
    paths = build_report(run_folder, embedder=embedder, clusters=3)
    numbers = json.loads(paths.numbers.read_text())
    contamination = numbers["evidence"]["contamination"]
    assert contamination["benchmarks"]["gsm8k"]["flagged"] == 1 and contamination["rejected"] == {"contaminated:gsm8k": 1}
    assert contamination["examples"][0]["item_id"] == "gsm8k-17"
    evals = {Path(e["eval"]).parent.parent.name: e for e in numbers["evidence"]["evals"]}
    assert evals["s1"]["win_rate"] == 0.625 and evals["s1"]["status"] == "completed"     # the summary, not the pointer
    assert evals["s2"]["status"] == "moved or deleted" and evals["s2"]["win_rate"] == 0.3
    assert evals["s3"]["status"].startswith(f"unreadable: {damaged / 'summary.json'}: not valid JSON")   # noted, no stop
    page, card = paths.html.read_text(), paths.card.read_text()
    assert "Contamination" in page and "gsm8k-17" in page and "&lt;b&gt;in April" in page and "<b>in April" not in page
    link = os.path.relpath(evaluation / "report.html", paths.html.parent)
    assert f'<a href="{link}">report.html</a>' in page and f"[report.html](<{link}>)" in card
    assert "Students trained on this run" in card and "0.625" in card
