"""Face + voice fusion: one emotion per moment of a video, and one for the whole clip.

Label sets. The face model knows 7 labels (angry, disgust, fear, happy, neutral, sad, surprise),
the voice model 8 (RAVDESS: neutral, calm, happy, sad, angry, fearful, disgust, surprised). Both
are mapped onto the face set, ``COMMON``: calm -> neutral (RAVDESS "calm" is a low-arousal
neutral; FER has no such class), fearful -> fear, surprised -> surprise, the rest by name.
Probabilities of labels that map to the same common label are added.

Reliability. Each model's card (``models/<name>.json``) holds its test-set confusion matrix
(rows: true class, columns: predicted; face: FER2013 PublicTest, voice: RAVDESS actors 17-20).
After merging rows and columns onto ``COMMON``, the reliability of a model for class c is
Youden's J = recall(c) - false-positive rate(c), clipped to [0, 1]: 0 for a model that says c
no more often for true c than for anything else (a model that calls everything "angry" has
recall 1 but J 0), 1 for a perfect one. It does not depend on how often c occurs in the test
set. Cards without a confusion matrix fall back to the model's chance-corrected test accuracy
(acc - 1/K) / (1 - 1/K) for every class; cards without metrics to ``DEFAULT_RELIABILITY``.

The rule, per time window and class c (face p_f: the faces in that frame, averaged weighted by
box area; voice p_v: the voice window covering that moment, both on ``COMMON``):

    w_f(c) = max(J_f(c), FLOOR),  w_v(c) = max(J_v(c), FLOOR)
    s(c)   = (w_f(c) p_f(c) + w_v(c) p_v(c)) / (w_f(c) + w_v(c))
    fused  = s / sum(s)

so for every class the model that is more reliable at telling that class apart gets the larger
say; FLOOR (0.02) keeps a useless model from being divided by zero and lets the other decide.
With only one modality present the fused distribution is that modality's (mapped) one. The
clip's fused emotion is the mean of the per-window fused distributions (every window with
evidence counts the same) and its argmax; the confidence is that mean's largest probability.

``python -m recognition.inference.fusion`` prints the weights of the served models (docs/features.md,
section "Video", has the table). For the models of 2026-11-26, face_cnn (test accuracy 0.44)
and voice_cnn_long (0.625), J face / J voice: angry 0.05 / 0.75, disgust 0.00 / 0.80, fear
0.01 / 0.47, happy 0.60 / 0.37, neutral 0.32 / 0.86, sad 0.23 / 0.22, surprise 0.51 / 0.57: the
face leads for happy, sad and surprise are shared, the voice decides the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .labels import FACE_EMOTIONS

COMMON: tuple[str, ...] = FACE_EMOTIONS
TO_COMMON: dict[str, str] = {
    **{label: label for label in COMMON},
    "calm": "neutral",
    "fearful": "fear",
    "surprised": "surprise",
}
FLOOR = 0.02
DEFAULT_RELIABILITY = 0.5


def to_common(probabilities: Mapping[str, float] | None) -> np.ndarray | None:
    """A model's {label: p} -> probabilities over ``COMMON`` (mapped labels added, renormalised);
    None when nothing maps or everything is 0 (e.g. a voice window without speech)."""
    if not probabilities:
        return None
    out = np.zeros(len(COMMON), dtype=np.float64)
    for label, p in probabilities.items():
        common = TO_COMMON.get(label)
        if common is not None and p is not None and np.isfinite(p) and p > 0:
            out[COMMON.index(common)] += float(p)
    total = out.sum()
    return out / total if total > 0 else None


def _merged_confusion(
    classes: Sequence[str], confusion: Sequence[Sequence[float]]
) -> np.ndarray:
    """A (K, K) confusion matrix over ``classes`` summed onto ``COMMON`` (rows true, cols predicted)."""
    matrix = np.asarray(confusion, dtype=np.float64)
    if matrix.shape != (len(classes), len(classes)):
        raise ValueError(
            f"confusion is {matrix.shape}, expected {len(classes)} classes square"
        )
    index = [COMMON.index(TO_COMMON[c]) if c in TO_COMMON else -1 for c in classes]
    merged = np.zeros((len(COMMON), len(COMMON)))
    for i, ci in enumerate(index):
        for j, cj in enumerate(index):
            if ci >= 0 and cj >= 0:
                merged[ci, cj] += matrix[i, j]
    return merged


def youden_j(merged: np.ndarray) -> np.ndarray:
    """Per class: recall - false-positive rate, clipped to [0, 1] (0 where undefined)."""
    total = merged.sum()
    positives = merged.sum(axis=1)
    predicted = merged.sum(axis=0)
    hits = np.diag(merged)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(positives > 0, hits / positives, 0.0)
        negatives = total - positives
        fpr = np.where(negatives > 0, (predicted - hits) / negatives, 0.0)
    return np.clip(np.where(positives > 0, recall - fpr, 0.0), 0.0, 1.0)


def reliability(card: Mapping[str, Any] | None) -> dict[str, Any]:
    """How far to trust a model per common class, from its card's test metrics.

    Returns ``{"per_class": {label: weight in [0, 1]}, "source": how it was measured}``.
    """
    card = card or {}
    classes = list(card.get("classes") or [])
    test = ((card.get("metrics") or {}).get("test")) or {}
    confusion = test.get("confusion")
    if classes and confusion:
        try:
            j = youden_j(_merged_confusion(classes, confusion))
        except (ValueError, TypeError):
            j = None
        if j is not None:
            return {
                "per_class": {
                    c: round(float(v), 4) for c, v in zip(COMMON, j, strict=True)
                },
                "source": f"Youden's J from the test confusion matrix (n={int(np.sum(confusion))})",
            }
    accuracy = test.get("accuracy")
    if classes and isinstance(accuracy, (int, float)):
        chance = 1.0 / len(classes)
        skill = float(np.clip((accuracy - chance) / (1 - chance), 0.0, 1.0))
        return {
            "per_class": {c: round(skill, 4) for c in COMMON},
            "source": f"chance-corrected test accuracy ({accuracy:.3f})",
        }
    return {
        "per_class": {c: DEFAULT_RELIABILITY for c in COMMON},
        "source": "no test metrics in the model card (default)",
    }


def weights(
    face_card: Mapping[str, Any] | None, voice_card: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The fusion weights for a pair of models, as stored with each video result."""
    face, voice = reliability(face_card), reliability(voice_card)
    return {
        "rule": "per class c: (w_f p_f + w_v p_v) / (w_f + w_v), w = max(Youden's J, 0.02); renormalised",
        "labels": list(COMMON),
        "face": face,
        "voice": voice,
    }


def _vector(per_class: Mapping[str, float]) -> np.ndarray:
    return np.maximum(np.asarray([float(per_class.get(c, 0.0)) for c in COMMON]), FLOOR)


def _as_result(p: np.ndarray, sources: list[str]) -> dict[str, Any]:
    best = int(np.argmax(p))
    return {
        "emotion": COMMON[best],
        "confidence": round(float(p[best]), 4),
        "probabilities": {
            c: round(float(v), 4) for c, v in zip(COMMON, p, strict=True)
        },
        "sources": sources,
    }


def fuse(
    face: np.ndarray | None, voice: np.ndarray | None, fusion_weights: Mapping[str, Any]
) -> dict[str, Any] | None:
    """One moment: face and/or voice probabilities over ``COMMON`` -> fused result (None if
    neither is present). ``sources`` says which modalities contributed."""
    if face is None and voice is None:
        return None
    if voice is None:
        return _as_result(face, ["face"])
    if face is None:
        return _as_result(voice, ["voice"])
    w_face = _vector(fusion_weights["face"]["per_class"])
    w_voice = _vector(fusion_weights["voice"]["per_class"])
    scores = (w_face * face + w_voice * voice) / (w_face + w_voice)
    return _as_result(scores / scores.sum(), ["face", "voice"])


def faces_distribution(faces: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
    """The faces of one frame -> one distribution over ``COMMON``, weighted by box area (the
    person nearest the camera counts most); None without faces."""
    total = np.zeros(len(COMMON))
    weight_sum = 0.0
    for face in faces:
        p = to_common(face.get("probabilities"))
        box = face.get("box") or [0, 0, 1, 1]
        area = max(float(box[2]) * float(box[3]), 1.0)
        if p is not None:
            total += area * p
            weight_sum += area
    return total / weight_sum if weight_sum else None


def overall(fused: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The clip's emotion: mean of the per-window fused distributions (None if there are none)."""
    rows = [to_common(f["probabilities"]) for f in fused if f]
    rows = [r for r in rows if r is not None]
    if not rows:
        return None
    sources = sorted({s for f in fused if f for s in f.get("sources", [])})
    result = _as_result(np.mean(rows, axis=0), sources)
    result["windows"] = len(rows)
    return result


def main() -> None:  # pragma: no cover - a reporting command
    """Print the per-class weights of the served face and voice models (MODELS_DIR, else models/)."""
    from .registry import load_card, served_name

    cards = {task: load_card(served_name(task)) for task in ("face", "voice")}
    table = weights(cards["face"], cards["voice"])
    print(
        f"face:  {cards['face']['name']} {cards['face'].get('version')} - {table['face']['source']}"
    )
    print(
        f"voice: {cards['voice']['name']} {cards['voice'].get('version')} - {table['voice']['source']}"
    )
    print(f"{'class':<10}{'J face':>8}{'J voice':>9}{'face share':>12}")
    for c in COMMON:
        wf = max(table["face"]["per_class"][c], FLOOR)
        wv = max(table["voice"]["per_class"][c], FLOOR)
        print(
            f"{c:<10}{table['face']['per_class'][c]:>8.3f}{table['voice']['per_class'][c]:>9.3f}{wf / (wf + wv):>12.2f}"
        )


if __name__ == "__main__":  # pragma: no cover
    main()
