"""Speech emotion: a recording -> overall emotion, probabilities and a per-window timeline.

The signal is trimmed of leading/trailing silence and cut into 3 s windows every 1.5 s (one
window for a clip up to 3 s). Each window is peak-normalised and featurised by
``audio.model_input`` (the function training uses) and scored by the served voice model
(``registry.get_model(task="voice")``, loaded once per process, temperature-calibrated).
Windows where the speech rule (``audio.voiced_mask``: loud and tonal frames, at least 0.25 s)
finds no speech get ``emotion: None``; the overall probabilities are the mean over speech
windows weighted by their voiced frames. No speech anywhere -> ``speech: False``,
``emotion: None``, all probabilities 0.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import audio, config
from .registry import LoadedModel, apply_temperature, get_model


@dataclass
class WindowScores:
    bounds: list[tuple[int, int]]  # sample ranges in the original signal
    raw: np.ndarray  # (W, classes) uncalibrated
    probabilities: np.ndarray  # (W, classes) calibrated
    voiced: np.ndarray  # (W,) voiced frames per window
    speech: np.ndarray  # (W,) bool
    features_ms: float
    classify_ms: float


def score_windows(signal: np.ndarray, model: LoadedModel) -> WindowScores:
    """Trim, window, featurise and classify; the speech rule per window."""
    t0 = time.perf_counter()
    kind = model.card.get("input", {}).get("features", "log_mel")
    voiced = audio.voiced_mask(signal)
    start, end = audio.trim_bounds(signal)
    trimmed = signal[start:end]
    bounds, inputs, counts = [], [], []
    for s, e in audio.window_bounds(len(trimmed)):
        bounds.append((start + s, start + e))
        inputs.append(audio.model_input(trimmed[s:e], kind))
        counts.append(int(voiced[(start + s) // audio.HOP_LENGTH : max((start + e) // audio.HOP_LENGTH, (start + s) // audio.HOP_LENGTH + 1)].sum()))
    t1 = time.perf_counter()
    raw = model.predict_raw(np.stack(inputs))
    calibrated = apply_temperature(raw, model.temperature)
    t2 = time.perf_counter()
    counts_arr = np.asarray(counts)
    speech = np.asarray([audio.has_speech(c) for c in counts], dtype=bool)
    return WindowScores(bounds, raw, calibrated, counts_arr, speech, (t1 - t0) * 1000, (t2 - t1) * 1000)


def _aggregate(probabilities: np.ndarray, scores: WindowScores) -> np.ndarray:
    """Mean over speech windows weighted by voiced frames (all windows, equally, if none)."""
    if scores.speech.any():
        weights = np.where(scores.speech, scores.voiced, 0).astype(np.float64)
    else:
        weights = np.ones(len(probabilities))
    mean = (probabilities * weights[:, None]).sum(axis=0) / weights.sum()
    return mean / mean.sum()


def clip_probabilities(signal: np.ndarray, model: LoadedModel) -> tuple[np.ndarray, np.ndarray, bool]:
    """(calibrated, uncalibrated, speech) for a whole clip; the scores are given even where the
    speech rule finds none (evaluation counts those clips separately)."""
    scores = score_windows(signal, model)
    return _aggregate(scores.probabilities, scores), _aggregate(scores.raw, scores), bool(scores.speech.any())


def _probability_dict(classes: list[str], p: np.ndarray | None) -> dict[str, float]:
    if p is None:
        return {c: 0.0 for c in classes}
    return {c: round(float(v), 4) for c, v in zip(classes, p)}


def analyse_signal(signal: np.ndarray, model: LoadedModel) -> dict:
    """A decoded 16 kHz mono signal -> the ``analyze_audio`` result."""
    scores = score_windows(signal, model)
    classes = model.classes
    windows = []
    for (s, e), p, speech in zip(scores.bounds, scores.probabilities, scores.speech):
        windows.append({
            "start": round(s / audio.SAMPLE_RATE, 3),
            "end": round(e / audio.SAMPLE_RATE, 3),
            "emotion": classes[int(p.argmax())] if speech else None,
            "confidence": round(float(p.max()), 4) if speech else None,
            "probabilities": _probability_dict(classes, p if speech else None),
        })
    speech = bool(scores.speech.any())
    overall = _aggregate(scores.probabilities, scores) if speech else None
    timings = {"features_ms": round(scores.features_ms, 1), "classify_ms": round(scores.classify_ms, 1)}
    config.get().observe(model.name, timings)  # uploads, video sound tracks, live audio
    return {
        "emotion": classes[int(overall.argmax())] if overall is not None else None,
        "confidence": round(float(overall.max()), 4) if overall is not None else None,
        "probabilities": _probability_dict(classes, overall),
        "speech": speech,
        "duration": round(len(signal) / audio.SAMPLE_RATE, 3),
        "windows": windows,
        "model": model.info(),
        "timings": timings,
    }


def analyze_audio(data: bytes | np.ndarray, *, max_seconds: float | None = None) -> dict:
    """Bytes of any supported audio file, or a float32 mono 16 kHz array -> the voice result:
    ``{"emotion", "confidence", "probabilities" (8 labels), "speech", "duration", "windows":
    [{"start", "end", "emotion", "confidence", "probabilities"}], "model": {"name", "version"},
    "timings"}``. Raises InvalidMedia for unusable input, ModelUnavailable without a model."""
    t0 = time.perf_counter()
    signal = audio.as_signal(data, max_seconds=max_seconds)
    decode_ms = (time.perf_counter() - t0) * 1000
    model = get_model(task="voice")
    config.get().observe(model.name, {"decode_ms": decode_ms})
    result = analyse_signal(signal, model)
    result["timings"] = {"decode_ms": round(decode_ms, 1), **result["timings"]}
    return result
