"""Errors `synth train` raises on purpose; each is a `synth.SynthError`, so the CLI prints one line.

    SynthError
    ├── ConfigError / InputFileError / RunFolderError   (synth.errors, reused here)
    └── TrainingError
        ├── StudentError        a student folder that cannot be used (no tokenizer, no chat template...)
        ├── ChatTemplateError   the student's chat template cannot render a conversation
        ├── TrainMemoryError    a batch did not fit; the message says what to lower
        └── DivergedError       the loss became NaN or inf; the last good checkpoint is kept
"""

from __future__ import annotations

from ..errors import SynthError


class TrainingError(SynthError):
    pass


class StudentError(TrainingError):
    pass


class ChatTemplateError(TrainingError):
    pass


class TrainMemoryError(TrainingError):
    pass


class DivergedError(TrainingError):
    outcome = "diverged"
