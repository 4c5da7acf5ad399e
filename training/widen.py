"""Widen a trained face network without changing what it computes (Net2WiderNet, Chen et al. 2016).

    python -m training.train_face_vgg --width 0.35 --init-weights models/face_student_online.keras --widen ...

A wider network of the same architecture (more channels in every convolution) starts from the
narrow one's function: each new channel copies an existing channel of its layer (kernel and
BatchNorm statistics), and the next layer's weights on a copied channel are split between the
copies so that their sum is the original weight. The split is random (not an even half), which keeps
the function exact while giving the copies different gradients, so they drift apart in training
instead of staying twins. A distilled student gains capacity this way without paying for training
from scratch: the first epoch starts at the narrow model's accuracy.

Layers are matched in order; only Conv2D, BatchNormalization and Dense carry weights here (the
layer kinds of ``training.face.build_vgg`` and ``build_cnn``; a Flatten between the last convolution
and a Dense layer is followed position by position, channels last). Output channels of the last Dense
layer (the classes) never widen.
"""

from __future__ import annotations

import numpy as np


def _split(mapping: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Per new channel, its share of the original channel's outgoing weight: the shares of the
    copies of one channel sum to 1 (so their sum reproduces the weight exactly)."""
    shares = np.empty(len(mapping), dtype=np.float64)
    for source in np.unique(mapping):
        copies = np.flatnonzero(mapping == source)
        if len(copies) == 1:
            shares[copies] = 1.0
            continue
        raw = 1.0 + rng.uniform(-jitter, jitter, len(copies))
        shares[copies] = raw / raw.sum()
    assert np.allclose(np.bincount(mapping, weights=shares), 1.0)
    return shares


def _mapping(narrow: int, wide: int, rng: np.random.Generator) -> np.ndarray:
    """New channel j -> the narrow channel it copies: the first ``narrow`` are themselves."""
    if wide < narrow:
        raise ValueError(f"cannot widen {narrow} channels to {wide}")
    return np.concatenate([np.arange(narrow), rng.integers(0, narrow, wide - narrow)])


def widen_weights(narrow_model, wide_model, *, seed: int = 0, jitter: float = 0.3) -> list[np.ndarray]:
    """The weights of ``wide_model`` (a Keras model built wider), in ``get_weights`` order, that
    compute what ``narrow_model`` computes. Raises ValueError where the two are not the same
    architecture at two widths."""
    rng = np.random.default_rng(seed)
    narrow_layers = [layer for layer in narrow_model.layers if layer.weights]
    wide_layers = [layer for layer in wide_model.layers if layer.weights]
    if [type(a).__name__ for a in narrow_layers] != [type(b).__name__ for b in wide_layers]:
        raise ValueError("the two models do not have the same layers")
    weights: list[np.ndarray] = []
    # the channels entering the current layer -> the narrow channels they copy, and their shares
    in_map: np.ndarray | None = None
    in_shares: np.ndarray | None = None
    out_map: np.ndarray | None = None
    narrow_channels = 0
    for index, (small, big) in enumerate(zip(narrow_layers, wide_layers)):
        kind = type(small).__name__
        old, shapes = small.get_weights(), [tuple(w.shape) for w in big.weights]
        if kind == "BatchNormalization":
            if out_map is None or len(out_map) != shapes[0][0]:
                raise ValueError(f"layer {big.name}: no widened convolution before it")
            weights += [w[out_map] for w in old]
            continue
        if kind not in ("Conv2D", "Dense"):
            raise ValueError(f"layer {big.name}: cannot widen a {kind}")
        kernel = old[0]
        n_in_narrow, n_out_narrow = kernel.shape[-2], kernel.shape[-1]
        n_in_wide, n_out_wide = shapes[0][-2], shapes[0][-1]
        if in_map is None:  # the first layer reads the image: its inputs never widen
            if n_in_wide != n_in_narrow:
                raise ValueError(f"layer {big.name}: input channels differ")
            in_map, in_shares = np.arange(n_in_narrow), np.ones(n_in_narrow)
        if kind == "Dense" and len(in_map) != n_in_wide and n_in_wide % len(in_map) == 0:
            # a Flatten between: (positions x channels), channels last, each position alike
            positions, channels = n_in_wide // len(in_map), narrow_channels
            if positions * channels != n_in_narrow:
                raise ValueError(f"layer {big.name}: {n_in_narrow} inputs are not {positions} positions x {channels} channels")
            in_map = (np.arange(positions)[:, None] * channels + in_map[None, :]).ravel()
            in_shares = np.tile(in_shares, positions)
        if len(in_map) != n_in_wide:
            raise ValueError(f"layer {big.name}: expects {n_in_wide} inputs, the layer before gives {len(in_map)}")
        last = index == len(narrow_layers) - 1
        if last and n_out_wide != n_out_narrow:
            raise ValueError("the output layer cannot widen")
        out_map = np.arange(n_out_narrow) if last else _mapping(n_out_narrow, n_out_wide, rng)
        scale = in_shares.reshape((1,) * (kernel.ndim - 2) + (-1, 1))
        weights.append((kernel[..., in_map, :] * scale)[..., out_map].astype(kernel.dtype))
        if len(old) > 1:  # bias
            weights.append(old[1][out_map])
        in_map, narrow_channels = out_map, n_out_narrow
        in_shares = _split(out_map, rng, jitter)
    if [w.shape for w in weights] != [tuple(w.shape) for w in wide_model.weights]:
        raise ValueError("the widened weights do not fit the wide model")
    return weights


def widen_into(narrow_model, wide_model, *, seed: int = 0) -> None:
    """Set ``wide_model``'s weights so it computes what ``narrow_model`` does."""
    wide_model.set_weights(widen_weights(narrow_model, wide_model, seed=seed))
