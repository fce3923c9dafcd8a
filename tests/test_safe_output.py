"""No data lost: an output folder is replaced only when it is provably synth's, only once the new run has made
progress, never while another process holds it, and never when it is, holds or sits inside the data it reads."""

import json
import socket

import pytest

import synth
from synth.errors import ConfigError, FatalTeacherError, RunFolderBusy, RunFolderError, StorageError
from synth.files import FolderLock
from synth.testing import FakeTeacherServer, explain_reply

from test_cli import assert_one_line_error, synth_cli


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "run.lock"}


@pytest.fixture
def queries(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Name a colour, number {i}."}) + "\n" for i in range(4)))
    return path


@pytest.fixture
def server():
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as running:
        yield running


def make_run(out, queries, server, **settings):
    return synth.generate(out=str(out), queries=str(queries), teacher="openai/fake-teacher", api_base=server.url,
                          **settings)


def test_an_overwrite_that_never_starts_puts_the_old_run_back(tmp_path, queries, server):
    run = tmp_path / "demo"
    assert make_run(run, queries, server).records == 4
    before = snapshot(run)
    with pytest.raises(FatalTeacherError, match="nothing answers"):
        synth.generate(out=str(run), overwrite=True, queries=str(queries), teacher="openai/x",
                       api_base=f"http://127.0.0.1:{closed_port()}/v1", max_retries=0)
    assert snapshot(run) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []      # nothing left aside


def test_an_overwrite_that_makes_progress_replaces_the_old_run(tmp_path, queries, server):
    run = tmp_path / "demo"
    make_run(run, queries, server)
    (run / "openai-chat.jsonl").write_text("{}\n")            # an export beside the run, as make demo leaves
    result = make_run(run, queries, server, overwrite=True, num=2)
    assert result.records == 2 and not (run / "openai-chat.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_overwrite_refuses_a_folder_synth_did_not_make(tmp_path, queries, server):
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    (project / "NOTES.md").write_text("my notes\n")
    (project / "config.json").write_text('{"teacher": "x"}\n')
    before = snapshot(project)
    with pytest.raises(RunFolderError, match="not provably a synth run folder"):
        make_run(project, queries, server, overwrite=True)
    assert snapshot(project) == before and server.attempts == []


def test_a_run_folder_with_files_of_the_users_is_not_replaced(tmp_path, queries, server):
    run = tmp_path / "run"
    make_run(run, queries, server)
    (run / "NOTES.md").write_text("mine\n")
    with pytest.raises(RunFolderError, match="NOTES.md, which synth did not write"):
        make_run(run, queries, server, overwrite=True)
    assert (run / "NOTES.md").read_text() == "mine\n" and (run / "data.jsonl").is_file()


def test_a_cache_that_cannot_work_is_refused_before_the_old_run_is_touched(tmp_path, queries, server):
    run = tmp_path / "base"
    make_run(run, queries, server)
    before = snapshot(run)
    (tmp_path / "adir").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        make_run(run, queries, server, overwrite=True, cache=str(tmp_path / "adir"))
    assert snapshot(run) == before


def test_an_overwrite_keeps_the_cache_it_was_told_to_reuse(tmp_path, queries, server):
    run = tmp_path / "cc"
    make_run(run, queries, server)
    sent = len(server.attempts)
    result = make_run(run, queries, server, overwrite=True, cache=str(run / "cache.sqlite"))
    assert result.records == 4 and len(server.attempts) == sent           # every reply from the reused cache


def test_a_second_process_on_a_run_folder_is_refused_naming_the_first(tmp_path, queries, server):
    import os

    run = tmp_path / "run"
    make_run(run, queries, server, num=2)
    with FolderLock(run):
        with pytest.raises(RunFolderBusy, match=f"in use by process {os.getpid()}"):
            synth.generate(resume=str(run))
        result = synth_cli("generate", "--resume", str(run), unset=())
        assert result.returncode == 2
        assert_one_line_error(result, f"in use by process {os.getpid()}")
    assert synth.generate(resume=str(run)).status == "completed"          # released: the run goes on


def test_a_run_folder_that_cannot_be_written_is_exit_5(tmp_path, monkeypatch):
    import errno
    import os

    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith("run.lock"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(StorageError) as caught:
        FolderLock(tmp_path).acquire()
    assert caught.value.exit_code == 5


@pytest.mark.parametrize("out", ["run", "run/student", "."])
def test_a_train_output_may_not_be_hold_or_sit_inside_its_data(tmp_path, queries, server, out):
    run = tmp_path / "run"
    make_run(run, queries, server)
    before = snapshot(run)
    with pytest.raises(ConfigError, match="is or holds the input|sits inside the input"):
        synth.train(data=str(run), out=str(tmp_path / out), overwrite=True)
    assert snapshot(run) == before


def test_train_overwrite_with_a_bad_path_keeps_the_old_student_byte_for_byte(tmp_path):
    student = tmp_path / "students" / "x"
    (student / "adapter").mkdir(parents=True)
    (student / "adapter" / "adapter_model.safetensors").write_bytes(b"\x00weights" * 100)
    (student / "train_config.json").write_text(json.dumps({"data": "runs/old", "out": str(student)}))
    (student / "summary.json").write_text('{"steps": 9}\n')
    before = snapshot(student)
    result = synth_cli("train", "/no/such/path", "--out", str(student), "--overwrite")
    assert result.returncode == 2
    assert_one_line_error(result, "/no/such/path")
    assert snapshot(student) == before


def test_train_overwrite_refuses_a_folder_that_is_not_a_student(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("\\documentclass{article}\n")
    with pytest.raises(RunFolderError, match="not a synth train output folder"):
        synth.train(data=str(tmp_path / "d.jsonl"), out=str(folder), overwrite=True)
    assert (folder / "thesis.tex").is_file()


@pytest.mark.parametrize("out", ["run/data.jsonl", "run"])
def test_dedup_and_export_never_write_over_their_input(tmp_path, queries, server, out):
    run = tmp_path / "run"
    make_run(run, queries, server)
    before = snapshot(run)
    with pytest.raises(ConfigError):
        synth.export(run, "openai-chat", tmp_path / out)
    with pytest.raises(ConfigError):
        synth.dedup(run / "data.jsonl" if out == "run/data.jsonl" else run, tmp_path / out)
    assert snapshot(run) == before


def test_export_to_a_folder_is_one_line(tmp_path, queries, server):
    run = tmp_path / "run"
    make_run(run, queries, server)
    (tmp_path / "adir").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        synth.export(run, "openai-chat", tmp_path / "adir")
