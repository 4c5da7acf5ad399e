"""Load and warm the served models when a process that serves them starts, so the first
upload or live frame does not pay for importing TensorFlow, loading the models, building the
face detector and tracing the first prediction (several seconds on this machine).

Called from Celery's worker signals (``emotionsite/celery.py``: each prefork child, or the
worker itself for the solo and thread pools) and, in the background, when the app is ready in a
web server process (``OperationsConfig.ready``: daphne, uvicorn, ``runserver``; not tests, not
other management commands, not the Celery parent that forks). ``WARM_UP_MODELS=False`` turns it
off.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

logger = logging.getLogger("recognition.warmup")

_lock = threading.Lock()
_done: dict[str, float] | None = None
_started = threading.Event()
# Face batches the warm-up runs through each served face model: one face, a mirrored pair, a
# group photo's, a live frame's. ONNX Runtime traces nothing per shape (TensorFlow did: 0.1-0.3 s
# for each new batch size, benchmarks/bench_engines.py), but it sizes its buffers on a shape's
# first call, so the first job's shapes are seen here first.
FACE_BATCHES = (1, 2, 4, 8)


def warming() -> bool:
    """True while this process has started warming the served models and not yet finished:
    readiness answers "warming up" until then (``health``)."""
    return _started.is_set() and _done is None


def warm_up_models() -> dict[str, float]:
    """Load the served face and voice models and the face detector, and run each once on a
    blank input; returns milliseconds per step. Once per process; a missing or broken model is
    logged, not raised (the job that needs it reports it to the person)."""
    global _done
    _started.set()
    with _lock:
        if _done is not None:
            return _done
        import numpy as np

        from recognition.inference import faces, registry, voice
        from recognition.operations import metrics

        def tone(seconds: float) -> np.ndarray:
            t = np.arange(int(16000 * seconds)) / 16000
            return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

        def face() -> None:
            registry.get_model(task="face")
            faces.warm_up()  # this thread's detector and a batch of one face
            # Every served face model (photos and live), at every batch size a job starts with.
            for model in {None, faces.live_model_name()}:
                for n in FACE_BATCHES:
                    faces.classify_faces(np.zeros((n, 48, 48), dtype=np.uint8), model=model)

        def speech() -> None:
            voice.analyze_audio(tone(1.0))  # one window
            voice.analyze_audio(tone(6.0))  # several windows: any batch size
            # An uploaded file's path too: decoding a FLAC at 48 kHz and resampling it
            import io

            import soundfile

            upload = io.BytesIO()
            soundfile.write(upload, np.repeat(tone(1.0), 3), 48000, format="FLAC")
            voice.analyze_audio(upload.getvalue())

        timings: dict[str, float] = {}
        steps = {"face_ms": face, "voice_ms": speech}
        for name, step in steps.items():
            t0 = time.perf_counter()
            try:
                with metrics.not_recorded():  # blank input: not inference anyone asked for
                    step()
            except Exception:  # never stop a worker or server from starting
                logger.warning("warm-up %s failed", name, exc_info=True)
                continue
            timings[name] = round((time.perf_counter() - t0) * 1000, 1)
        logger.info("models warmed up: %s", timings)
        _done = timings
        return timings


WEB_SERVERS = {"daphne", "uvicorn", "gunicorn", "hypercorn"}


def serving_web(argv: list[str] | None = None) -> bool:
    """Whether this process is a web server (``daphne ...``, ``python -m daphne ...``, the
    serving child of ``manage.py runserver``) rather than a test run or another command."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return False
    program = Path(argv[0])
    if program.name in WEB_SERVERS or (
        program.name == "__main__.py" and program.parent.name in WEB_SERVERS
    ):
        return True
    if len(argv) > 1 and argv[1] == "runserver":
        return "--noreload" in argv or os.environ.get("RUN_MAIN") == "true"
    return False


_after: list[Callable[[], object]] = []


def after_warm_up(then: Callable[[], object]) -> None:
    """Run ``then`` after the models are warm in a web server (the live app warms one thread of
    its pool this way: its face detector is per thread)."""
    _after.append(then)


def warm_up_in_background() -> threading.Thread | None:
    """Warm the models in a daemon thread (the web server starts answering meanwhile), and then
    what the apps asked for (``after_warm_up``); None when switched off."""
    if not getattr(settings, "WARM_UP_MODELS", True):
        return None

    def run() -> None:
        warm_up_models()
        for then in _after:
            then()

    thread = threading.Thread(target=run, name="warm-up-models", daemon=True)
    thread.start()
    return thread


def on_worker_process_init(**_: object) -> None:
    """``worker_process_init``: a prefork child, where the tasks run, starts."""
    if getattr(settings, "WARM_UP_MODELS", True):
        warm_up_models()


def on_worker_ready(sender: object = None, **_: object) -> None:
    """``worker_ready``: warm the worker's own process when its pool is not prefork (solo,
    threads), where the tasks run in this process; prefork children warm themselves."""
    from celery.concurrency.prefork import TaskPool as PreforkPool

    pool_cls = getattr(getattr(sender, "controller", None), "pool_cls", None)
    if isinstance(pool_cls, type) and issubclass(pool_cls, PreforkPool):
        return
    if getattr(settings, "WARM_UP_MODELS", True):
        warm_up_models()
