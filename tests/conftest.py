"""Shared fixtures: a scripted OpenAI-compatible teacher on loopback, so litellm's real HTTP client runs."""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from synth.testing import FakeTeacherServer, Reply

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_TOPICS = [
    "sourdough starters", "tidal energy", "medieval castles", "the French Revolution", "binary search",
    "compound interest", "houseplant care", "marathon training", "volcano formation", "jazz improvisation",
    "remote team meetings", "photosynthesis", "credit scores", "chess openings", "recycling plastics",
    "the water cycle", "SQL joins", "public speaking", "beekeeping", "time zones", "vaccines", "sunscreen",
    "electric bicycles", "the Roman calendar", "bird migration", "tax deductions", "coral reefs",
    "password managers", "sleep hygiene", "origami", "glaciers", "stock dividends", "solar eclipses",
    "fermentation", "unit testing", "negotiating a salary", "camping stoves", "the printing press",
    "earthquakes", "composting", "haiku poetry", "Python decorators", "interest rates", "black holes",
]
_FORMS = [
    "Explain to a teenager how {t} works and why it matters.",
    "List three common mistakes people make with {t} and how to avoid them.",
    "Compose a four-line rhyming poem celebrating {t}.",
    "Give a balanced argument for and against spending public money on {t}.",
    "Summarize the key facts about {t} in exactly two sentences.",
    "Suggest a weekend project that would teach a beginner about {t}.",
    "Describe a surprising historical episode connected to {t}.",
    "Create a five-question multiple choice quiz about {t}.",
]


def _tasks_for(prompt: str, count: int) -> list[str]:
    digest = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    tasks = []
    for i in range(count):
        topic = _TOPICS[(digest // (7 ** i)) % len(_TOPICS)]
        form = _FORMS[(digest // (11 ** i) + i) % len(_FORMS)]
        tasks.append(form.format(t=topic))
    return tasks


def pipeline_script(body: dict, attempt: int) -> Reply:
    """A deterministic teacher for every pipeline stage, chosen by the prompt it is sent."""
    messages = body["messages"]
    prompt = messages[-1]["content"]
    if "numbered list starting at" in prompt:
        start = int(re.search(r"starting at (\d+)", prompt).group(1))
        count = int(re.search(r"Invent (\d+) new tasks", prompt).group(1))
        items = _tasks_for(prompt, count) + ["Draw a picture of a cat wearing a hat.", "Hi there"]
        return Reply("\n".join(f"{start + i}. {item}" for i, item in enumerate(items)))
    if "Is it classification?" in prompt:
        return Reply("No")
    if "Use exactly this format" in prompt:
        task = prompt.rsplit("Task:", 1)[1].strip()
        return Reply(f"Input: <none>\nOutput: A short answer to: {task}\n\n"
                     f"Input: Please keep it brief.\nOutput: A brief answer to: {task}")
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    return Reply(f"Step 1: Read the request carefully ({len(system)} characters of guidance).\n"
                 f"Step 2: Work out the answer.\nSo the answer to '{prompt[:60]}' is explained above.")


@pytest.fixture
def teacher_server():
    with FakeTeacherServer(pipeline_script) as server:
        yield server


@pytest.fixture
def fake_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
