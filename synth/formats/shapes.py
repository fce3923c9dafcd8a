"""Row shapes: what a row is, told once, and the one conversion from each shape to an `Example`.

    shape                 fields
    synth                 a synth record: task, instance, system_message, response, provenance
    chat                  messages: [{role, content}]                    (OpenAI chat)
    sharegpt              conversations: [{from, value}]
    seed                  instruction, instances: [{input, output}]     (Self-Instruct seeds, synth tasks)
    alpaca                instruction, input?, output?, system?
    dolly                 instruction, context, response
    instruction_response  instruction, response
    prompt_completion     prompt, completion?                           (T0 / FLAN)
    prompt_response       prompt, response
    text                  text, question or query: a plain prompt
    field                 any row, by the field named with --field

An `Example` is one prompt with its optional answer: the form every command works on. A seed row with several
instances gives one example per instance; every other shape gives one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..records import user_message
from ..tasks import Task, content_id

SHAPES = ("synth", "chat", "sharegpt", "seed", "alpaca", "dolly", "instruction_response", "prompt_completion",
          "prompt_response", "text", "field")
TEXT_FIELDS = ("text", "question", "query")
KNOWN = ("a synth record, messages, conversations, instruction (+ input/output/response/instances/context), "
         "prompt (+ completion/response), or text")
_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "bot": "assistant", "chatgpt": "assistant", "model": "assistant"}
_ROLES = ("system", "user", "assistant")


class ShapeError(ValueError):
    """A row whose fields do not fit its shape; callers name the file and line."""


@dataclass
class Example:
    """One prompt and, when the row has one, its answer."""

    instruction: str
    input: str = ""
    output: str | None = None
    system: str | None = None
    messages: list[dict[str, str]] | None = None      # the whole conversation, for chat rows of several turns
    id: str | None = None
    kind: str | None = None
    is_classification: bool | None = None
    instances: list[dict[str, str]] = field(default_factory=list)   # every instance of a seed row

    @property
    def prompt(self) -> str:
        """The user turn: the instruction, then the input if any."""
        return user_message(self.instruction, self.input)

    def chat(self) -> list[dict[str, str]]:
        """The conversation as chat messages: system (if any), user, assistant (if answered)."""
        if self.messages is not None:
            return [dict(m) for m in self.messages]
        turns = [{"role": "system", "content": self.system}] if self.system else []
        turns.append({"role": "user", "content": self.prompt})
        if self.output is not None:
            turns.append({"role": "assistant", "content": self.output})
        return turns


def detect(row: dict[str, Any], field_name: str | None = None) -> str | None:
    """The shape of `row`, or None when it has none synth knows."""
    if field_name is not None:
        return "field"
    if isinstance(row.get("task"), dict) and "response" in row and isinstance(row.get("instance"), dict):
        return "synth"
    if isinstance(row.get("messages"), list):
        return "chat"
    if isinstance(row.get("conversations"), list):
        return "sharegpt"
    if "instruction" in row:
        if "instances" in row:
            return "seed"
        if "context" in row and "response" in row:
            return "dolly"
        if "response" in row and "output" not in row:
            return "instruction_response"
        return "alpaca"
    if "prompt" in row:
        return "prompt_response" if "response" in row and "completion" not in row else "prompt_completion"
    if any(isinstance(row.get(name), str) for name in TEXT_FIELDS):
        return "text"
    return None


def examples(row: dict[str, Any], field_name: str | None = None) -> list[Example]:
    """The examples in `row`; a ShapeError says what is wrong with it."""
    shape = detect(row, field_name)
    if shape is None:
        raise ShapeError(f"not a row shape synth knows: expected {KNOWN} (or name the text with --field)")
    return _CONVERT[shape](row, field_name)


def example(row: dict[str, Any], field_name: str | None = None) -> Example:
    """The first example in `row` (a seed row's other instances are left out)."""
    return examples(row, field_name)[0]


def to_task(row: dict[str, Any], origin: str = "seed") -> Task:
    """A Task from a row of any instruction shape: every instance kept, the id from the row or from its content."""
    found = examples(row)
    first = found[0]
    instances = first.instances or [{"input": e.input, "output": e.output or ""} for e in found
                                    if e.input or e.output]
    task_id = first.id or content_id(origin, first.instruction, repr(sorted(tuple(i.items()) for i in instances)))
    return Task(id=str(task_id), instruction=first.instruction.strip(), instances=instances,
                is_classification=first.is_classification, kind=first.kind, origin=origin)


# ---- one converter per shape ---------------------------------------------------------------------------

def _text(row: dict, key: str, required: bool = True) -> str:
    value = row.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ShapeError(f"'{key}' must be a string" if key in row else f"missing '{key}' (a string)")
    return value


def _optional(row: dict, key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ShapeError(f"'{key}' must be a string")
    return value


def _common(row: dict) -> dict[str, Any]:
    kind = row.get("kind")
    is_cls = row.get("is_classification")
    if is_cls is not None and not isinstance(is_cls, bool):
        raise ShapeError("'is_classification' must be true or false")
    row_id = row.get("id")
    return {"id": str(row_id) if isinstance(row_id, (str, int)) and not isinstance(row_id, bool) else None,
            "kind": kind if isinstance(kind, str) else None, "is_classification": is_cls}


def _instruction(row: dict, key: str = "instruction") -> str:
    value = _text(row, key)
    if not value.strip():
        raise ShapeError(f"'{key}' is empty")
    return value


def _synth(row: dict, _field: str | None) -> list[Example]:
    task, instance, system = row["task"], row["instance"], row.get("system_message")
    for owner, key, value in (("task", "instruction", task.get("instruction")), ("instance", "input", instance.get("input")),
                              ("", "response", row.get("response"))):
        if not isinstance(value, str):
            raise ShapeError(f"not a synth record: {owner + '.' if owner else ''}{key} must be a string")
    if not isinstance(system, dict) or not isinstance(system.get("text"), str):
        raise ShapeError("not a synth record: system_message.text must be a string")
    return [Example(task["instruction"], instance["input"], row["response"], system["text"],
                    id=str(row.get("id")) if row.get("id") is not None else None,
                    kind=task.get("kind") if isinstance(task.get("kind"), str) else None,
                    is_classification=task.get("is_classification") if isinstance(task.get("is_classification"), bool) else None)]


def _turns(turns: list, role_key: str, text_key: str, roles: dict[str, str]) -> list[dict[str, str]]:
    messages = []
    for turn in turns:
        if not isinstance(turn, dict) or not isinstance(turn.get(text_key), str):
            raise ShapeError(f"every turn needs a string '{text_key}'")
        role = roles.get(str(turn.get(role_key)).lower())
        if role is None:
            raise ShapeError(f"unknown role {turn.get(role_key)!r}; expected one of {', '.join(sorted(set(roles)))}")
        messages.append({"role": role, "content": turn[text_key]})
    return messages


def _conversation(messages: list[dict[str, str]], row: dict) -> list[Example]:
    users = [m["content"] for m in messages if m["role"] == "user"]
    if not users or not users[0].strip():
        raise ShapeError("the conversation has no user turn")
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    output = answers[-1] if answers and messages[-1]["role"] == "assistant" else None
    return [Example(users[0], "", output, system, messages=messages, **_common(row))]


def _chat(row: dict, _field: str | None) -> list[Example]:
    return _conversation(_turns(row["messages"], "role", "content", {r: r for r in _ROLES}), row)


def _sharegpt(row: dict, _field: str | None) -> list[Example]:
    return _conversation(_turns(row["conversations"], "from", "value", _SHAREGPT_ROLES), row)


def _seed(row: dict, _field: str | None) -> list[Example]:
    instruction = _instruction(row)
    instances = row["instances"]
    if not isinstance(instances, list) or not all(isinstance(i, dict) for i in instances):
        raise ShapeError("'instances' must be a list of {input, output} objects")
    kept = [{"input": _text(i, "input", False), "output": _text(i, "output", False)} for i in instances]
    common = _common(row)
    if not kept:
        return [Example(instruction, **common)]
    return [Example(instruction, i["input"], i["output"] or None, _optional(row, "system"), instances=kept, **common)
            for i in kept]


def _alpaca(row: dict, _field: str | None) -> list[Example]:
    return [Example(_instruction(row), _text(row, "input", False), _optional(row, "output"), _optional(row, "system"),
                    **_common(row))]


def _dolly(row: dict, _field: str | None) -> list[Example]:
    return [Example(_instruction(row), _text(row, "context", False), _optional(row, "response"),
                    _optional(row, "system"), **_common(row))]


def _instruction_response(row: dict, _field: str | None) -> list[Example]:
    return [Example(_instruction(row), _text(row, "input", False), _optional(row, "response"),
                    _optional(row, "system"), **_common(row))]


def _prompt(answer_key: str):
    def convert(row: dict, _field: str | None) -> list[Example]:
        return [Example(_instruction(row, "prompt"), "", _optional(row, answer_key), _optional(row, "system"),
                        **_common(row))]
    return convert


def _plain(row: dict, _field: str | None) -> list[Example]:
    key = next(name for name in TEXT_FIELDS if isinstance(row.get(name), str))
    return [Example(_instruction(row, key), "", _optional(row, "answer"), **_common(row))]


def _field(row: dict, field_name: str | None) -> list[Example]:
    assert field_name is not None
    if field_name not in row:
        raise ShapeError(f"no field {field_name!r} (this row has {', '.join(sorted(map(str, row))) or 'no fields'})")
    return [Example(_instruction(row, field_name), **_common(row))]


_CONVERT = {
    "synth": _synth, "chat": _chat, "sharegpt": _sharegpt, "seed": _seed, "alpaca": _alpaca, "dolly": _dolly,
    "instruction_response": _instruction_response, "prompt_completion": _prompt("completion"),
    "prompt_response": _prompt("response"), "text": _plain, "field": _field,
}



# The fields of a synth record that readers rely on: top-level type, then the string fields inside each object.
_RECORD_FIELDS = {"id": str, "task": dict, "instance": dict, "system_message": dict, "response": str, "provenance": dict}
_NESTED_STRINGS = {"task": ("id", "instruction"), "instance": ("input",), "system_message": ("id", "text")}


def record_problem(row: Any) -> str | None:
    """What keeps `row` from being a synth record, or None when it is one."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    for key, kind in _RECORD_FIELDS.items():
        if not isinstance(row.get(key), kind):
            return f"no {key!r} {'object' if kind is dict else 'string'}"
    for key, names in _NESTED_STRINGS.items():
        for name in names:
            if not isinstance(row[key].get(name), str):
                return f"no string {key}.{name}"
    return None
