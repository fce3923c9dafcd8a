"""The exported CPU embedder backends (openvino, openvino-bf16, onnx-int8) of the bundled MiniLM: cached exports,
scores that stay close to the fp32 torch path's, stores that never mix backends, one-line errors."""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from synth.errors import ConfigError
from synth.gate import exported
from synth.gate.exported import EXPORT_META
from synth.gate.embeddings import (CPU_BACKEND, DEFAULT_EMBEDDER, Embedder, EmbeddingStore,
                                   gpu_batch_size, shared_embedder, split_backend)
from synth.gate.novelty import NoveltyGate

ROOT = Path(__file__).resolve().parent.parent

# |cosine - fp32 cosine| allowed per pair; bench/embed.py measures the real figures on 208 pairs and 5,000 T0 rows
TOLERANCE = {"openvino": 1e-4, "openvino-bf16": 0.01, "onnx-int8": 0.08}
PAIRS = [json.loads(line) for line in (ROOT / "tests" / "data" / "task_pairs.jsonl").read_text().splitlines()][::16]
LONG = ("Read the following passage and answer the question at the end. " * 40).strip()   # past 256 tokens


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("synth-cache")
        patch.setenv("SYNTH_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def fast(cache):
    """Each backend built once for the module, into a fresh cache (the exports take a few seconds each)."""
    return {backend: Embedder(backend=backend) for backend in TOLERANCE}


@pytest.fixture(scope="module")
def fp32():
    return shared_embedder()


def exports(cache):
    return sorted(p.relative_to(cache / "embedders").as_posix() for p in (cache / "embedders").glob("*/*"))


@pytest.mark.slow
def test_each_export_is_built_once_and_then_loaded_from_the_cache(cache, fast, monkeypatch):
    built = exports(cache)
    assert [p.split("/")[1] for p in built] == ["onnx-int8", "openvino"]      # bf16 shares the fp32 export
    assert all(p.startswith("all-MiniLM-L6-v2-") for p in built)
    files = {p: (cache / "embedders" / p / EXPORT_META).stat().st_mtime_ns for p in built}
    int8_graph = onnx.load(str(next((cache / "embedders").glob("*/onnx-int8/model_qint8.onnx"))))
    assert sum(node.op_type == "MatMulInteger" for node in int8_graph.graph.node) == 6 * 6   # every weight matrix

    def rebuild(*args):
        raise AssertionError("the export was built again")

    monkeypatch.setattr(exported, "_torch_model", rebuild)                    # any rebuild needs the torch model
    monkeypatch.setitem(sys.modules, "onnxscript", None)                        # and its exporter
    for backend, embedder in fast.items():
        again = Embedder(backend=backend)
        assert np.array_equal(again.encode(["a cached export"]), embedder.encode(["a cached export"]))
    assert exports(cache) == built                                              # no new folder, no leftovers
    assert {p: (cache / "embedders" / p / EXPORT_META).stat().st_mtime_ns for p in built} == files


@pytest.mark.slow
@pytest.mark.parametrize("backend", list(TOLERANCE))
def test_scores_stay_within_the_tolerance_of_fp32(fast, fp32, backend):
    embedder = fast[backend]
    texts = [p["a"] for p in PAIRS] + [p["b"] for p in PAIRS] + [LONG, LONG + " Is it true?"]
    vectors, reference = embedder.encode(texts), fp32.encode(texts)
    assert vectors.shape == reference.shape == (len(texts), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    n = len(PAIRS)
    pair_scores = lambda v: np.concatenate([(v[:n] * v[n:2 * n]).sum(axis=1), [v[-2] @ v[-1]]])  # noqa: E731
    diff = np.abs(pair_scores(vectors) - pair_scores(reference))
    assert diff.max() <= TOLERANCE[backend], (backend, diff.max())
    assert embedder.encode(texts[::-1])[::-1] == pytest.approx(vectors, abs=1e-5)   # order does not matter


@pytest.mark.slow
def test_a_lossy_backend_is_part_of_the_name_and_a_store_never_mixes_them(fast, fp32, tmp_path):
    assert fp32.name == fast["openvino"].name == DEFAULT_EMBEDDER        # fp32 up to rounding: one name
    assert fast["onnx-int8"].name == DEFAULT_EMBEDDER + "@onnx-int8"
    assert fast["openvino-bf16"].name == DEFAULT_EMBEDDER + "@openvino-bf16"
    texts = ["Name three rivers in Africa.", "Summarise the plot of Hamlet in two sentences."]

    made_by_torch = tmp_path / "torch"
    NoveltyGate(fp32, store=made_by_torch).add(["a", "b"], texts)
    for lossy in ("onnx-int8", "openvino-bf16"):
        with pytest.raises(ConfigError, match=f"holds embeddings from '{DEFAULT_EMBEDDER}'.*@{lossy}"):
            NoveltyGate(fast[lossy], store=made_by_torch)
    resumed = NoveltyGate(fast["openvino"], store=made_by_torch)        # the same vectors, so they are reused
    assert len(resumed) == 2 and resumed.encoded == 0

    made_by_int8 = tmp_path / "int8"
    NoveltyGate(fast["onnx-int8"], store=made_by_int8).add(["a", "b"], texts)
    assert json.loads((made_by_int8 / EmbeddingStore.META).read_text())["embedder"] == DEFAULT_EMBEDDER + "@onnx-int8"
    for other in (fp32, fast["openvino"], fast["openvino-bf16"]):
        with pytest.raises(ConfigError, match="@onnx-int8"):
            NoveltyGate(other, store=made_by_int8)
    again = NoveltyGate(shared_embedder(DEFAULT_EMBEDDER + "@onnx-int8"), store=made_by_int8)   # as --resume does
    assert len(again) == 2 and again.encoded == 0


@pytest.mark.parametrize("name, split", [
    (DEFAULT_EMBEDDER, (DEFAULT_EMBEDDER, None)),
    (DEFAULT_EMBEDDER + "@onnx-int8", (DEFAULT_EMBEDDER, "onnx-int8")),
    ("models/my@folder@openvino", ("models/my@folder", "openvino")),
    ("models/my@folder", ("models/my@folder", None)),                 # not a backend: part of the path
    ("x@auto", ("x@auto", None)),                                     # auto is resolved, never named
    ("@torch", ("@torch", None)),
])
def test_split_backend(name, split):
    assert split_backend(name) == split


def test_conflicting_or_unknown_backends_are_one_line_errors():
    with pytest.raises(ConfigError, match="names the onnx-int8 backend, not openvino"):
        Embedder(DEFAULT_EMBEDDER + "@onnx-int8", backend="openvino")
    with pytest.raises(ConfigError, match="unknown embedder backend 'int4'; choose one of auto, torch"):
        Embedder(backend="int4")
    with pytest.raises(ConfigError, match="runs on the CPU"):
        Embedder(backend="onnx-int8", device="cuda")


@pytest.mark.parametrize("backend, module, extra", [("onnx-int8", "onnxruntime", "onnx"),
                                                    ("openvino", "openvino", "openvino"),
                                                    ("openvino-bf16", "openvino", "openvino")])
def test_a_missing_dependency_is_one_line_with_the_pip_line(monkeypatch, tmp_path, backend, module, extra):
    monkeypatch.setenv("SYNTH_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError) as caught:
        Embedder(backend=backend)
    message = str(caught.value)
    assert "\n" not in message and message.endswith(f"pip install 'synth[{extra}]'")
    assert f"needs the {module} package" in message
    assert not list(tmp_path.glob("embedders/*/*"))                    # nothing half-built is left behind


def test_a_model_the_cpu_backends_cannot_export_is_refused_in_one_line(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "",
                                                        "type": "sentence_transformers.models.StaticEmbedding"}]))
    with pytest.raises(ConfigError, match="not a Transformer \\+ Pooling .*StaticEmbedding.*use the torch"):
        Embedder(str(tmp_path), backend="onnx-int8")
    with pytest.raises(ConfigError, match="need a local sentence-transformers folder"):
        Embedder("sentence-transformers/all-MiniLM-L6-v2", backend="openvino")


@pytest.mark.slow
def test_auto_takes_the_gpu_when_there_is_one_and_the_cpu_default_otherwise(fast):
    import torch

    embedder = Embedder(backend="auto")
    if torch.cuda.is_available():
        assert (embedder.backend, embedder.device, embedder.batch_size) == ("torch", "cuda", gpu_batch_size("cuda"))
        assert embedder.batch_size >= 128
    else:
        assert (embedder.backend, embedder.device, embedder.batch_size) == (CPU_BACKEND, "cpu", 64)
    assert Embedder(backend="auto", device="cpu").backend == CPU_BACKEND
