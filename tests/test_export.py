"""`synth export` reads a run or any dataset synth reads, says which line it cannot read, and never writes into its
input."""

import json

import pytest

from synth.errors import ConfigError, InputFileError
from synth.formats.export import export, load_records
from test_cli import assert_one_line_error, synth_cli

WHAT_EXPORT_READS = "export reads a synth run folder or any dataset synth reads"


def record(number):
    return {"id": f"rec-{number}", "task": {"id": f"task-{number}", "instruction": f"Explain fact {number}.", "kind": "open_qa"},
            "instance": {"index": 0, "input": ""}, "system_message": {"id": "plain", "text": "Explain your reasoning."},
            "response": f"Fact {number}, explained.", "provenance": {"teacher": "openai/fake-teacher"}}


def record_lines(count):
    return [json.dumps(record(i)) + "\n" for i in range(count)]


@pytest.fixture
def run(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "data.jsonl").write_text("".join(record_lines(5)), encoding="utf-8")
    return tmp_path / "run"


@pytest.mark.parametrize("fmt, out", [
    ("openai-chat", "run/data.jsonl"),
    ("openai-chat", "run/manifest.json"),
    ("hf", "run/gate"),
    ("hf", "run"),
    ("hf", "."),
])
def test_out_over_the_input_run_is_refused(run, fmt, out):
    before = sorted((p.name, p.read_bytes()) for p in run.iterdir())
    with pytest.raises(ConfigError, match="would write over the input"):
        export(run, fmt, run.parent / out)
    assert sorted((p.name, p.read_bytes()) for p in run.iterdir()) == before


def test_a_new_file_in_the_run_folder_is_allowed(run):
    assert export(run, "openai-chat", run / "openai-chat.jsonl") == 5     # what `make demo` does
    assert len((run / "data.jsonl").read_text().splitlines()) == 5


def test_out_equal_to_an_input_file_is_refused(tmp_path):
    source = tmp_path / "records.jsonl"
    source.write_text("".join(record_lines(2)), encoding="utf-8")
    with pytest.raises(ConfigError, match="would write over the input"):
        export(source, "openai-chat", source)
    assert len(source.read_text().splitlines()) == 2


def test_cli_refuses_to_overwrite_the_run_in_one_line(run):
    before = (run / "data.jsonl").read_bytes()
    result = synth_cli("export", str(run), "--out", str(run / "data.jsonl"))
    assert result.returncode == 2
    assert_one_line_error(result, "would write over the input", "write it elsewhere")
    assert (run / "data.jsonl").read_bytes() == before


def test_a_cut_last_line_is_skipped_and_reported(run):
    lines = record_lines(5)
    (run / "data.jsonl").write_text("".join(lines[:4]) + lines[4][:40], encoding="utf-8")
    notices = []
    assert len(load_records(run, warn=notices.append)) == 4
    assert len(notices) == 1 and "data.jsonl:5: skipped a last line cut short" in notices[0]


def test_cli_says_it_skipped_a_cut_last_line(run, tmp_path):
    lines = record_lines(5)
    (run / "data.jsonl").write_text("".join(lines[:4]) + lines[4][:40], encoding="utf-8")
    result = synth_cli("export", str(run), "--out", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0 and "wrote 4 records" in result.stdout
    assert "warning:" in result.stderr and "skipped a last line cut short" in result.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 4


def test_last_line_without_newline_that_parses_is_kept(run):
    (run / "data.jsonl").write_text("".join(record_lines(3)).rstrip("\n"), encoding="utf-8")
    assert len(load_records(run, warn=pytest.fail)) == 3


def _gzip(path):
    import gzip

    path.write_bytes(gzip.compress("".join(record_lines(3)).encode()))


@pytest.mark.parametrize("name, write, message", [
    ("cut_middle.jsonl", lambda p: p.write_text("".join(record_lines(2)) + record_lines(3)[2][:40] + "\n" + record_lines(1)[0]),
     r"cut_middle\.jsonl:3: is not valid JSON"),
    ("bad.jsonl", lambda p: p.write_text("{oops\n"), r"bad\.jsonl:1: is not valid JSON"),
    ("utf.jsonl", lambda p: p.write_bytes(record_lines(1)[0].encode() + b'\xff\xfe\n'), r"utf\.jsonl:2: is not UTF-8 text"),
    ("empty.jsonl", lambda p: p.write_text(""), r"empty\.jsonl: holds no rows"),
    ("blank.jsonl", lambda p: p.write_text("\n\n"), r"blank\.jsonl: holds no rows"),
    ("nums.jsonl", lambda p: p.write_text("1\n2\n"), r"nums\.jsonl:1: expected a JSON object, not int"),
    ("colours.jsonl", lambda p: p.write_text(json.dumps({"colour": "red"}) + "\n"),
     r"colours\.jsonl:1: not a row shape synth knows.*" + WHAT_EXPORT_READS),
    ("no_system.jsonl", lambda p: p.write_text(json.dumps({**record(0), "system_message": {"id": "x"}}) + "\n"),
     r"no_system\.jsonl:1: not a synth record: system_message\.text must be a string"),
])
def test_bad_input_names_file_and_line(tmp_path, name, write, message):
    write(tmp_path / name)
    with pytest.raises(InputFileError, match=message) as info:
        export(tmp_path / name, "alpaca", tmp_path / "out.json")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("name, write", [
    ("alpaca.jsonl", lambda p: p.write_text(json.dumps({"instruction": "a", "input": "", "output": "b"}) + "\n")),
    ("data.jsonl.gz", _gzip),
])
def test_any_dataset_exports_not_only_runs(tmp_path, name, write):
    write(tmp_path / name)
    assert export(tmp_path / name, "sharegpt", tmp_path / "out.jsonl") >= 1
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert all(row["conversations"][-1]["from"] == "gpt" for row in rows)


def test_load_records_wants_synth_records(tmp_path):
    (tmp_path / "alpaca.jsonl").write_text(json.dumps({"instruction": "a", "input": "", "output": "b"}) + "\n")
    with pytest.raises(InputFileError, match=r"alpaca\.jsonl:1: not a synth record \(no 'id' string\)"):
        load_records(tmp_path / "alpaca.jsonl")


def test_cli_bad_row_is_one_line_with_exit_2(tmp_path):
    (tmp_path / "rows.jsonl").write_text(json.dumps({"colour": "red"}) + "\n")
    result = synth_cli("export", str(tmp_path / "rows.jsonl"), "--format", "alpaca", "--out", str(tmp_path / "o.json"))
    assert result.returncode == 2
    assert_one_line_error(result, "rows.jsonl:1: not a row shape synth knows", WHAT_EXPORT_READS)
