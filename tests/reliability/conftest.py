"""Shared pieces of the reliability battery: query files, the faulty scripted teacher, synth in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synth.testing import FakeTeacherServer, explain_reply, fault_mix
from synth.testing.soak import outcomes, write_queries  # noqa: F401  (the battery's shared accounting)

CANARY = "sk-canary-5f1e8c2a9b7d4e6f0a1b2c3d"


def synth_args(server: FakeTeacherServer, queries: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", "--queries", str(queries), "--teacher", "openai/fake-teacher", "--api-base", server.url,
            "--out", str(out), *extra]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTH_TEST_")}
    env.update({"OPENAI_API_KEY": CANARY, "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def start_synth(args: list[str], env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "synth", *args], env=env or child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def run_synth(args: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synth", *args], env=env or child_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def faulty_server():
    """A teacher where about 30% of attempts fail in one of the ways real servers fail."""
    with FakeTeacherServer(fault_mix(explain_reply, seed=7, rate=0.3, timeout=5.0)) as server:
        yield server
