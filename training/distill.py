"""Knowledge distillation for the face trainer (``--teacher``): one student network learns the
served ensemble's judgement from its soft labels (Hinton et al. 2015).

The teacher (any served face model, e.g. ``face_ensemble`` with its mirror views) labels every
training face once, un-augmented, and the labels are cached under ``training/cache/``; the
student then sees each augmented face with its face's teacher label (the teacher is mirror-
symmetric, and the small rotations, shifts and brightness changes keep the face's expression).
With ``--online-teacher`` the teacher instead labels every epoch's augmented (and mixed) faces,
so student and teacher are matched on the same pixels (Beyer et al. 2022, "consistent teaching").
Targets travel to Keras as ``[one-hot | softened teacher]`` rows of twice the classes, so the
loop, checkpoints and ``--resume`` stay the face trainer's own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np

from recognition.inference.registry import apply_temperature
from training.data import CACHE


@keras.saving.register_keras_serializable(package="emotionsite")
class DistillationLoss(keras.losses.Loss):
    """``weight`` x T^2 x cross-entropy(teacher softened by T, student softened by T)
    + (1 - ``weight``) x cross-entropy(label-smoothed one-hot, student). The student's outputs
    are softmax probabilities, so softening is softmax(log p / T)."""

    def __init__(self, classes: int = 7, temperature: float = 2.0, weight: float = 0.9, label_smoothing: float = 0.0, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.classes, self.temperature, self.weight, self.label_smoothing = int(classes), float(temperature), float(weight), float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        k = self.classes
        hard = y_true[:, :k] * (1.0 - self.label_smoothing) + self.label_smoothing / k
        soft = y_true[:, k:]
        log_p = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        hard_ce = -ops.sum(hard * log_p, axis=-1)
        log_p_t = ops.log_softmax(log_p / self.temperature, axis=-1)
        soft_ce = -ops.sum(soft * log_p_t, axis=-1) * self.temperature**2
        return self.weight * soft_ce + (1.0 - self.weight) * hard_ce

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "temperature": self.temperature, "weight": self.weight, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="emotionsite")
def label_accuracy(y_true, y_pred):
    """Whether the student's top class is the label: the one-hot half of ``[one-hot | teacher]``."""
    classes = keras.ops.shape(y_pred)[-1]
    return keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_true[:, :classes], axis=-1), keras.ops.argmax(y_pred, axis=-1)), "float32")


def hard_accuracy(classes: int = 7):
    """Accuracy against the one-hot half of the targets, logged as ``accuracy`` / ``val_accuracy``
    (what the checkpoint loop chooses the best epoch by)."""
    del classes  # read from the outputs' shape
    return keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy")


def teacher_probabilities(teacher: str, faces_u8: np.ndarray, directory: Path | None = None, batch: int = 512) -> np.ndarray:
    """The served model ``teacher``'s calibrated probabilities (N, classes) for 48x48 uint8 faces,
    through ``registry.get_model`` (its views and temperatures as served); cached by teacher card
    and faces."""
    import json

    from recognition.inference import registry
    from recognition.inference.preprocessing import faces_to_input

    model = registry.get_model(teacher, directory=directory)
    digest = hashlib.sha256(json.dumps(model.card, sort_keys=True).encode() + faces_u8.tobytes()).hexdigest()[:16]
    path = CACHE / f"teacher-{teacher}-{digest}.npy"
    if path.exists():
        return np.load(path)
    out = np.concatenate([model.predict(faces_to_input(faces_u8[i : i + batch])) for i in range(0, len(faces_u8), batch)])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def targets(y: np.ndarray, teacher_p: np.ndarray, temperature: float) -> np.ndarray:
    """``[one-hot | teacher softened by temperature]`` rows for DistillationLoss."""
    classes = teacher_p.shape[1]
    return np.concatenate([np.eye(classes, dtype=np.float32)[y], apply_temperature(teacher_p, temperature).astype(np.float32)], axis=1)


def online_targets(teacher: str, x_epoch: np.ndarray, y_epoch: np.ndarray, temperature: float, batch: int = 512) -> np.ndarray:
    """``[hard | teacher softened]`` rows with the teacher's probabilities for ``x_epoch`` itself
    (network input, already augmented): the hard half is ``y_epoch``'s first ``classes`` columns
    (one-hot, or mixed by mixup)."""
    from recognition.inference import registry

    model = registry.get_model(teacher)
    probabilities = np.concatenate([model.predict(x_epoch[i : i + batch]) for i in range(0, len(x_epoch), batch)])
    classes = probabilities.shape[1]
    return np.concatenate([y_epoch[:, :classes].astype(np.float32), apply_temperature(probabilities, temperature).astype(np.float32)], axis=1)
