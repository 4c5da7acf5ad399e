"""Timing helpers shared by the benchmarks: every number is a median (or percentile) of repeated
runs in one process, after a warm-up, in milliseconds."""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median milliseconds of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn, repeats))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values`` by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tflite_runner(keras_model, threads: int) -> tuple[Callable | None, str]:
    """(batch -> output through TFLite with XNNPACK on ``threads`` threads, its size), or
    (None, why) where the conversion fails. One interpreter per batch size: resizing reallocates."""
    import tensorflow as tf

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the SavedModel
            blob = tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
    except Exception as exc:  # noqa: BLE001 - a model TFLite cannot convert gets no row
        return None, f"conversion failed: {type(exc).__name__}: {exc}"
    try:  # LiteRT is the maintained interpreter; tf.lite.Interpreter is deprecated
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    path = Path(tempfile.mkdtemp(prefix="bench-tflite-")) / "model.tflite"
    path.write_bytes(blob)
    interpreters: dict[int, object] = {}

    def run(x):
        if len(x) not in interpreters:
            interp = Interpreter(model_path=str(path), num_threads=threads)
            interp.resize_tensor_input(interp.get_input_details()[0]["index"], list(x.shape))
            interp.allocate_tensors()
            interpreters[len(x)] = interp
        interp = interpreters[len(x)]
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])

    return run, f"{len(blob) / 1e6:.2f} MB"
