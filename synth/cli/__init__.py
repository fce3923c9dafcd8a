"""The `synth` command. One module per command, each thin: parse flags, build its config, make one library call,
print the outcome. Every error becomes one line on stderr and the exit code `synth.errors.EXIT_CODES` gives it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from ..errors import EXIT_CODES, SynthError
from ..teacher.secrets import redact
from . import dedup, export, generate, prompts, report, select, train  # noqa: F401  (each registers its command)
from . import decontaminate  # noqa: F401
from . import eval  # noqa: F401  (registers synth eval)
from . import judge  # noqa: F401  (registers synth judge)
from ._common import app, say

__all__ = ["app", "main"]

PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _click_errors() -> tuple[tuple, tuple, tuple, tuple]:
    """click's error classes and typer's copies of them (typer vendors its own click):
    (help asked for by giving no arguments, usage errors, other click errors, aborts)."""
    import click
    import typer.exceptions

    modules = [click.exceptions, typer.exceptions]
    with contextlib.suppress(ImportError):
        from typer._click import exceptions as vendored

        modules.append(vendored)
    return tuple(tuple(getattr(m, name) for m in modules if hasattr(m, name))
                 for name in ("NoArgsIsHelpError", "UsageError", "ClickException", "Abort"))


def _usage_error_line(exc) -> str:
    """One line: click's message and where to look, never the Usage block."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    command = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "synth"
    return f"error: {message} (see {command} --help)"


def main() -> None:
    import warnings

    no_args, usage_errors, click_errors, aborts = _click_errors()
    # Cancelling a call that never started (on a stop or a fatal error) is expected, not worth a warning.
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        code = app(standalone_mode=False, prog_name="synth")
        sys.exit(code if isinstance(code, int) else 0)
    except no_args as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except usage_errors as exc:
        say(_usage_error_line(exc))
        sys.exit(EXIT_CODES["usage"])
    except click_errors as exc:
        say(f"error: {' '.join(exc.format_message().split())}")
        sys.exit(exc.exit_code)
    except SynthError as exc:
        say(f"error: {redact(str(exc))}")
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, asyncio.CancelledError, *aborts):
        say("interrupted: everything finished so far is saved; continue with the same command and --resume")
        sys.exit(EXIT_CODES["interrupted"])
    except PATH_ERRORS as exc:      # a path the user gave that is the wrong kind of thing, or not there
        where = f"{exc.filename}: " if exc.filename else ""
        say(f"error: {where}{exc.strerror or exc}; give another path")
        sys.exit(EXIT_CODES["usage"])
    except OSError as exc:          # permissions, a read-only or full disk: the output cannot be written
        say(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ") + "; check the path's permissions "
            "and the free space")
        sys.exit(EXIT_CODES["storage"])
