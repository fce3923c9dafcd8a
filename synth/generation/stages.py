"""The answer stages as pure functions: render classify, instances and answer messages; pick a system message."""

from __future__ import annotations

import random

from ..prompts import SystemMessage, render, system_messages_for, template_hash
from ..records import user_message
from ..tasks import Task

TEMPLATES = ("classify", "instances_input_first", "instances_output_first")   # a method adds its own


def template_hashes() -> dict[str, str]:
    return {name: template_hash(name) for name in TEMPLATES}


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
