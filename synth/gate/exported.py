"""The exported CPU embedder backends (openvino, openvino-bf16, onnx-int8): an export made once, offline, from a
sentence-transformers folder's own weights into synth's cache, and a model that runs it with the same tokenising,
pooling and normalising as sentence-transformers."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import write_json_atomic

EXTRA = {"openvino": "openvino", "openvino-bf16": "openvino", "onnx-int8": "onnx"}   # pip install 'synth[EXTRA]'
EXPORT_RECIPE = 1                  # part of the cache key: bump it when an export changes
EXPORT_META, ONNX_FILE, OPENVINO_FILE = "synth_export.json", "model_qint8.onnx", "openvino_model.xml"

def _need(module: str, backend: str):
    """Import an optional dependency of a backend, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"the {backend} embedder backend needs the {module.split('.')[0]} package: "
                          f"pip install 'synth[{EXTRA[backend]}]'") from None


def _read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text(encoding="utf-8")) if default is None or path.is_file() else default
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} ({type(exc).__name__}); is it a sentence-transformers folder?") from None


def _source_spec(folder: Path) -> dict:
    """What an export needs to know about a sentence-transformers folder: its transformer folder, pooling, length
    and a key naming its weights. Only Transformer + Pooling (+ Normalize) models are exported."""
    if not folder.is_dir():
        raise ConfigError(f"the CPU embedder backends need a local sentence-transformers folder, not {str(folder)!r}")
    modules = _read_json(folder / "modules.json", [])
    modules = modules if isinstance(modules, list) else []
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] if isinstance(m, dict) else "?" for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(kind != "Normalize" for kind in kinds[2:]):
        raise ConfigError(f"{folder} is not a Transformer + Pooling sentence-transformers model "
                          f"({' + '.join(kinds) or 'no modules.json'}); use the torch embedder backend")
    transformer = folder / modules[0].get("path", "")
    pooling = _read_json(folder / modules[1].get("path", "") / "config.json")
    pooling = pooling if isinstance(pooling, dict) else {}
    modes = [mode for mode, key in (("cls", "pooling_mode_cls_token"), ("mean", "pooling_mode_mean_tokens"),
                                    ("max", "pooling_mode_max_tokens")) if pooling.get(key)]
    if isinstance(pooling.get("pooling_mode"), str):
        modes = [pooling["pooling_mode"]]
    others = [key for key, on in pooling.items() if key.startswith("pooling_mode_") and on and
              key not in ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens")]
    if len(modes) != 1 or modes[0] not in ("cls", "mean", "max") or others:
        raise ConfigError(f"{folder}: the CPU embedder backends pool by mean, cls or max only; use the torch backend")
    st_config = _read_json(transformer / "sentence_bert_config.json", {})
    weights = next((transformer / f for f in ("model.safetensors", "pytorch_model.bin") if (transformer / f).is_file()),
                   None)
    if weights is None:
        raise ConfigError(f"{transformer} holds no model.safetensors or pytorch_model.bin to export")
    digest = hashlib.sha256(f"recipe {EXPORT_RECIPE}\n".encode())
    with open(weights, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return {"transformer": transformer, "pooling": modes[0], "max_seq_length": st_config.get("max_seq_length"),
            "lowercase": bool(st_config.get("do_lower_case")), "key": digest.hexdigest()[:16]}


def exported_model(source: Path, backend: str, label: str) -> Path:
    """The cached export of a sentence-transformers folder for a CPU backend, built on first use and reused after."""
    from ..training.student import cache_dir

    spec = _source_spec(source)
    backend = backend.removesuffix("-bf16")   # openvino-bf16 runs the fp32 export with a bf16 hint
    folder = cache_dir() / "embedders" / f"{label}-{spec['key']}" / backend
    if (folder / EXPORT_META).is_file():
        return folder
    export = _export_onnx_int8 if backend == "onnx-int8" else _export_openvino
    for module in ("onnxruntime", "onnx", "onnxscript") if backend == "onnx-int8" else ("openvino",):
        _need(module, backend)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with _quiet_export():
            tokenizer, model, sample, max_length = _torch_model(spec)
            export(model, sample, tmp)
        tokenizer.save_pretrained(str(tmp))
        write_json_atomic(tmp / EXPORT_META, {"source": str(source), "key": spec["key"], "backend": backend,
                                              "recipe": EXPORT_RECIPE, "pooling": spec["pooling"],
                                              "max_seq_length": max_length, "lowercase": spec["lowercase"],
                                              "dim": int(model.model.config.hidden_size)})
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, ConfigError):
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"cannot export {source} for the {backend} embedder backend ({type(exc).__name__}: "
                          f"{first_line}); use the torch backend") from None
    try:
        tmp.rename(folder)
    except OSError:                            # another process finished first; its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


@contextlib.contextmanager
def _quiet_export():
    """The exporters print progress and warn about things that do not apply here; keep the console clean."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def _torch_model(spec: dict):
    """The fp32 transformer wrapped to return token vectors, its tokenizer, a sample batch and the length limit."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class TokenVectors(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    tokenizer = AutoTokenizer.from_pretrained(str(spec["transformer"]))
    model = TokenVectors(AutoModel.from_pretrained(str(spec["transformer"]), dtype=torch.float32).eval())
    limit = int(getattr(model.model.config, "max_position_embeddings", 512))
    max_length = min(spec["max_seq_length"] or tokenizer.model_max_length, limit)
    sample = dict(tokenizer(["A short one.", "A somewhat longer sample sentence, so the batch has padding in it."],
                            padding=True, return_tensors="pt"))
    return tokenizer, model, sample, max_length


def _export_onnx_int8(model, sample: dict, folder: Path) -> None:
    """torch.export -> ONNX (fp32), then ONNX Runtime's dynamic int8 quantisation of every weight matrix."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=model.model.config.max_position_embeddings)
    fp32 = folder / "model_fp32.onnx"
    program = torch.onnx.export(model, (), kwargs=sample, dynamo=True, external_data=False,
                                dynamic_shapes={name: {0: batch, 1: seq} for name in sample})
    program.save(str(fp32), external_data=False)
    quantize_dynamic(str(fp32), str(folder / ONNX_FILE), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], extra_options={"MatMulConstBOnly": True})
    fp32.unlink()


def _export_openvino(model, sample: dict, folder: Path) -> None:
    """OpenVINO's converter straight from torch; weights stay fp32 (save_model would halve them by default)."""
    import openvino

    converted = openvino.convert_model(model, example_input=sample)
    openvino.save_model(converted, str(folder / OPENVINO_FILE), compress_to_fp16=False)


class ExportedModel:
    """An exported model on a CPU runtime. The runtime gives token vectors; tokenising (longest first, to pad
    little), pooling and normalising are done here as sentence-transformers does them."""

    def __init__(self, folder: Path, backend: str):
        import torch
        from transformers import AutoTokenizer

        meta = json.loads((folder / EXPORT_META).read_text(encoding="utf-8"))
        self.pooling, self.dim, self.max_seq_length = meta["pooling"], int(meta["dim"]), int(meta["max_seq_length"])
        self.lowercase = bool(meta.get("lowercase"))
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        threads = torch.get_num_threads()      # the same threads as the torch backend, so the two compare fairly
        if backend == "onnx-int8":
            ort = _need("onnxruntime", backend)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"])
            names = {i.name for i in session.get_inputs()}
            self._run = lambda feed: session.run(None, {k: v for k, v in feed.items() if k in names})[0]
        else:
            ov = _need("openvino", backend)
            compiled = ov.Core().compile_model(str(folder / OPENVINO_FILE), "CPU", {
                "INFERENCE_PRECISION_HINT": "bf16" if backend.endswith("bf16") else "f32",
                "INFERENCE_NUM_THREADS": threads})
            names = {name for port in compiled.inputs for name in port.get_names()}
            self._run = lambda feed: compiled({k: v for k, v in feed.items() if k in names})[0]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        if self.lowercase:
            texts = [t.lower() for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                   max_length=self.max_seq_length, return_tensors="np")
            feed = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}
            vectors[rows] = _pool(np.asarray(self._run(feed), dtype=np.float32), feed["attention_mask"], self.pooling)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return tokens[:, 0]
    keep = mask[..., None].astype(np.float32)
    if mode == "max":
        return np.where(keep > 0, tokens, -1e9).max(axis=1)
    return (tokens * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1e-9)
