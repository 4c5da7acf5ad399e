"""Calibration metrics used by the model cards: temperature fitting, ECE and its noise floor."""

import numpy as np

from training.metrics import (
    ece_noise_floor,
    expected_calibration_error,
    fit_temperature,
)


def _sample(n: int, confidence: float, classes: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` predictions with top probability ``confidence``, labels drawn from them (calibrated)."""
    rng = np.random.default_rng(seed)
    top = rng.integers(0, classes, n)
    p = np.full((n, classes), (1 - confidence) / (classes - 1))
    p[np.arange(n), top] = confidence
    labels = np.array([rng.choice(classes, p=row) for row in p])
    return p, labels


def test_noise_floor_shrinks_with_sample_size_and_confidence():
    small = ece_noise_floor(_sample(240, 0.6)[0])
    large = ece_noise_floor(_sample(4000, 0.6)[0])
    sure = ece_noise_floor(_sample(240, 0.97)[0])
    assert small["n"] == 240 and small["draws"] == 400
    # 240 clips at 60 % confidence: a calibrated model still measures several points of ECE
    assert 0.02 < small["mean"] < 0.08 and small["p90"] > small["mean"]
    assert large["mean"] < small["mean"] / 2  # noise falls like 1/sqrt(n)
    assert sure["mean"] < small["mean"]
    assert ece_noise_floor(np.zeros((0, 8)))["n"] == 0


def test_a_calibrated_sample_measures_near_its_floor_and_a_miscalibrated_one_above_it():
    p, labels = _sample(240, 0.6, seed=3)
    floor = ece_noise_floor(p)
    assert expected_calibration_error(p, labels) < floor["p90"] + 0.02
    over = np.where(p == p.max(1, keepdims=True), 0.95, 0.05 / 7)  # claims 95 % where 60 % is right
    assert expected_calibration_error(over, labels) > floor["p90"] + 0.2


def test_fit_temperature_recovers_a_known_sharpening():
    p, labels = _sample(3000, 0.6, seed=5)
    logp = np.log(p)
    soft = np.exp(logp / 2.0)  # the same model, softened by T = 2
    soft /= soft.sum(1, keepdims=True)
    t = fit_temperature(soft, labels)
    assert 0.4 < t < 0.6  # sharpening back by about 1/2
