"""Face training throughput on this CPU: images per second of one training epoch's work.

    python -m benchmarks.bench_train_face [--arch vgg|cnn] [--width 0.25] [--images 3072]

Each row runs in a fresh subprocess (TensorFlow's thread pools and global policy are fixed once
set) and fits ``--images`` real FER2013 training faces, augmented as ``training.face`` does,
after one untimed warm-up fit. The baseline row is what the trainer did before this benchmark:
Keras' default ``jit_compile="auto"`` (XLA), batch 128, one thread, in-memory NumPy arrays.
Rows change one thing each: XLA off, threads, batch size, a ``tf.data`` pipeline with
prefetching, mixed bfloat16.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CONFIGS = [
    ("baseline: XLA (Keras 'auto'), batch 128, 1 thread, NumPy", {"jit": "auto"}),
    ("XLA on (jit_compile=True)", {"jit": True}),
    ("XLA off", {"jit": False}),
    ("XLA off, 2 threads", {"jit": False, "threads": 2}),
    ("XLA off, batch 64", {"jit": False, "batch": 64}),
    ("XLA off, batch 256", {"jit": False, "batch": 256}),
    ("XLA off, tf.data + prefetch", {"jit": False, "tfdata": True}),
    ("XLA off, mixed bfloat16", {"jit": False, "policy": "mixed_bfloat16"}),
]


def worker(config: dict, arch: str, width: float, images: int) -> dict:
    """Runs inside the subprocess: build, warm up, time one pass over ``images`` faces."""
    threads = config.get("threads", 1)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    import numpy as np

    from recognition.inference.preprocessing import faces_to_input
    from training import data as datasets
    from training.face import augment_faces, build_cnn, build_vgg

    if config.get("policy"):
        keras.mixed_precision.set_global_policy(config["policy"])
    x_all, y_all = datasets.load_face_arrays(datasets.DEFAULT_FER / "train")
    rng = np.random.default_rng(0)
    idx = rng.choice(len(y_all), images, replace=False)
    x = faces_to_input(augment_faces(x_all[idx], rng, 0.5))
    y = keras.utils.to_categorical(y_all[idx], 7)
    model = (build_vgg if arch == "vgg" else build_cnn)(7, width)
    model.compile(keras.optimizers.AdamW(1e-3), keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy"], jit_compile=config["jit"])
    batch = config.get("batch", 128)

    def run(n):
        if config.get("tfdata"):
            ds = tf.data.Dataset.from_tensor_slices((x[:n], y[:n])).shuffle(n).batch(batch).prefetch(tf.data.AUTOTUNE)
            model.fit(ds, epochs=1, verbose=0)
        else:
            model.fit(x[:n], y[:n], batch_size=batch, epochs=1, verbose=0, shuffle=True)

    run(batch * 3)  # compile / trace
    t0 = time.perf_counter()
    run(images)
    seconds = time.perf_counter() - t0
    return {"images_per_s": images / seconds, "seconds": seconds}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("vgg", "cnn"), default="vgg")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--images", type=int, default=3072)
    parser.add_argument("--only", type=int, nargs="*", help="row numbers to run (default: all)")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        print(json.dumps(worker(json.loads(args._worker), args.arch, args.width, args.images)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    epoch = 25837  # training faces per epoch (FER2013 Training minus the 10% validation split)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.arch} width {args.width}; {args.images} faces per row")
    print("| setting | images/s | vs baseline | one epoch (25,837 faces) |")
    print("|---|---|---|---|")
    base = None
    for i, (label, config) in enumerate(CONFIGS):
        if args.only and i not in args.only and i != 0:
            continue
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_train_face", "--arch", args.arch, "--width", str(args.width),
                              "--images", str(args.images), "--_worker", json.dumps(config)],
                             cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"| {label} | failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode} | | |")
            continue
        rate = json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]
        base = base or rate
        print(f"| {label} | {rate:.0f} | {rate / base:.2f}x | {epoch / rate:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
