"""The `synth` command: parse flags, build a config, make one library call, print the outcome."""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import SynthError
from .secrets import redact

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Make explained instruction-tuning data with teacher LLMs, and check it before training.")
prompts_app = typer.Typer(no_args_is_help=True, help="List and preview the bundled prompt templates.")
app.add_typer(prompts_app, name="prompts")
err = Console(stderr=True)
out = Console()


@app.command()
def generate(
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run folder to create (default runs/default)."),
    teacher: Optional[str] = typer.Option(None, help="Any litellm model string (gpt-4o, claude-..., ollama/..., openai/NAME with --api-base); 'local' for the embedded SmolLM2 teacher (default)."),
    api_base: Optional[str] = typer.Option(None, help="Base URL of an OpenAI-compatible server (vLLM, llama.cpp, Ollama)."),
    seeds: Optional[Path] = typer.Option(None, help="Seed tasks: synth/Self-Instruct JSONL or Alpaca JSON (default: the bundled seeds)."),
    queries: Optional[Path] = typer.Option(None, help="Explanation mode: answer these queries (JSONL/JSON, .gz; instruction/input, prompt/completion or messages) instead of bootstrapping new tasks."),
    num: Optional[int] = typer.Option(None, help="Records to make (default 100; in explanation mode, every query)."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this folder; finished work is not repeated or repaid."),
    overwrite: bool = typer.Option(False, help="Replace an existing run folder."),
    config: Optional[Path] = typer.Option(None, help="JSON file of settings; flags override it."),
    concurrency: Optional[int] = typer.Option(None, help="Teacher requests in flight at once (default 16)."),
    rpm: Optional[int] = typer.Option(None, help="Requests-per-minute limit."),
    tpm: Optional[int] = typer.Option(None, help="Tokens-per-minute limit."),
    max_cost: Optional[float] = typer.Option(None, help="Hard cap on spending in USD; the run stops cleanly before it."),
    input_cost: Optional[float] = typer.Option(None, help="Price of prompt tokens in USD per million, for teachers litellm has no price for (with --output-cost)."),
    output_cost: Optional[float] = typer.Option(None, help="Price of completion tokens in USD per million (with --input-cost)."),
    max_outage: Optional[float] = typer.Option(None, help="Seconds the teacher may fail every attempt before the run stops, to be resumed (default 600)."),
    max_tokens: Optional[int] = typer.Option(None, help="Completion tokens per teacher call (default 1024)."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (default 0.7)."),
    timeout: Optional[float] = typer.Option(None, help="Hard deadline per request attempt in seconds (default 120)."),
    max_retries: Optional[int] = typer.Option(None, help="Retries per request on 408/409/429/5xx/connection errors (default 5)."),
    novelty_threshold: Optional[float] = typer.Option(None, help="Reject a task this cosine-similar to the pool (default 0.9)."),
    verifier: Optional[str] = typer.Option(None, help="litellm model asked 'same task?' for candidates in the borderline band (default off)."),
    recall_threshold: Optional[float] = typer.Option(None, help="Lower edge of the band the verifier judges (default 0.4)."),
    novelty_index: Optional[str] = typer.Option(None, help="auto | flat | hnsw (default auto: exact up to 1M tasks)."),
    embedder: Optional[str] = typer.Option(None, help="sentence-transformers model folder for the gate (default: bundled MiniLM)."),
    instances_per_task: Optional[int] = typer.Option(None, help="Instances (and so records) per new task (default 2)."),
    seed: Optional[int] = typer.Option(None, help="Random seed for example and system-message choice (default 0)."),
    cache: Optional[Path] = typer.Option(None, help="Request cache file to share across runs (default RUN/cache.sqlite)."),
) -> None:
    """Bootstrap new tasks from seeds, gate them for novelty, and answer them with explanation traces."""
    from .config import GenerateConfig
    from .settings import load_config_file
    from .generate import generate as run_generate

    base = GenerateConfig.from_dict(load_config_file(config), str(config)) if config else None
    overrides = dict(
        out=str(out_dir) if out_dir else None, teacher=teacher, api_base=api_base, seeds=str(seeds) if seeds else None,
        queries=str(queries) if queries else None,
        num=num, concurrency=concurrency, rpm=rpm, tpm=tpm, max_cost=max_cost, max_tokens=max_tokens,
        input_cost=input_cost, output_cost=output_cost, max_outage=max_outage,
        temperature=temperature, timeout=timeout, max_retries=max_retries, novelty_threshold=novelty_threshold,
        verifier=verifier, recall_threshold=recall_threshold, novelty_index=novelty_index,
        embedder=embedder, instances_per_task=instances_per_task, seed=seed, cache=str(cache) if cache else None,
    )
    with _progress() as report:
        result = run_generate(base, resume=resume, overwrite=overwrite, progress=report, **overrides)
    counts = result.manifest["counts"]
    usage = result.manifest["usage"]
    out.print(f"{result.status}: {result.records} records in {result.path} "
              f"({sum(counts['rejected'].values())} rejected, {sum(counts['failed'].values())} failed, "
              f"{usage['prompt_tokens'] + usage['completion_tokens']} tokens, ${usage.get('total_cost_usd', usage['cost_usd']):.4f})")
    if result.message:
        err.print(result.message, soft_wrap=True)
    if result.status != "completed":
        raise typer.Exit({"stopped_budget": 3, "interrupted": 130}.get(result.status, 1))


@app.command()
def export(
    run: Path = typer.Argument(..., help="A synth run folder (or its data.jsonl)."),
    format: str = typer.Option("openai-chat", "--format", help="openai-chat | alpaca | sharegpt | hf"),
    out_path: Path = typer.Option(..., "--out", help="File to write (a folder for hf)."),
) -> None:
    """Write a run's records in a format trainers read."""
    from .export import export as run_export

    count = run_export(run, format, out_path, warn=lambda message: _say(f"warning: {message}"))
    out.print(f"wrote {count} records to {out_path} ({format})")


@prompts_app.command("list")
def prompts_list() -> None:
    """Names of the prompt templates and system messages."""
    from .prompts import system_messages, template_names

    for name in template_names():
        out.print(name)
    for message in system_messages():
        out.print(f"system:{message.id}")


@prompts_app.command("show")
def prompts_show(name: str) -> None:
    """Print a template (or system:ID) as shipped."""
    from .prompts import system_message, template_text

    text = system_message(name.split(":", 1)[1]).text if name.startswith("system:") else template_text(name)
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _register_commands() -> None:
    from .dedup import dedup_command
    from .report.command import report_command
    from .training.command import train_command

    app.command("dedup")(dedup_command)
    app.command("report")(report_command)
    app.command("train")(train_command)


_register_commands()


class _progress:
    """A rich progress bar fed by the pipeline's progress callback."""

    bar = None

    def __enter__(self):
        return self

    def _start(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("records"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=err, transient=False)
        self.task = self.bar.add_task("generate", total=None, info="starting")
        self.bar.start()

    def __call__(self, state: dict) -> None:
        """Called by the pipeline on every outcome; the bar appears with the first one, after set-up succeeded."""
        if self.bar is None:
            self._start()
        info = f"rejected {state['rejected']}  failed {state['failed']}  tasks {state['tasks']}  ${state['cost']:.4f}"
        self.bar.update(self.task, completed=min(state["records"], state["target"]), total=state["target"], info=info)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


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


def _say(line: str) -> None:
    err.print(line, markup=False, highlight=False, soft_wrap=True)


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
        _say(_usage_error_line(exc))
        sys.exit(2)
    except click_errors as exc:
        _say(f"error: {' '.join(exc.format_message().split())}")
        sys.exit(exc.exit_code)
    except SynthError as exc:
        _say(f"error: {redact(str(exc))}")
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, *aborts):
        err.print("interrupted: everything finished so far is saved; continue with the same command and --resume",
                  soft_wrap=True)
        sys.exit(130)
    except PATH_ERRORS as exc:      # a path the user gave that is the wrong kind of thing, or not there
        where = f"{exc.filename}: " if exc.filename else ""
        _say(f"error: {where}{exc.strerror or exc}; give another path")
        sys.exit(2)
    except OSError as exc:
        _say(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        sys.exit(1)
