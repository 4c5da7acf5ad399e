"""Custom Keras layers that served voice models contain, registered so ``load_model`` finds them.

They live in the inference package (not in ``training/``) because a saved model names them and
serving must be able to rebuild it; ``registry.load_keras`` imports this module first. They take
the serving features unchanged ((frames, bands) log-mel, padded with ``audio.LOG_FLOOR``), so the
preprocessing stays in ``audio.model_input`` alone.
"""

from __future__ import annotations

import math

import keras
from keras import ops

PACKAGE = "emotionsite"
# Padded frames hold log(LOG_FLOOR) in every band; a frame whose loudest band is this close to
# the floor is padding, not signal.
_FLOOR = math.log(1e-6)
_PAD_MARGIN = 1e-3


def _valid_mask(x):
    """(B, T, F) log-mel -> (B, T, 1) float mask of real (non-padding) frames."""
    loudest = ops.max(x, axis=-1, keepdims=True)
    return ops.cast(loudest > _FLOOR + _PAD_MARGIN, x.dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class UtteranceNorm(keras.layers.Layer):
    """Per-utterance mean normalisation (cepstral-mean-style) over the real frames of a window:
    each band minus its mean over the window's signal frames; padding frames become 0."""

    def call(self, x):
        mask = _valid_mask(x)
        count = ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        mean = ops.sum(x * mask, axis=1, keepdims=True) / count
        return (x - mean) * mask

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class Deltas(keras.layers.Layer):
    """Appends first-order deltas along time: (B, T, F) -> (B, T, 2F), d[t] = (x[t+1] - x[t-1]) / 2
    with the edge frames repeated."""

    def call(self, x):
        padded = ops.concatenate([x[:, :1], x, x[:, -1:]], axis=1)
        delta = (padded[:, 2:] - padded[:, :-2]) * 0.5
        return ops.concatenate([x, delta], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else 2 * input_shape[-1])


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentiveStatsPooling(keras.layers.Layer):
    """Attentive statistics pooling (Okabe et al. 2018): a learned weight per time step, then the
    weighted mean and standard deviation over time: (B, T, C) -> (B, 2C)."""

    def __init__(self, hidden: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        channels = input_shape[-1]
        self.score_hidden = keras.layers.Dense(self.hidden, activation="tanh", name="score_hidden")
        self.score_hidden.build(input_shape)
        self.score = keras.layers.Dense(1, name="score")
        self.score.build((*input_shape[:-1], self.hidden))
        self.channels = channels

    def call(self, x):
        weights = ops.softmax(self.score(self.score_hidden(x)), axis=1)
        mean = ops.sum(weights * x, axis=1)
        var = ops.sum(weights * ops.square(x), axis=1) - ops.square(mean)
        std = ops.sqrt(ops.maximum(var, 1e-6))
        return ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}
