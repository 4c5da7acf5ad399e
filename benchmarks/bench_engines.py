"""Which engine serves the networks: TensorFlow, ONNX Runtime or TFLite/XNNPACK, in one run.

    .venv/bin/python -m benchmarks.bench_engines [--repeats 50] [--no-start]

Table 1, per served network and batch size: the median milliseconds of one call of each engine on
the same inputs, and its ratio to TensorFlow's ``predict_on_batch`` (what served before), after a
warm-up; "first call" is the first call of a batch size the process has not seen (TensorFlow
traces a graph for it). Table 2: a fresh process that loads and warms the served models as a
worker does (``recognition.warmup.warm_up_models``) with ``INFERENCE_ENGINE=keras`` and ``onnx``:
wall seconds, peak resident memory, and whether TensorFlow was imported.

The CPU's vector extensions are printed first: ONNX Runtime and XNNPACK pick their kernels from
CPUID and cannot be held to AVX2 on a CPU with AVX-512; TensorFlow's oneDNN can
(``ONEDNN_MAX_CPU_ISA=AVX2`` in the environment).

``--wider 0.5``: a third table, what a wider face student would cost to serve before one is trained:
the live network against ``face_vgg`` built at that width with random weights (the time of a
network does not depend on its weights), exported with the same ``engine.export``, ONNX Runtime on
one thread, at the live batch sizes (4 faces, with and without the mirror view).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import median_ms, tflite_runner
from recognition.inference import engine, registry

REPO = Path(__file__).resolve().parents[1]


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return ", ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "amx_tile") if f in flags)


def engine_rows(name: str, batches: tuple[int, ...], repeats: int) -> list[str]:
    os.environ["INFERENCE_ENGINE"] = "onnx"
    loaded = registry.get_model(name)
    if loaded.runner is None:
        return [f"| {name} | - | no engine file: python -m training.export_engine {name} | | | |"]
    km = loaded.keras_model
    shape = tuple(km.inputs[0].shape[1:])
    path = registry.models_dir() / loaded.card["engine"]["file"]
    rng = np.random.default_rng(0)
    engines = {
        "TensorFlow predict_on_batch": lambda x: km.predict_on_batch(x),
        "ONNX Runtime, 1 thread": engine.OnnxRunner(path, threads=1).run,
        "ONNX Runtime, 2 threads": engine.OnnxRunner(path, threads=2).run,
    }
    lite, _ = tflite_runner(km, 2)
    if lite is not None:
        engines["TFLite/XNNPACK, 2 threads"] = lite
    rows = []
    for batch in batches:
        x = rng.random((batch, *shape), dtype=np.float32)
        base = None
        for label, fn in engines.items():
            t0 = time.perf_counter()
            fn(x)  # a batch size this engine has not seen yet in this process
            first = (time.perf_counter() - t0) * 1000
            ms = median_ms(lambda fn=fn, x=x: fn(x), repeats)
            base = base or ms
            diff = float(np.abs(np.asarray(fn(x)) - np.asarray(km.predict_on_batch(x))).max())
            rows.append(f"| {name} | {batch} | {label} | {ms:.2f} | {base / ms:.2f}x | {first:.0f} | {diff:.1e} |")
    return rows


START_SCRIPT = """
import json, os, sys, time
t0 = time.perf_counter()
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")
django.setup()
from recognition.operations import warmup
timings = warmup.warm_up_models()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))  # ru_maxrss counts the forking parent
print(json.dumps({"seconds": time.perf_counter() - t0, "rss_mb": hwm / 1024,
                  "tensorflow": "tensorflow" in sys.modules, "warm": timings}))
"""


def start_rows() -> list[str]:
    rows = []
    for choice in ("keras", "onnx"):
        env = {**os.environ, "INFERENCE_ENGINE": choice, "WARM_UP_MODELS": "False", "DATA_DIR": tempfile.mkdtemp()}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        out = subprocess.run([sys.executable, "-c", START_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(
            f"| {choice} | {result['seconds']:.2f} | {result['rss_mb']:.0f} | {'yes' if result['tensorflow'] else 'no'} "
            f"| {result['warm'].get('face_ms', 'failed')} | {result['warm'].get('voice_ms', 'failed')} |"
        )
    return rows


def first_member(task: str) -> str:
    """The first network of the model that serves ``task`` (the model itself if it is one network)."""
    card = registry.load_card(registry.served_name(task))
    return (card.get("members") or [card])[0]["name"]


def wider_rows(width: float, repeats: int) -> list[str]:
    from training.face import build_vgg

    name = first_member("face_live")
    served = registry.models_dir() / registry.load_card(name)["engine"]["file"]
    keras_path = Path(tempfile.mkdtemp(prefix="bench-wider-")) / f"face_vgg_w{width:g}.keras"
    model = build_vgg(7, width)
    model.save(keras_path)
    engine.export(model, keras_path)
    runners = {
        f"{name} (served)": engine.OnnxRunner(served, threads=1),
        f"face_vgg width {width:g}, {model.count_params():,} parameters": engine.OnnxRunner(keras_path.with_suffix(".onnx"), threads=1),
    }
    rng = np.random.default_rng(0)
    rows = []
    for batch in (4, 8):
        x = rng.random((batch, *model.inputs[0].shape[1:]), dtype=np.float32)
        base = None
        for label, runner in runners.items():
            ms = median_ms(lambda runner=runner, x=x: runner.run(x), repeats)
            base = base or ms
            rows.append(f"| {batch} | {label} | {ms:.2f} | {ms / base:.2f}x |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--no-start", action="store_true", help="skip the process start table")
    parser.add_argument("--wider", type=float, default=None, help="also time a random face_vgg of this width against the live network")
    args = parser.parse_args(argv)
    print(f"CPU: {os.cpu_count()} cores; flags: {cpu_flags()}; ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')}\n")
    print("| network | batch | engine | median ms | vs TensorFlow | first call ms | max abs diff vs Keras |")
    print("|---|---|---|---|---|---|---|")
    voice = registry.load_card(registry.served_name("voice"))
    for name, batches in ((first_member("face"), (1, 2, 8, 24)), *[(m["name"], (1, 4)) for m in voice.get("members", [voice])]):
        for row in engine_rows(name, batches, args.repeats):
            print(row, flush=True)
    if not args.no_start:
        print("\nA worker process starting: import, Django set-up, load and warm every served model")
        print("| INFERENCE_ENGINE | seconds | peak RSS MB | TensorFlow imported | face warm-up ms | voice warm-up ms |")
        print("|---|---|---|---|---|---|")
        for row in start_rows():
            print(row, flush=True)
    if args.wider:
        print("\nA wider face student: ONNX Runtime, 1 thread, against the live network (4 faces; 8 = with the mirror view)")
        print("| batch | network | median ms | vs served |")
        print("|---|---|---|---|")
        for row in wider_rows(args.wider, args.repeats):
            print(row, flush=True)


if __name__ == "__main__":
    main()
