"""Test doubles for synth (e.g. a scripted OpenAI-compatible teacher server)."""

from synth.testing.server import (
    FAULT_KINDS,
    Attempt,
    FakeTeacherServer,
    Fault,
    Reply,
    Script,
    echo_script,
    http_date,
    request_key,
    scripted,
)

__all__ = [
    "Attempt",
    "FAULT_KINDS",
    "FakeTeacherServer",
    "Fault",
    "Reply",
    "Script",
    "echo_script",
    "http_date",
    "request_key",
    "scripted",
]
