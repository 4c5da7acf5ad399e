"""Evaluation metrics and probability calibration, shared by face and voice training/evaluation."""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def expected_calibration_error(probabilities: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def ece_noise_floor(probabilities: np.ndarray, bins: int = 15, draws: int = 400, seed: int = 0) -> dict:
    """The ECE a perfectly calibrated model would show on a sample of this size: labels drawn from
    the model's own probabilities (so confidence equals accuracy in expectation), ECE measured
    ``draws`` times. On a few hundred clips with mid-range confidences the estimate alone is
    several points; a measured ECE near this floor is what a calibrated model scores."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if not len(probabilities):
        return {"n": 0, "mean": 0.0, "p90": 0.0, "draws": 0}
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
    values = []
    for _ in range(draws):
        u = rng.random((len(probabilities), 1))
        labels = np.minimum((u > cumulative).sum(axis=1), probabilities.shape[1] - 1)
        values.append(expected_calibration_error(probabilities, labels, bins))
    return {"n": len(probabilities), "mean": round(float(np.mean(values)), 4), "p90": round(float(np.quantile(values, 0.9)), 4), "draws": draws}


def fit_temperature(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature T minimising the NLL of softmax(log p / T) on held-out data (grid + refine)."""
    logp = np.log(np.clip(probabilities, 1e-12, 1.0))

    def nll(t: float) -> float:
        z = logp / t
        z = z - z.max(axis=1, keepdims=True)
        logsm = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logsm[np.arange(len(y_true)), y_true].mean())

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 81))
    best = min(grid, key=nll)
    fine = np.linspace(best / 1.1, best * 1.1, 41)
    return float(min(fine, key=nll))


def summarise(probabilities: np.ndarray, y_true: np.ndarray, classes: list[str] | tuple[str, ...]) -> dict:
    """accuracy, n, per-class recall, confusion matrix and ECE for calibrated probabilities."""
    y_true = np.asarray(y_true)
    y_pred = probabilities.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    support = matrix.sum(axis=1)
    recall = {
        name: (float(matrix[i, i] / support[i]) if support[i] else None) for i, name in enumerate(classes)
    }
    return {
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "n": int(len(y_true)),
        "per_class_recall": recall,
        "confusion": matrix.tolist(),
        "ece": expected_calibration_error(probabilities, y_true) if len(y_true) else 0.0,
    }


def markdown_confusion(matrix: list[list[int]], classes) -> str:
    head = "| true \\ predicted | " + " | ".join(classes) + " |"
    sep = "|---" * (len(classes) + 1) + "|"
    rows = [f"| {c} | " + " | ".join(str(v) for v in row) + " |" for c, row in zip(classes, matrix)]
    return "\n".join([head, sep, *rows])
