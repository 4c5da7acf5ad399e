"""The serving engine: ONNX Runtime runs what TensorFlow/Keras trained.

Training saves ``<name>.keras``; ``export`` writes ``<name>.onnx`` beside it (tf2onnx, opset 17)
and returns the card's ``engine`` entry (file, sha256, the Keras file it came from, the largest
difference from Keras on a probe batch). ``registry`` serves a model through ONNX Runtime when
its card names an engine file with a matching sha256, else through Keras (``INFERENCE_ENGINE=keras``
forces Keras). Why ONNX Runtime: ``benchmarks/bench_engines.py`` (same run, this 2-core CPU) has it
2-4x faster than TensorFlow's ``predict_on_batch`` per call, with no graph traced for a new batch
shape (TensorFlow traced one per shape, the first job's seconds), no TensorFlow import in web and
worker processes, and outputs equal to Keras' within 1e-6.

No Django here: the number of threads comes in as an argument (``registry`` reads the
``INFERENCE_THREADS`` environment variable).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17
# Differences between ONNX Runtime and Keras larger than this fail an export (float32 rounding in
# a different order gives ~1e-7 on probabilities; the parity test holds them to 1e-5).
PARITY_TOLERANCE = 1e-5


class EngineUnavailable(RuntimeError):
    """The engine file is missing, corrupt or onnxruntime is not installed."""


def default_threads() -> int:
    """Intra-op threads per call: ``INFERENCE_THREADS``, else 1 (on a small server a web process,
    a worker and several live sockets share the cores; one thread per call lets calls from
    different threads run side by side instead of queueing for one pool)."""
    try:
        return max(1, int(os.environ.get("INFERENCE_THREADS", "1")))
    except ValueError:
        return 1


_side_lock = threading.Lock()
_side_pools: dict[int, ThreadPoolExecutor] = {}


def side_pool() -> ThreadPoolExecutor | None:
    """Threads one request may use beside its own for parts that do not depend on each other (a
    photo's turned detector views, an ensemble's networks): ``INFERENCE_PARALLEL`` threads, default
    2 (1: one part after the other). ONNX Runtime and OpenCV release the GIL, so on 2 cores a photo
    takes about the time of its longest parts; the parts run in the order they would alone, so the
    answer is the same. Tasks given to these threads never wait on the pool themselves."""
    try:
        threads = int(os.environ.get("INFERENCE_PARALLEL", "2"))
    except ValueError:
        threads = 2
    if threads <= 1:
        return None
    with _side_lock:
        if threads not in _side_pools:
            _side_pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inference-side")
        return _side_pools[threads]


class OnnxRunner:
    """One ONNX Runtime session: ``run(batch)`` -> the model's output as float32. Safe to call from
    several threads at once (``InferenceSession.run`` is thread-safe)."""

    def __init__(self, path: Path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is in requirements.txt
            raise EngineUnavailable("onnxruntime is not installed") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise EngineUnavailable(f"engine file {path} could not be loaded: {exc}") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.path = Path(path)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def export(keras_model: Any, keras_path: Path, probe: np.ndarray | None = None) -> dict[str, Any]:
    """Write ``keras_path`` with the suffix ``.onnx`` from ``keras_model`` and return the card's
    ``engine`` entry. ``probe``: a batch to compare ONNX Runtime with Keras on (random inputs of
    the model's shape by default); a difference above ``PARITY_TOLERANCE`` raises."""
    import tensorflow as tf
    import tf2onnx

    from recognition.inference.files import sha256_file

    keras_path = Path(keras_path)
    onnx_path = keras_path.with_suffix(".onnx")
    shape = tuple(keras_model.inputs[0].shape[1:])
    spec = (tf.TensorSpec((None, *shape), tf.float32, name=keras_model.inputs[0].name.split(":")[0] or "input"),)
    tmp = onnx_path.with_suffix(".onnx.tmp")
    tf2onnx.convert.from_keras(keras_model, input_signature=spec, opset=OPSET, output_path=str(tmp))
    if probe is None:
        probe = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
    expected = np.asarray(keras_model.predict_on_batch(probe), dtype=np.float64)
    got = OnnxRunner(tmp, threads=1).run(probe).astype(np.float64)
    difference = float(np.abs(expected - got).max())
    if difference > PARITY_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise EngineUnavailable(f"{onnx_path.name}: ONNX Runtime differs from Keras by {difference:.2e} (> {PARITY_TOLERANCE})")
    os.replace(tmp, onnx_path)
    return {
        "format": "onnx",
        "file": onnx_path.name,
        "sha256": sha256_file(onnx_path),
        "opset": OPSET,
        "source_sha256": sha256_file(keras_path),
        "max_abs_difference": float(f"{difference:.3g}"),
    }
