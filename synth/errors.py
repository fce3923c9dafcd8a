"""synth's errors. The CLI turns each into a one-line message and an exit code.

    SynthError
    ├── ConfigError            a flag or config value that cannot work
    ├── InputFileError         a seed or dataset file that is missing or malformed (names file and line)
    ├── RunFolderError         an output folder that exists, a resume folder that does not, a damaged run file
    │   └── RunFolderBusy      another process holds the run folder's lock
    ├── PromptError            a template that is missing or lacks a variable
    ├── SchemaError            a record that fails the record schema (a bug, never written)
    ├── MissingKeyError        the teacher's API key variable is not set
    ├── LocalTeacherError      the embedded llama.cpp teacher could not start
    ├── BudgetExceeded         --max-cost reached; the run stopped cleanly
    ├── StorageError           the run folder cannot be written (disk full, file too large); resume after freeing space
    ├── StopRequested          Ctrl-C or SIGTERM: no new request is sent, those in flight finish
    └── TeacherError           a teacher call failed for good
        ├── FatalTeacherError  no retry can help: bad key, exhausted quota; stops the run
        │   ├── TeacherOutageError      every attempt failed for longer than --max-outage; stops the run
        │   └── TeacherRefusesSettings  every request refused (400) before any reply: the settings are wrong
        └── TransientTeacherError  retried and still failing (timeouts, 429, 5xx)

Every error names its outcome (`outcome`); `EXIT_CODES` is the one table from outcome to exit code, for errors and
for the ways a run can end alike (`RunResult.status`).
"""

from __future__ import annotations

EXIT_CODES = {
    "completed": 0,          # done
    "stalled": 1,            # bootstrap prompts stopped adding tasks; the message says what to change
    "diverged": 1,           # training loss became NaN or inf
    "failed": 1,             # a run that ended on an error of its own
    "usage": 2,              # a user error: a bad setting, a wrong path, a damaged input file
    "budget": 3,             # stopped at --max-cost
    "teacher": 4,            # the teacher refused for good, stayed down past --max-outage, or never answered
    "storage": 5,            # the output folder cannot be written
    "incomplete": 6,         # finished, but some requests failed for good; --resume sends them again
    "interrupted": 130,      # Ctrl-C or SIGTERM
}
RUN_STATUSES = {"completed": "completed", "stalled": "stalled", "stopped_budget": "budget",
                "interrupted": "interrupted", "incomplete": "incomplete", "failed": "failed"}


def exit_code(error: BaseException | str) -> int:
    """The exit code of an error, or of a run's final status."""
    if isinstance(error, str):
        return EXIT_CODES[RUN_STATUSES.get(error, "failed")]
    return EXIT_CODES[getattr(error, "outcome", "failed")]


class SynthError(Exception):
    """Base of every error synth raises on purpose."""

    outcome = "usage"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


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


class RunFolderBusy(RunFolderError):
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
    outcome = "budget"


class StorageError(SynthError):
    outcome = "storage"


class StopRequested(SynthError):
    outcome = "interrupted"


class TeacherError(SynthError):
    """A teacher call that ended without a usable reply. `reason` is a short slug."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


class FatalTeacherError(TeacherError):
    outcome = "teacher"


class TeacherOutageError(FatalTeacherError):
    pass


class TeacherRefusesSettings(FatalTeacherError):
    outcome = "usage"


class TransientTeacherError(TeacherError):
    pass
