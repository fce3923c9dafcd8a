"""synth's errors. The CLI turns each into a one-line message and an exit code.

    SynthError
    ├── ConfigError            a flag or config value that cannot work
    ├── InputFileError         a seed or dataset file that is missing or malformed (names file and line)
    ├── RunFolderError         an output folder that exists, or a resume folder that does not
    ├── PromptError            a template that is missing or lacks a variable
    ├── SchemaError            a record that fails the record schema (a bug, never written)
    ├── MissingKeyError        the teacher's API key variable is not set
    ├── LocalTeacherError      the embedded llama.cpp teacher could not start
    ├── BudgetExceeded         --max-cost reached; the run stopped cleanly
    ├── StorageError           the run folder cannot be written (disk full, file too large); resume after freeing space
    ├── StopRequested          Ctrl-C or SIGTERM: no new request is sent, those in flight finish
    └── TeacherError           a teacher call failed for good
        ├── FatalTeacherError  no retry can help: bad key, exhausted quota; stops the run
        │   └── TeacherOutageError  every attempt failed for longer than --max-outage; stops the run
        └── TransientTeacherError  retried and still failing (timeouts, 429, 5xx)
"""

from __future__ import annotations


class SynthError(Exception):
    """Base of every error synth raises on purpose."""

    exit_code = 2


class ConfigError(SynthError):
    pass


class InputFileError(SynthError):
    def __init__(self, path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class RunFolderError(SynthError):
    pass


class PromptError(SynthError):
    pass


class SchemaError(SynthError):
    pass


class MissingKeyError(SynthError):
    def __init__(self, variables: list[str], model: str):
        names = " or ".join(variables)
        super().__init__(f"teacher {model!r} needs an API key: set {names} in the environment")
        self.variables = variables


class LocalTeacherError(SynthError):
    pass


class BudgetExceeded(SynthError):
    exit_code = 3


class StorageError(SynthError):
    exit_code = 5


class StopRequested(SynthError):
    exit_code = 130


class TeacherError(SynthError):
    """A teacher call that ended without a usable reply. `reason` is a short slug."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


class FatalTeacherError(TeacherError):
    exit_code = 4


class TeacherOutageError(FatalTeacherError):
    pass


class TransientTeacherError(TeacherError):
    pass
