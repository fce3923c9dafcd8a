"""`synth dedup`: every drop reason, every input format, and the command, with the real MiniLM for the gate."""

import gzip
import json

import pytest
from typer.testing import CliRunner

from synth.cli import app as synth_app
from synth.formats import example
from synth.gate.dedup import DedupConfig, dedup, read_dataset
from synth.gate.embeddings import shared_embedder
from synth.errors import InputFileError

ALPACA = [
    {"instruction": "Name three rivers that flow through Germany.", "input": "", "output": "Rhine, Elbe, Danube"},
    {"instruction": "Name three rivers that flow through Germany.", "input": "", "output": "Rhine, Main, Oder"},
    {"instruction": "  name three rivers that FLOW through   Germany. ", "input": "", "output": "..."},
    {"instruction": "Name three rivers that flow through Germany!", "input": "", "output": "..."},
    {"instruction": "Give me a recipe for a vegetarian lasagne.", "input": "", "output": "..."},
    {"instruction": "Summarise the paragraph below.", "input": "Cats sleep a lot.", "output": "..."},
    {"instruction": "Summarise the paragraph below.", "input": "Stocks fell on Monday.", "output": "..."},
]


@pytest.fixture(scope="module")
def embedder():
    return shared_embedder()


def write_json(path, rows):
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def write_jsonl(path, rows):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_cheap_and_embedding_reason_with_the_kept_id(tmp_path, embedder):
    source = write_json(tmp_path / "alpaca.json", ALPACA)
    result = dedup(source, tmp_path / "clean.jsonl", DedupConfig(threshold=0.9), embedder=embedder)
    dropped = {row["line"]: row for row in read_jsonl(tmp_path / "clean.dropped.jsonl")}
    assert {line: (row["reason"], row["kept_id"]) for line, row in dropped.items()} == {
        2: ("exact_duplicate", "row-1"), 3: ("normalized_duplicate", "row-1"), 4: ("near_duplicate", "row-1")}
    assert dropped[4]["stage"] == "embedding" and dropped[4]["score"] >= 0.9
    kept = read_jsonl(tmp_path / "clean.jsonl")
    assert kept == [ALPACA[0], ALPACA[4], ALPACA[5], ALPACA[6]]   # rows unchanged; same instruction, other input kept
    assert (result.total, result.kept, dict(result.dropped)) == (
        7, 4, {"exact_duplicate": 1, "normalized_duplicate": 1, "near_duplicate": 1})


class SameRiverVerifier:
    stage = "test_verifier"

    def same_task(self, pairs):
        return ["river" in a and "river" in b for a, b in pairs]


def test_same_task_reason_comes_from_the_verifier(tmp_path, embedder):
    rows = [{"id": "a", "prompt": "Name three rivers that flow through Germany."},
            {"id": "b", "prompt": "Which German rivers can you list? Give three."},
            {"id": "c", "prompt": "Name three mountains in Germany."}]
    source = write_jsonl(tmp_path / "plain.jsonl", rows)
    config = DedupConfig(threshold=0.95, recall_threshold=0.3)
    result = dedup(source, tmp_path / "out.jsonl", config, embedder=embedder, verifier=SameRiverVerifier())
    dropped = read_jsonl(tmp_path / "out.dropped.jsonl")
    assert [(d["id"], d["reason"], d["stage"], d["kept_id"]) for d in dropped] == [("b", "same_task", "test_verifier", "a")]
    assert result.kept == 2


@pytest.mark.parametrize("row, expected", [
    ({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
                   {"role": "assistant", "content": "Hello"}]}, "Hi there"),
    ({"conversations": [{"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4"}]}, "What is 2+2?"),
    ({"instruction": "Translate", "input": "bonjour", "output": "hello"}, "Translate\n\nbonjour"),
    ({"task": {"instruction": "Add the numbers"}, "instance": {"input": "2 and 3"}, "response": "5",
      "system_message": {"id": "s", "text": "Be brief."}}, "Add the numbers\n\n2 and 3"),
    ({"prompt": "Question: why is the sky blue?", "completion": "..."}, "Question: why is the sky blue?"),
])
def test_text_is_found_in_every_format(row, expected):
    assert example(row).prompt == expected


def test_gzipped_jsonl_and_ids_from_rows(tmp_path):
    source = write_jsonl(tmp_path / "data.jsonl.gz", [{"id": 7, "text": "one"}, {"id": 7, "text": "two"}])
    assert [(i.id, i.text, i.line) for i in read_dataset(source)] == [("7", "one", 1), ("7@2", "two", 2)]


def test_named_field_overrides_detection(tmp_path):
    source = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "template": "t1"}])
    assert read_dataset(source, "template")[0].text == "t1"


@pytest.mark.parametrize("content, message", [
    ('{"prompt": "fine"}\n{"prompt": broken\n', "d.jsonl:2: is not valid JSON"),
    ('{"prompt": "fine"}\n{"answer": "no text"}\n', "d.jsonl:2: no text to compare"),
    ('[{"instruction": "x"}, 5]', r"d.jsonl: row 2: expected a JSON object"),
    ("", "holds no rows"),
])
def test_malformed_input_names_file_and_line(tmp_path, content, message):
    (tmp_path / "d.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(InputFileError, match=message):
        read_dataset(tmp_path / "d.jsonl")


def test_command_writes_both_files_and_says_what_it_dropped(tmp_path, embedder):
    source = write_json(tmp_path / "alpaca.json", ALPACA)
    result = CliRunner().invoke(dedup_app(), ["dedup", str(source), "--out", str(tmp_path / "clean.jsonl"), "--threshold", "0.9"])
    assert result.exit_code == 0, result.output
    assert "kept 4 of 7" in result.output and "1 near_duplicate" in result.output
    assert len(read_jsonl(tmp_path / "clean.jsonl")) == 4 and len(read_jsonl(tmp_path / "clean.dropped.jsonl")) == 3


def test_command_refuses_to_overwrite_its_input(tmp_path):
    from synth.errors import ConfigError

    source = write_json(tmp_path / "a.json", ALPACA)
    with pytest.raises(ConfigError):
        dedup(source, source)


def dedup_app():
    return synth_app


@pytest.mark.parametrize("dropped_name, message", [
    ("clean.jsonl", "--dropped and --out name the same file"),
    ("a.json", "--dropped .*a.json is or holds the input"),
])
def test_dropped_path_may_not_clash_with_out_or_input(tmp_path, dropped_name, message):
    from synth.errors import ConfigError

    source = write_json(tmp_path / "a.json", ALPACA)
    before = source.read_bytes()
    with pytest.raises(ConfigError, match=message):
        dedup(source, tmp_path / "clean.jsonl", dropped_path=tmp_path / dropped_name)
    assert source.read_bytes() == before and not (tmp_path / "clean.jsonl").exists()


@pytest.mark.parametrize("setting, message", [
    ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"batch_size": -1}, "--batch-size must be at least 1"),
    ({"threshold": 1.5}, "--threshold must be at most 1, not 1.5"),
    ({"recall_threshold": 0.95}, "--recall-threshold must be at most --threshold"),
    ({"index": "tree"}, "--index must be"),
    ({"timeout": 0}, "--timeout must be above 0, not 0"),
    ({"max_retries": -1}, "--max-retries must be at least 0, not -1"),
    ({"max_outage": 0}, "--max-outage must be above 0, not 0"),
    ({"threshold": float("nan")}, "threshold must be a finite number, not nan"),
])
def test_bad_numbers_are_refused_before_any_work(tmp_path, setting, message):
    from synth.errors import ConfigError

    source = write_json(tmp_path / "a.json", ALPACA)
    with pytest.raises(ConfigError, match=message):
        dedup(source, tmp_path / "clean.jsonl", DedupConfig(**setting))
    assert not (tmp_path / "clean.jsonl").exists()


def _gzip_cut_in_half(path):
    data = gzip.compress(b'{"prompt": "one"}\n' * 200)
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("name, write, message", [
    ("u.jsonl", lambda p: p.write_bytes(b'{"prompt": "ok"}\n{"prompt": "\xff\xfe"}\n'), r"u\.jsonl:2: is not UTF-8 text"),
    ("u.json", lambda p: p.write_bytes(b'[{"prompt": "ok"},\n{"prompt": "\xff"}]'), r"u\.json:2: is not UTF-8 text"),
    ("cut.jsonl.gz", _gzip_cut_in_half, r"cut\.jsonl\.gz: is not a complete gzip file"),
    ("plain.jsonl.gz", lambda p: p.write_text('{"prompt": "one"}\n'), r"plain\.jsonl\.gz: is not a complete gzip file"),
])
def test_unreadable_bytes_are_an_input_file_error(tmp_path, name, write, message):
    write(tmp_path / name)
    with pytest.raises(InputFileError, match=message):
        read_dataset(tmp_path / name)


def test_dead_verifier_endpoint_ends_fast_with_an_outage_error(tmp_path, embedder, monkeypatch):
    import socket
    import time

    from synth.errors import TeacherOutageError

    monkeypatch.setattr("synth.gate.dedup.shared_embedder", lambda name: embedder)
    with socket.socket() as sock:           # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rows = [{"prompt": f"Tell me something interesting about {topic}."} for topic in ("rivers", "chess", "jazz", "tax law")]
    source = write_jsonl(tmp_path / "plain.jsonl", rows)
    started = time.monotonic()
    result = CliRunner().invoke(dedup_app(), [
        "dedup", str(source), "--out", str(tmp_path / "out.jsonl"), "--threshold", "0.99", "--recall-threshold", "0",
        "--verifier", "openai/x", "--api-base", f"http://127.0.0.1:{port}/v1",
        "--max-retries", "0", "--timeout", "2", "--max-outage", "2"])
    assert isinstance(result.exception, TeacherOutageError), result.output
    assert "answered none" in str(result.exception) and "--api-base" in str(result.exception)
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out.jsonl").exists()


def test_command_prints_no_blank_line_on_stderr(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr("synth.gate.dedup.shared_embedder", lambda name: embedder)
    source = write_json(tmp_path / "alpaca.json", ALPACA)
    result = CliRunner().invoke(dedup_app(), ["dedup", str(source), "--out", str(tmp_path / "clean.jsonl")])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
