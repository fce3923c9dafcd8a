"""A canary key appears nowhere synth writes or prints, and only the configured endpoint is contacted."""

import json
import subprocess
import sys
from pathlib import Path

from synth.testing import FakeTeacherServer, Fault, explain_reply

from .conftest import CANARY, child_env, run_synth, synth_args, write_queries

HERE = Path(__file__).parent


def test_canary_key_appears_nowhere(faulty_server, tmp_path):
    queries = write_queries(tmp_path / "q.jsonl", 60)
    printed = []
    result = run_synth(synth_args(faulty_server, queries, tmp_path / "run", "--concurrency", "8", "--timeout", "5"))
    printed += [result.stdout, result.stderr]
    report = run_synth(["report", str(tmp_path / "run")])
    printed += [report.stdout, report.stderr]
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "run" / "report" / "README.md").is_file()     # the dataset card is scanned below
    with FakeTeacherServer(lambda body, attempt: Fault("status", status=401, error_code="invalid_api_key",
                                                       message=f"Incorrect API key provided: {CANARY}")) as bad:
        refused = run_synth(synth_args(bad, queries, tmp_path / "refused"))
    printed += [refused.stdout, refused.stderr]
    assert refused.returncode == 4 and "401" in refused.stderr
    # The canary appears in no file synth wrote (cache and report/ included), nor in anything it printed.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
    for text in printed:
        assert CANARY not in text
    assert "Traceback" not in "".join(printed)


def test_only_the_configured_endpoint_is_contacted(tmp_path):
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        port = server.port
        queries = write_queries(tmp_path / "q.jsonl", 10)
        log = tmp_path / "net.jsonl"
        result = subprocess.run([sys.executable, str(HERE / "_netlog.py"), str(log),
                                 *synth_args(server, queries, tmp_path / "run")],
                                env=child_env(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    connects = {tuple(e["connect"][:2]) for e in events if "connect" in e and isinstance(e["connect"], list)}
    resolved = {e["resolve"] for e in events if "resolve" in e}
    assert connects == {("127.0.0.1", port)}
    assert resolved <= {"127.0.0.1", "localhost", None}
