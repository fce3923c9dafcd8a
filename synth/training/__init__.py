"""`synth train`: LoRA fine-tuning of a small student on synth's records (see loop.py for the recipe)."""

from .api import train
from .config import TrainConfig
from .errors import ChatTemplateError, DivergedError, StudentError, TrainingError, TrainMemoryError
from .loop import Trainer, TrainResult

__all__ = ["train", "TrainConfig", "TrainResult", "Trainer", "TrainingError", "StudentError", "ChatTemplateError",
           "TrainMemoryError", "DivergedError"]
