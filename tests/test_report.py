"""`synth report` on a small run folder built here, with the real MiniLM; and the diversity metrics by hand."""

import base64
import json
import re

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

    result = CliRunner().invoke(synth_app, ["report", str(run_folder), "--out", str(tmp_path / "r"), "--clusters", "3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").is_file()
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
