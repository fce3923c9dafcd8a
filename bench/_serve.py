"""A loopback teacher in a process of its own, so its handler threads do not share a GIL with the client measured.

    python bench/_serve.py pipeline|throughput

Prints the base URL, then reads commands on stdin: `reset` forgets the attempt log; `dump PATH` writes it as JSON
lines ({"outcome", "latency"}) and prints `ok`. It exits when stdin closes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _latency import latency_for, make_script, query_of  # noqa: E402
import synth.testing.server as server_module  # noqa: E402
from synth.testing import FakeTeacherServer  # noqa: E402


def pipeline_script(body, attempt):
    from conftest import pipeline_script as scripted

    reply = scripted(body, attempt)
    reply.delay = latency_for(query_of(body))
    return reply


def _stage(body: dict) -> str:
    prompt = query_of(body)
    if "numbered list starting at" in prompt:
        return "bootstrap"
    if "Is it classification?" in prompt:
        return "classify"
    return "instances" if "Use exactly this format" in prompt else "answer"


def main() -> None:
    script = pipeline_script if sys.argv[1] == "pipeline" else make_script(server_module)
    with FakeTeacherServer(script) as server:
        print(server.url, flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "reset":
                server.reset()
            elif command == "dump":
                with open(arg, "w", encoding="utf-8") as fh:
                    for a in server.attempts:
                        fh.write(json.dumps({"outcome": a.outcome, "latency": latency_for(query_of(a.body)), "at": a.at,
                                             "stage": _stage(a.body)}) + "\n")
            print("ok", flush=True)


if __name__ == "__main__":
    main()
