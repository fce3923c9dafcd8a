"""`synth.generate()`: check everything, take the run folder, set up teacher and gate, then run the loop.

Nothing is written before every check has passed, and an old run replaced with `overwrite` is only moved aside: it
is deleted once the new run has made its first progress, and put back if the new run fails to start.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ..files import write_json_atomic
from ..gate.embeddings import EmbeddingStore, shared_embedder
from ..gate.verifier import llm_verifier
from ..teacher.base import check_api_key
from ..teacher.batching import BatchTeacher
from ..teacher.budget import batch_discount
from ..teacher.cache import RequestCache
from ..teacher.jobs import run_with_stop_signals
from ..teacher.session import TeacherSession, check_teacher
from .config import LOCAL_TEACHER, GenerateConfig
from .methods.evol import Evol
from .methods.magpie import Magpie, load_frame
from .methods.self_instruct import SelfInstruct
from .personas import load_personas
from .pipeline import Generator, Progress, RunResult, signal_config
from .runfolder import CACHE, DECONTAMINATION, GATE, RunFolder, RunState
from .seeds import load_seeds


def resolve_config(config: GenerateConfig | dict[str, Any] | None = None, *, resume: str | Path | None = None,
                   **overrides: Any) -> GenerateConfig:
    """defaults < config (a GenerateConfig or a dict of settings; on resume, the run folder's saved config first)
    < overrides."""
    if resume is None:
        return GenerateConfig.resolve(base=config, flags=overrides)
    saved = RunFolder.existing(resume).load_config()
    if overrides.get("out") is not None and Path(overrides["out"]).resolve() != Path(resume).resolve():
        raise ConfigError(f"--resume {resume} continues that folder; drop --out {overrides['out']}")
    given = config.changed() if isinstance(config, GenerateConfig) else dict(config or {})
    return GenerateConfig.resolve(base=saved, flags={**given, **overrides, "out": str(resume)})


def generate(config: GenerateConfig | dict[str, Any] | None = None, *, resume: str | Path | None = None,
             overwrite: bool = False, progress: Progress | None = None, log: Callable[[str], None] | None = None,
             **overrides: Any) -> RunResult:
    """Run (or resume) the Self-Instruct + Orca pipeline; returns the run's status, record count and manifest.

    With `queries` set it runs the explanation step alone: every instance of every query is answered under an Orca
    system message. `log` hears the resolved settings at start.
    """
    config = resolve_config(config, resume=resume, **overrides)
    queries = load_seeds(config.queries, origin="query") if config.queries else None
    seeds = [] if queries is not None or (config.method == "magpie" and not config.seeds) else load_seeds(config.seeds)
    method = None if queries is not None else make_method(config)
    signal_config(config)                              # a bad signal file is an error before anything is made
    local = config.teacher == LOCAL_TEACHER
    keys = _check_teachers(config, local)
    embedder = shared_embedder(config.embedder) if queries is None else None   # each fails before a folder is made
    cache_path = Path(config.cache) if config.cache else Path(config.out) / CACHE
    if config.cache:
        RequestCache.check(cache_path)
    if resume is not None:
        run = RunFolder.existing(config.out)
        state = run.load_state()
        if embedder is not None:
            EmbeddingStore.check(run.file(GATE), embedder.name, embedder.dim)
    else:
        run, state = RunFolder.check_new(config.out, overwrite=overwrite), RunState()
    if log:
        log(config.summary())
    run.claim(replace=resume is None and overwrite)
    try:
        if config.cache and cache_path.resolve().is_relative_to(run.path.resolve()):
            run.carry_over(cache_path.resolve().relative_to(run.path.resolve()))   # a cache kept inside the old run
        return _run_in_folder(config, run, state, seeds, queries, keys, local, embedder, cache_path, progress, log,
                              method)
    finally:
        run.release()


def make_method(config: GenerateConfig):
    """The method that proposes new tasks, checked before any folder is made."""
    if config.method == "evol":
        return Evol(seed=config.seed, rounds=config.rounds)
    if config.method == "magpie":
        if config.teacher != LOCAL_TEACHER and not config.api_base:
            raise ConfigError("--method magpie needs a completion endpoint (/v1/completions) and the model's raw chat "
                              "template, which chat-only providers do not expose: serve the model yourself (vLLM, "
                              "llama.cpp) and give --api-base and --chat-template")
        return Magpie(load_frame(config.chat_template, local=config.teacher == LOCAL_TEACHER))
    personas = load_personas(config.personas) if config.personas else None
    return SelfInstruct(seed=config.seed, seed_tasks=config.prompt_seed_tasks, machine_tasks=config.prompt_machine_tasks,
                        new_tasks=config.new_tasks_per_prompt, personas=personas)


def _check_teachers(config: GenerateConfig, local: bool) -> tuple[str | None, str | None]:
    """(teacher key, verifier key); a missing key or an unpriceable --max-cost is an error before anything runs."""
    api_key = check_teacher(config.teacher, config)
    same = config.verifier == config.teacher          # the verifier shares the teacher's endpoint and prices
    verifier_key = check_api_key(config.verifier, config.api_base if same else None) if config.verifier else None
    for model in (config.judge, config.strong_teacher):    # a judge or strong teacher of a different model
        if model and model != config.teacher and model != LOCAL_TEACHER:
            check_api_key(model, _side_base(config, model))
    return api_key, verifier_key


def _run_in_folder(config: GenerateConfig, run: RunFolder, state: RunState, seeds, queries, keys, local: bool,
                   embedder, cache_path: Path, progress: Progress | None,
                   log: Callable[[str], None] | None, method) -> RunResult:
    api_key, verifier_key = keys
    same = config.verifier == config.teacher
    with contextlib.ExitStack() as stack:
        teacher = stack.enter_context(TeacherSession(config.teacher, config, folder=run.path, api_key=api_key))
        if config.batch:
            teacher = BatchTeacher(teacher, run.path, batch_size=config.batch_size, poll=config.batch_poll,
                                   discount=batch_discount(teacher.model, config.batch_discount),
                                   window=config.batch_window, log=log)
        gate = verifier = None
        if queries is None:
            from ..gate.novelty import NoveltyGate      # faiss loads only when a gate is needed

            if config.verifier:
                verifier = llm_verifier(config.verifier, api_base=config.api_base if same else None,
                                        cache=teacher.cache, budget=teacher.budget, api_key=verifier_key,
                                        timeout=config.timeout, max_retries=config.max_retries,
                                        max_outage=config.max_outage, input_cost=config.input_cost if same else None,
                                        output_cost=config.output_cost if same else None)
            gate = NoveltyGate(embedder, config.novelty_threshold, index=config.novelty_index,
                               recall_threshold=config.recall_threshold if verifier else None, verifier=verifier,
                               store=run.path / GATE)
            pool = seeds + state.machine_tasks      # a resumed run finds these in the gate's store: nothing re-embedded
            gate.add([t.id for t in pool], [t.instruction for t in pool])
            stack.callback(gate.save_index)
        judge = _side_teacher(stack, config, config.judge, run, teacher, "judge", temperature=0.0, max_tokens=300)
        strong = _side_teacher(stack, config, config.strong_teacher, run, teacher, "strong_teacher")
        checker = _decontaminator(config, run, embedder, log) if config.decontaminate and queries is None else None
        run.save_config(config)                     # only now: a refused resume or a failed set-up changes nothing
        generator = Generator(config, run, teacher, gate, seeds, state, progress, queries=queries, method=method,
                              judge_teacher=judge, strong_teacher=strong, decontaminator=checker)
        teachers = [teacher] + [t for t in (judge, strong) if t is not None] + \
            ([verifier.teacher] if verifier is not None else [])
        result = run_with_stop_signals(lambda: _loop(generator, verifier), teachers)
        if checker is not None:
            write_json_atomic(run.path / DECONTAMINATION, checker.summary())
        return result


def _side_teacher(stack, config: GenerateConfig, model: str | None, run: RunFolder, teacher, purpose: str, **changes):
    """A judge or strong teacher beside the teacher: the same cache and spend ledger, its spending booked under its
    own purpose; the teacher's endpoint and prices when it is the same model."""
    if not model:
        return None
    same = model == config.teacher
    settings = config if same else config.merged({"api_base": _side_base(config, model), "input_cost": None,
                                                  "output_cost": None})
    return stack.enter_context(TeacherSession(model, settings, folder=run.path, purpose=purpose, cache=teacher.cache,
                                              budget=teacher.budget, **changes))


def _decontaminator(config: GenerateConfig, run: RunFolder, embedder, log):
    """The benchmarks' indexes, built once into RUN/decontam and read from there on --resume."""
    from ..decontam import DecontamConfig, Decontaminator

    settings = DecontamConfig(against=list(config.decontaminate), embedder=config.embedder)
    return Decontaminator.open(config=settings, folder=run.path / "decontam", pin=True, embedder=embedder,
                               log=log or (lambda line: None))


def _side_base(config: GenerateConfig, model: str) -> str | None:
    """Where a judge or strong teacher is served: --side-api-base, else the teacher's server for an openai/ model."""
    if not model.startswith("openai/"):
        return None
    return config.side_api_base or config.api_base


async def _loop(generator: Generator, verifier) -> RunResult:
    if verifier is not None:
        verifier.bind(asyncio.get_running_loop())     # the gate's worker thread asks on this loop
    return await generator.run_loop()
