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

from synth.testing.faults import INJECTIONS, OutageScript, default_faults, explain_reply, fault_mix

__all__ = [
    "OutageScript",
    "INJECTIONS",
    "default_faults",
    "explain_reply",
    "fault_mix",
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
