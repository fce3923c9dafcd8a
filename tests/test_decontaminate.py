"""`synth decontaminate` and the Decontaminator: benchmark files written here, never shipped and never fetched."""

import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from synth.cli import app as synth_app
from synth.decontam import (Benchmark, BenchmarkItem, DecontamConfig, Decontaminator, decontaminate, load_benchmarks,
                            normalize)
from synth.decontam.ngram import NgramIndex
from synth.decontam.text import words
from synth.errors import ConfigError, InputFileError

GSM = {"id": "gsm-1", "question": "A baker fills 12 trays with 18 rolls each and sells all but 25 of the rolls by "
                                  "noon. How many rolls does the baker sell before noon?",
       "answer": "The baker bakes 12 * 18 = 216 rolls in all. Selling all but 25 of them means 216 - 25 = 191 rolls "
                 "are sold before noon. #### 191"}
SHORT = {"id": "short-1", "question": "Name the largest moon of Saturn.", "answer": "Titan"}
PASSAGE = {"id": "read-1", "question": "Read the passage and answer. The lighthouse keeper climbed the spiral stairs "
                                       "every evening at dusk to wind the clockwork that turned the great lens. "
                                       "Question: what did the clockwork turn?", "answer": "the great lens"}
BENCHMARK = [GSM, SHORT, PASSAGE]
UNRELATED = [
    {"instruction": "Write a haiku about autumn leaves.", "input": "", "output": "Red leaves drift and fall"},
    {"instruction": "Summarise the paragraph.", "input": "Bees pollinate many crops that people eat.",
     "output": "Bees help crops.", "source": "kept as it is"},
    {"instruction": "List three uses of baking soda in the kitchen.", "input": "", "output": "Leavening, cleaning, "
     "deodorising."},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def bench_file(tmp_path):
    return write_jsonl(tmp_path / "my_eval.jsonl", BENCHMARK)


def ngram_config(tmp_path, **changes):
    return DecontamConfig(embedding=False, index_dir=str(tmp_path / "indexes"), **changes)


# ---- normalisation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Hello,   WORLD!", "hello world"),
    ("don't-stop_now", "don t stop now"),
    ("Ｆｕｌｌｗｉｄｔｈ ﬁle", "fullwidth file"),           # NFKC folds compatibility forms
    ("École\u00a0d’été", "école d été"),
    ("  \t\n ", ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
@example("\u0386\u0345").via("lowered, then composed anew by NFKC: one pass is not enough")
@example("\u03ab\u0301").via("the same with a dialytika")
def test_normalize_is_idempotent_and_words_agree(text):
    once = normalize(text)
    assert normalize(once) == once
    assert words(text) == once.encode("utf-8").split()


# ---- the n-gram index --------------------------------------------------------------------------------------

VOCAB = ["ant", "bee", "cat", "dog", "eel"]
SEPARATORS = [" ", ", ", " - ", "! ", "\n"]
N, MIN_WORDS = 4, 2


def _brute_force(items: list[list[str]], row: list[str]) -> bool:
    grams = {tuple(item[i:i + N]) for item in items for i in range(len(item) - N + 1)}
    wholes = {tuple(item) for item in items if MIN_WORDS <= len(item) < N}
    return any(tuple(row[i:i + m]) in (grams if m == N else wholes)
               for m in {N, *map(len, wholes)} for i in range(len(row) - m + 1))


def _spell(tokens: list[str], data) -> str:
    """The words with random case and punctuation between them: what normalisation has to see through."""
    out = []
    for token in tokens:
        out.append(token.upper() if data.draw(st.booleans()) else token)
        out.append(data.draw(st.sampled_from(SEPARATORS)))
    return "".join(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.lists(st.sampled_from(VOCAB), max_size=9), min_size=1, max_size=4),
       rows=st.lists(st.lists(st.sampled_from(VOCAB + ["fox", "gnu"]), max_size=14), min_size=1, max_size=4),
       data=st.data())
def test_a_row_matches_exactly_when_it_shares_an_ngram(items, rows, data):
    """Never a match without a shared n-gram (or a whole short question), never a miss with one; the item named
    really holds what matched."""
    benchmark = Benchmark("b", "b", [BenchmarkItem(str(i), _spell(item, data)) for i, item in enumerate(items)])
    index = NgramIndex.build(benchmark, N, MIN_WORDS)
    matches = index.match([[_spell(row, data)] for row in rows])
    assert [m is not None for m in matches] == [_brute_force(items, row) for row in rows]
    for row, match in zip(rows, matches):
        if match is not None:
            item = items[match.item]
            assert _brute_force([item], row)
            assert (match.coverage, match.span_words) == _coverage_and_run(item, row)
            assert f" {' '.join(row)} ".find(f" {match.span} ") >= 0 and len(match.span.split()) == match.span_words


def _coverage_and_run(item: list[str], row: list[str]) -> tuple[float, int]:
    """By brute force: the share of the item's words inside n-grams the row holds, and the longest run of row words
    covered by n-grams the item holds (a short question counts whole)."""
    m = N if len(item) >= N else len(item)
    item_grams = {tuple(item[i:i + m]) for i in range(len(item) - m + 1)}
    row_grams = {tuple(row[i:i + m]) for i in range(len(row) - m + 1)}
    covered_item, covered_row = set(), [False] * len(row)
    for i in range(len(item) - m + 1):
        if tuple(item[i:i + m]) in row_grams:
            covered_item.update(range(i, i + m))
    for i in range(len(row) - m + 1):
        if tuple(row[i:i + m]) in item_grams:
            covered_row[i:i + m] = [True] * m
    longest = run = 0
    for flag in covered_row:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return round(len(covered_item) / len(item), 4), longest


def test_items_shorter_than_n_match_whole_and_tiny_ones_are_left_out():
    benchmark = Benchmark("b", "b", [BenchmarkItem("short", "Name the largest moon of Saturn."),
                                     BenchmarkItem("tiny", "Why?")])
    index = NgramIndex.build(benchmark, 13, 4)
    found = index.match([["Quiz time: name the LARGEST moon of saturn, please."], ["Name the largest moon"],
                         ["why?"]])
    assert found[0] is not None and found[0].item == 0 and found[0].coverage == 1.0
    assert found[1] is None and found[2] is None
    assert index.stats["short_questions"] == 1 and index.stats["unindexed_questions"] == 1


def test_boilerplate_ngrams_shared_by_many_items_can_be_ignored():
    template = "Read the review below and say whether the writer liked the film or not at all."
    items = [BenchmarkItem(str(i), f"{template} Review: {topic} was a {mood} way to spend an evening with friends.")
             for i, (topic, mood) in enumerate([("Dune", "grand"), ("Cats", "dull"), ("Heat", "tense")])]
    row = [[f"{template} Review: Jaws was a scary ride from start to the very end."]]
    assert NgramIndex.build(Benchmark("b", "b", items), 13, 4).match(row)[0] is not None
    index = NgramIndex.build(Benchmark("b", "b", items), 13, 4, boilerplate=2)
    assert index.match(row) == [None] and index.stats["boilerplate_ngrams"] > 0
    assert index.match([[items[1].prompt]])[0].item == 1


def test_a_copy_names_its_own_item_when_items_share_template_wording():
    template = ("Pick one category for the following text. The options are company, school, artist, athlete, office "
                "holder, vehicle, building, natural place, village, animal, plant, album, film or book.")
    items = [BenchmarkItem(str(i), f"{text} {template}") for i, text in enumerate([
        "Apple Inc is a fruit company.", "The Louvre is a museum in Paris with a glass pyramid at its door.",
        "Rex the dog won a medal for bravery in the great flood of the year ninety two."])]
    index = NgramIndex.build(Benchmark("b", "b", items))
    found = index.match([[items[2].prompt], [items[1].prompt], [f"Sort this one: {template}"]])
    assert [m.item for m in found] == [2, 1, 0]
    assert found[0].coverage == 1.0 and found[2].coverage < 1.0


def test_index_round_trips_through_disk_and_damage_means_rebuild(tmp_path):
    benchmark = Benchmark("b", "b", [BenchmarkItem(row["id"], row["question"], (row["answer"],)) for row in BENCHMARK])
    index = NgramIndex.build(benchmark)
    index.save(tmp_path / "ix.npz")
    loaded = NgramIndex.load(tmp_path / "ix.npz")
    rows = [[GSM["question"].upper()], ["unrelated words only here"], ["x", SHORT["question"]]]
    assert loaded.match(rows) == index.match(rows) and np.array_equal(loaded.keys, index.keys)
    (tmp_path / "ix.npz").write_bytes(b"not an npz file")
    assert NgramIndex.load(tmp_path / "ix.npz") is None


# ---- the command and the library -------------------------------------------------------------------------

def test_every_kind_of_copy_names_its_item_and_clean_rows_are_kept_unchanged(tmp_path, bench_file):
    planted = [
        ({"instruction": GSM["question"], "input": "", "output": "191"}, "gsm-1", "prompt"),
        ({"instruction": PASSAGE["question"].upper().replace(".", "!!").replace(" ", "  "), "output": "?"},
         "read-1", "prompt"),
        ({"instruction": f"My teacher gave us this one, please explain every step: {GSM['question']} Thanks a lot!",
          "input": "", "output": "..."}, "gsm-1", "prompt"),
        ({"instruction": "Solve the word problem about rolls.", "input": "", "output": GSM["answer"]},
         "gsm-1", "response"),
        ({"messages": [{"role": "user", "content": "Quick quiz: name the largest moon of Saturn"},
                       {"role": "assistant", "content": "Titan"}]}, "short-1", "prompt"),
    ]
    data = write_jsonl(tmp_path / "data.jsonl", [UNRELATED[0], *[p for p, _, _ in planted], *UNRELATED[1:]])
    result = decontaminate(data, tmp_path / "clean.jsonl", ngram_config(tmp_path, against=[str(bench_file)]))
    assert read_jsonl(tmp_path / "clean.jsonl") == UNRELATED
    flagged = read_jsonl(tmp_path / "clean.contaminated.jsonl")
    assert [(f["item_id"], f["field"], f["stage"], f["benchmark"]) for f in flagged] == [
        (item, field, "ngram", "my_eval") for _, item, field in planted]
    assert [f["row"] for f in flagged] == [p for p, _, _ in planted]
    assert [f["line"] for f in flagged] == [2, 3, 4, 5, 6]
    assert flagged[0]["coverage"] == 1.0 and flagged[0]["matched"] == normalize(GSM["question"])
    assert flagged[3]["item_field"] == "answer" and "216 25 191" in flagged[3]["matched"]
    assert all(f["reason"] == "contaminated:my_eval" for f in flagged)
    assert (result.total, result.clean, dict(result.contaminated)) == (8, 3, {"my_eval": 5})
    summary = json.loads((tmp_path / "clean.decontamination.json").read_text())
    assert summary["benchmarks"]["my_eval"]["by_stage"] == {"ngram": 5}
    assert summary["benchmarks"]["my_eval"]["top_items"][0] == {"item_id": "gsm-1", "rows": 3}


def test_index_is_built_once_and_rebuilt_when_the_benchmark_changes(tmp_path, bench_file, monkeypatch):
    config = ngram_config(tmp_path, against=[str(bench_file)])
    Decontaminator.open(config=config)
    built = []
    original = NgramIndex.build.__func__
    monkeypatch.setattr(NgramIndex, "build", classmethod(lambda cls, *a, **k: built.append(1) or original(cls, *a, **k)))
    Decontaminator.open(config=config)
    assert built == []
    write_jsonl(bench_file, BENCHMARK + [{"id": "new", "question": "What is the tallest mountain in Africa?"}])
    checker = Decontaminator.open(config=config)
    assert built == [1]
    assert checker.check(["what is the tallest mountain in africa"])[0].item_id == "new"


def test_check_api_for_generate_and_a_pinned_run_folder(tmp_path, bench_file):
    run = tmp_path / "run" / "decontam"
    config = ngram_config(tmp_path, against=[str(bench_file)])
    first = Decontaminator.open(config=config, folder=run, pin=True)
    flags = first.check([GSM["question"], "Write a limerick about a goat."])
    assert flags[1] is None and flags[0].reason == "contaminated:my_eval" and flags[0].item_id == "gsm-1"
    bench_file.unlink()                          # --resume: the run keeps the benchmark as it was
    again = Decontaminator.open(config=config, folder=run, pin=True)
    assert again.check(["q", "r"], extra=[[("response", GSM["answer"])], []])[0].field == "response"
    assert again.summary()["benchmarks"]["my_eval"]["by_stage"] == {"ngram": 1}


def test_known_benchmark_fields_from_the_table(monkeypatch):
    import datasets

    asked = []

    def fake_load(hf_id, config=None, split=None, **_):
        asked.append((hf_id, config, split))
        return [{"question": f"Which planet is {config}?", "choices": ["Mars", "Venus"], "answer": 1}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    (mmlu,) = load_benchmarks(["mmlu"])
    assert asked == [("cais/mmlu", "all", "test")]
    assert mmlu.items == [BenchmarkItem("0", "Which planet is all?", ("Mars", "Venus"))]
    (arc,) = load_benchmarks(["arc"])
    assert [item.id for item in arc.items] == ["ARC-Challenge/0", "ARC-Easy/0"]


def test_a_saved_copy_of_a_known_benchmark_reads_by_the_table(tmp_path):
    path = write_jsonl(tmp_path / "mmlu.jsonl", [{"question": "What is 7 times 6 in base ten arithmetic?",
                                                  "subject": "math", "choices": ["42", "36"], "answer": 0}])
    (bench,) = load_benchmarks([str(path)])
    assert bench.name == "mmlu" and bench.items[0].answers == ("42", "36")


def test_unknown_shapes_need_field_and_errors_name_the_line(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"problem": "Add 2 and 2.", "solution": "4"}])
    with pytest.raises(InputFileError, match=r"odd\.jsonl:1: not a benchmark item .* --field"):
        load_benchmarks([str(path)])
    (bench,) = load_benchmarks([str(path)], ["problem", "solution"])
    assert bench.items[0] == BenchmarkItem("odd:1", "Add 2 and 2.", ("4",))
    with pytest.raises(ConfigError, match="neither a file or folder nor a known name"):
        load_benchmarks(["gsm9k"])


@pytest.mark.parametrize("out_name, flag", [("data.jsonl", "--out"), ("my_eval.jsonl", "--out")])
def test_outputs_never_overwrite_the_dataset_or_a_benchmark(tmp_path, bench_file, out_name, flag):
    data = write_jsonl(tmp_path / "data.jsonl", UNRELATED)
    before = (data.read_bytes(), bench_file.read_bytes())
    with pytest.raises(ConfigError, match=f"{flag} .* is or holds the input"):
        decontaminate(data, tmp_path / out_name, ngram_config(tmp_path, against=[str(bench_file)]))
    assert (data.read_bytes(), bench_file.read_bytes()) == before


def test_named_benchmark_offline_is_one_line(tmp_path):
    from tests.test_cli import assert_one_line_error, synth_cli

    data = write_jsonl(tmp_path / "data.jsonl", UNRELATED)
    result = synth_cli("decontaminate", str(data), "--against", "gsm8k", "--out", str(tmp_path / "clean.jsonl"),
                       env_extra={"HF_HUB_OFFLINE": "1"})
    assert_one_line_error(result, "benchmark 'gsm8k' (openai/gsm8k) is not in the local Hugging Face cache",
                          "to --against")
    assert result.returncode == 2 and not (tmp_path / "clean.jsonl").exists()


# ---- the embedding stage, with the real MiniLM, through the command --------------------------------------

def test_embedding_stage_catches_a_rewording_through_the_cli(tmp_path, bench_file):
    other = write_jsonl(tmp_path / "other_eval.jsonl", [{"id": "o-1", "question": "Which gas do plants absorb from "
                                                                                  "the air to make sugar?"}])
    rows = [{"instruction": "How many rolls are sold before noon if a baker makes 12 trays of 18 rolls and 25 rolls "
                            "are left unsold?"},
            {"instruction": "Which gas do plants absorb from the air to make sugar?"},
            {"instruction": "Give me three tips for a job interview."}]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    result = CliRunner().invoke(synth_app, [
        "decontaminate", str(data), "--against", str(bench_file), str(other), "--out", str(tmp_path / "clean.jsonl"),
        "--similarity", "0.75", "--index-dir", str(tmp_path / "indexes")])
    assert result.exit_code == 0, result.output
    flagged = read_jsonl(tmp_path / "clean.contaminated.jsonl")
    assert [(f["benchmark"], f["item_id"], f["stage"]) for f in flagged] == [
        ("my_eval", "gsm-1", "embedding"), ("other_eval", "o-1", "ngram")]
    assert 0.75 <= flagged[0]["score"] < 1
    assert read_jsonl(tmp_path / "clean.jsonl") == rows[2:]
    assert re.search(r"kept 1 of 3 rows .* my_eval 1, other_eval 1", result.output)


class _QuestionVerifier:
    """A stand-in for the LLM: the same problem when both texts ask about rolls."""

    stage = "test_verifier"

    def __init__(self):
        self.pairs = []

    def same_task(self, pairs):
        self.pairs += pairs
        return ["rolls" in a and "rolls" in b for a, b in pairs]


def test_the_band_goes_to_the_verifier_with_the_row_first(tmp_path, bench_file):
    verifier = _QuestionVerifier()
    config = DecontamConfig(against=[str(bench_file)], similarity=0.99, recall_threshold=0.2,
                            index_dir=str(tmp_path / "indexes"))
    checker = Decontaminator.open(config=config, verifier=verifier)
    texts = ["Count the rolls the baker sells if 25 of 216 rolls stay unsold.", "What do bakers wear at work?"]
    flags = checker.check(texts)
    assert flags[0].stage == "test_verifier" and flags[0].item_id == "gsm-1" and flags[1] is None
    assert verifier.pairs and all(a in texts for a, _ in verifier.pairs)
    assert checker.summary()["settings"]["recall_threshold"] == 0.2


def test_llm_verifier_asks_the_same_benchmark_item_question(tmp_path, bench_file, fake_key):
    from synth.prompts import render
    from synth.testing import FakeTeacherServer, Reply

    asked = []

    def script(body, attempt):
        prompt = body["messages"][-1]["content"]
        asked.append(prompt)
        row = prompt.split("Training example:\n")[1].split("\n\nBenchmark item:")[0]
        return Reply("yes" if "rolls" in row else "no")

    data = write_jsonl(tmp_path / "data.jsonl", [{"instruction": "Count the rolls the baker sells if 25 of 216 rolls "
                                                                 "stay unsold."}])
    with FakeTeacherServer(script) as server:
        config = DecontamConfig(against=[str(bench_file)], similarity=0.99, recall_threshold=0.2,
                                index_dir=str(tmp_path / "indexes"), verifier_model="openai/judge",
                                api_base=server.url, max_retries=0)
        result = decontaminate(data, tmp_path / "clean.jsonl", config)
    assert dict(result.by_stage) == {"llm_verifier": 1}
    assert asked[0] == render("same_benchmark_item", row=read_jsonl(data)[0]["instruction"], item=GSM["question"])
    assert result.summary["verifier_usage"]["calls"] == len(asked)
    assert (tmp_path / "clean.verifier" / "cache.sqlite").is_file()


@pytest.mark.parametrize("setting, message", [
    ({"recall_threshold": 0.95, "similarity": 0.9}, "--recall-threshold must be at most --similarity"),
    ({"verifier_model": "openai/x", "embedding": False}, "--verifier judges the embedding stage's band"),
    ({"ngram": 3}, "--ngram must be at least 4"),
    ({"similarity": 0}, "--similarity must be above 0"),
])
def test_settings_that_cannot_work_are_refused_before_any_work(tmp_path, bench_file, setting, message):
    data = write_jsonl(tmp_path / "data.jsonl", UNRELATED)
    with pytest.raises(ConfigError, match=message):
        decontaminate(data, tmp_path / "clean.jsonl", DecontamConfig(against=[str(bench_file)], **setting))
    assert not (tmp_path / "clean.jsonl").exists()


def test_a_missing_dataset_is_refused_before_any_index_is_built(tmp_path, bench_file):
    with pytest.raises(InputFileError, match="no such file or folder"):
        decontaminate(tmp_path / "missing.jsonl", tmp_path / "clean.jsonl", ngram_config(tmp_path, against=[str(bench_file)]))
    assert not (tmp_path / "indexes").exists()


# ---- the n-gram stage on several processes ---------------------------------------------------------------

def _many_rows(count: int) -> list[str]:
    copies = [GSM["question"], f"Please help: {PASSAGE['question']} Thanks.", SHORT["question"].lower()]
    return [copies[i % 3] if i % 7 == 0 else f"Write note {i} about the {i % 11} red boats in harbour {i % 5}."
            for i in range(count)]


def test_worker_processes_give_the_same_flags_and_a_dead_worker_only_costs_speed(tmp_path, bench_file):
    import os
    import signal

    texts = _many_rows(600)
    alone = Decontaminator.open(config=ngram_config(tmp_path, against=[str(bench_file)], workers=1))
    expected = alone.check(texts)
    assert not alone.workers._workers and sum(f is not None for f in expected) == 86
    lines: list[str] = []
    with Decontaminator.open(config=ngram_config(tmp_path, against=[str(bench_file)], workers=2),
                             log=lines.append) as checker:
        assert checker.check(texts[:200]) == expected[:200] and not checker.workers._workers    # one chunk: alone
        assert checker.check(texts) == expected
        worker = checker.workers._workers[0].process
        assert len(checker.workers._workers) == 1 and worker.pid != os.getpid() and worker.is_alive()
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
        assert checker.check(texts) == expected
        assert len(lines) == 1 and "going on in one process" in lines[0] and not checker.workers.parallel
        assert checker.summary()["checked"] == 1400


def test_closing_stops_the_workers_and_one_process_is_the_same_as_no_workers(tmp_path):
    import os
    import signal

    from synth.decontam.workers import NgramWorkers

    benchmark = Benchmark("b", "b", [BenchmarkItem(row["id"], row["question"], (row["answer"],)) for row in BENCHMARK])
    index = NgramIndex.build(benchmark)
    texts = [[text] for text in _many_rows(1100)]
    workers = NgramWorkers([index, index], processes=3)
    found = workers.match(texts)
    processes = [w.process for w in workers._workers]
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    os.kill(processes[0].pid, signal.SIGINT)             # Ctrl-C reaches the whole process group: the parent decides
    assert workers.match(texts) == found and processes[0].is_alive() and workers.parallel
    assert found == NgramWorkers([index, index], processes=1).match(texts) == [index.match(texts)] * 2
    assert [m.item for m in found[0] if m is not None] == [0, 2, 1] * 52 + [0, 2]
    workers.close()
    assert not any(p.is_alive() for p in processes) and all(p.exitcode == 0 for p in processes)
