"""`synth.generate()`: set up teacher, gate and run folder, then run the loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from pathlib import Path
from typing import Any

from .budget import Budget, Prices
from .cache import RequestCache
from .config import LOCAL_TEACHER, GenerateConfig
from .embeddings import shared_embedder
from .errors import ConfigError
from .local_teacher import LocalTeacherServer
from .pipeline import Generator, Progress, RunResult
from .runfolder import CACHE, GATE, SPEND, RunFolder
from .seeds import load_seeds
from .teacher import LiteLLMTeacher, TeacherOptions, check_api_key
from .verifier import llm_verifier


def resolve_config(config: GenerateConfig | None = None, *, resume: str | Path | None = None,
                   **overrides: Any) -> GenerateConfig:
    """defaults < config (or the run folder's saved config on resume) < overrides."""
    if resume is not None:
        base = RunFolder.existing(resume).load_config()
        if overrides.get("out") is not None and Path(overrides["out"]).resolve() != Path(resume).resolve():
            raise ConfigError(f"--resume {resume} continues that folder; drop --out {overrides['out']}")
        overrides["out"] = str(resume)
    else:
        base = config or GenerateConfig()
    return base.merged(overrides).validate()


def generate(config: GenerateConfig | None = None, *, resume: str | Path | None = None, overwrite: bool = False,
             progress: Progress | None = None, **overrides: Any) -> RunResult:
    """Run (or resume) the Self-Instruct + Orca pipeline; returns the run's status, record count and manifest.

    With `queries` set it runs the explanation step alone: each query is answered under an Orca system message.
    """
    config = resolve_config(config, resume=resume, **overrides)
    if config.queries:
        seeds, queries = [], [dataclasses.replace(t, origin="query") for t in load_seeds(config.queries)]
    else:
        seeds, queries = load_seeds(config.seeds), None
    local = config.teacher == LOCAL_TEACHER
    api_key = None if local else check_api_key(config.teacher, config.api_base)
    if config.max_cost is not None and not local:      # the embedded teacher costs nothing
        Prices(config.teacher, config.input_cost, config.output_cost).require()
    same = config.verifier == config.teacher          # the verifier shares the teacher's endpoint and prices
    verifier_key = check_api_key(config.verifier, config.api_base if same else None) if config.verifier else None
    embedder = shared_embedder(config.embedder) if queries is None else None   # each fails before a folder is made
    run = RunFolder.existing(config.out) if resume is not None else RunFolder.create(config.out, overwrite=overwrite)
    state = run.load_state()
    run.save_config(config)
    with contextlib.ExitStack() as stack:
        options = _teacher_options(config)
        if local:
            use_local_server(options, stack.enter_context(LocalTeacherServer()))
            api_key = "sk-local"
        cache = RequestCache(Path(config.cache) if config.cache else run.file(CACHE))
        stack.callback(cache.close)
        budget = Budget.with_ledger(config.max_cost, run.file(SPEND))
        stack.callback(budget.close)
        teacher = LiteLLMTeacher(options, cache=cache, budget=budget, api_key=api_key, check_key=False)
        gate = None
        if queries is None:
            from .gate import NoveltyGate      # faiss and the embedder load only when a gate is needed

            verifier = None
            if config.verifier:
                verifier = llm_verifier(config.verifier, api_base=config.api_base if same else None,
                                        cache_path=config.cache or run.file(CACHE), budget=budget, api_key=verifier_key,
                                        input_cost=config.input_cost if same else None,
                                        output_cost=config.output_cost if same else None)
            gate = NoveltyGate(embedder, config.novelty_threshold, index=config.novelty_index,
                               recall_threshold=config.recall_threshold if verifier else None, verifier=verifier,
                               store=run.path / GATE)
            pool = seeds + state.machine_tasks      # a resumed run finds these in the gate's store: nothing re-embedded
            gate.add([t.id for t in pool], [t.instruction for t in pool])
            stack.callback(gate.save_index)
        generator = Generator(config, run, teacher, gate, seeds, state, progress, queries=queries)
        return asyncio.run(_run(generator, teacher))


async def _run(generator: Generator, teacher: LiteLLMTeacher) -> RunResult:
    """The first Ctrl-C or SIGTERM lets calls in flight finish and sends nothing new; a second one cancels."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        if teacher.stopping and main is not None:
            main.cancel()
        teacher.stopping = True

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    try:
        return await generator.run_loop()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await teacher.aclose()


def _teacher_options(config: GenerateConfig) -> TeacherOptions:
    return TeacherOptions(
        model=config.teacher, api_base=config.api_base, temperature=config.temperature, top_p=config.top_p,
        max_tokens=config.max_tokens, concurrency=config.concurrency, rpm=config.rpm, tpm=config.tpm,
        max_retries=config.max_retries, timeout=config.timeout, max_outage=config.max_outage,
        input_cost=config.input_cost, output_cost=config.output_cost,
    )


def use_local_server(options: TeacherOptions, server: LocalTeacherServer) -> TeacherOptions:
    """Point the options at the embedded teacher. Its port is new every session, so the cache key carries
    a fixed label instead: a resumed local run finds its earlier replies in the cache."""
    options.model, options.api_base, options.concurrency = server.model, server.api_base, 1
    options.cache_label = LOCAL_TEACHER
    return options
