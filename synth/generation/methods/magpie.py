"""Magpie (Xu et al. 2024): an aligned model, given only its chat template up to the start of a user turn, writes a
user query by itself. No seeds: the model's own alignment data is the source.

The template comes from the model's own tokenizer (the embedded teacher's GGUF carries it; for a server, point
`--chat-template` at the model's folder). It is rendered around a marker to find the text before a user message and
the text that ends one: the first is the prompt, the second the stop. Each proposal asks with its own sampling seed,
so the queries differ, and a resumed run that asks again gets the same query from the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from . import Candidate, Pool, Proposal, Request

MARK = "\u2063synth-user-turn\u2063"


@dataclass(frozen=True)
class TurnFrame:
    prefix: str           # everything before a user message's text
    stop: list[str]       # what ends a user message


def turn_frame(tokenizer) -> TurnFrame:
    """The text around a user message in `tokenizer`'s chat template."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError("the model's tokenizer has no chat template, and Magpie needs one; give --chat-template")
    alone = tokenizer.apply_chat_template([{"role": "user", "content": MARK}], tokenize=False,
                                          add_generation_prompt=False)
    prefix, _, suffix = alone.partition(MARK)
    if not suffix and not prefix:
        raise ConfigError("the chat template does not show the user's message; Magpie cannot use it")
    stops = [s for s in (suffix.strip(), tokenizer.eos_token) if s]
    return TurnFrame(prefix, list(dict.fromkeys(stops)))


def load_frame(chat_template: str | None, local: bool) -> TurnFrame:
    """The turn frame from --chat-template (a tokenizer folder, or a .jinja template with the embedded tokenizer's
    special tokens), or from the embedded teacher's own tokenizer."""
    from transformers import AutoTokenizer

    from ...training.student import default_student

    if chat_template is None:
        if not local:
            raise ConfigError("Magpie needs the teacher's chat template to write the start of a user turn: give "
                              "--chat-template with the model's folder (its tokenizer) or a .jinja file")
        return turn_frame(AutoTokenizer.from_pretrained(str(default_student())))
    path = Path(chat_template)
    if path.is_dir():
        return turn_frame(AutoTokenizer.from_pretrained(str(path)))
    if not path.is_file():
        raise ConfigError(f"--chat-template {chat_template}: no such file or folder")
    tokenizer = AutoTokenizer.from_pretrained(str(default_student()))
    tokenizer.chat_template = path.read_text(encoding="utf-8")
    return turn_frame(tokenizer)


class Magpie:
    name, stage = "magpie", "magpie"

    def __init__(self, frame: TurnFrame):
        self.frame = frame

    def template_names(self) -> tuple[str, ...]:
        return ()

    def propose(self, number: int, pool: Pool) -> Proposal:
        return Proposal(number, self.name)

    def request(self, proposal: Proposal, pool: Pool) -> Request:
        return Request(prompt=self.frame.prefix, stop=self.frame.stop, seed=proposal.number)

    def parse(self, proposal: Proposal, text: str) -> list[Candidate] | str:
        query = (text or "")
        for stop in self.frame.stop:
            query = query.split(stop, 1)[0]
        query = query.strip()
        if not query:
            return "empty_query"
        return [Candidate(query, {"method": self.name}, answer_directly=True)]
