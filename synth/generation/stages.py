"""The pipeline's stages as pure functions: render a stage's chat messages, pick examples and system messages."""

from __future__ import annotations

import random

from ..prompts import SystemMessage, render, system_messages_for, template_hash
from ..records import user_message
from ..tasks import Task

TEMPLATES = ("bootstrap", "classify", "instances_input_first", "instances_output_first")


def template_hashes() -> dict[str, str]:
    return {name: template_hash(name) for name in TEMPLATES}


def sample_examples(seeds: list[Task], machine: list[Task], rng: random.Random,
                    n_seed: int, n_machine: int) -> list[Task]:
    """Self-Instruct's prompt mix: n_seed seed tasks and n_machine machine tasks; seeds fill any shortfall."""
    machine_part = rng.sample(machine, min(n_machine, len(machine)))
    seed_count = min(len(seeds), n_seed + n_machine - len(machine_part))
    examples = rng.sample(seeds, seed_count) + machine_part
    rng.shuffle(examples)
    return examples


def bootstrap_messages(examples: list[Task], num_new: int) -> list[dict[str, str]]:
    listing = "\n".join(f"{i}. {task.instruction}" for i, task in enumerate(examples, 1))
    prompt = render("bootstrap", num_examples=len(examples), num_new=num_new, examples=listing,
                    next_number=len(examples) + 1)
    return [{"role": "user", "content": prompt}]


def classify_messages(task: Task) -> list[dict[str, str]]:
    return [{"role": "user", "content": render("classify", instruction=task.instruction)}]


def instances_messages(task: Task, num_instances: int) -> list[dict[str, str]]:
    name = "instances_output_first" if task.is_classification else "instances_input_first"
    return [{"role": "user", "content": render(name, instruction=task.instruction, num_instances=num_instances)}]


def choose_system_message(kind: str, rng: random.Random) -> SystemMessage:
    return rng.choice(system_messages_for(kind))


def answer_messages(system: SystemMessage, instruction: str, input_text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system.text},
        {"role": "user", "content": user_message(instruction, input_text)},
    ]
