"""Voice-emotion training and evaluation on RAVDESS, split by actor.

Why one module over 400 lines: the trainer, its evaluation and its card are one protocol (the
same features, splits and windows), which the fold, ensemble and nested trainers import from here.

Protocol (honest numbers with only 20 actors): actors 17-20 are the held-out test and are
scored once, at the end. Everything that is chosen (epochs, checkpoint, temperature) is chosen
on an inner split of the training actors: stage 1 trains on actors 1-12 and validates on 13-16;
stage 2 retrains the same recipe on all of 1-16 and keeps stage 1's temperature. Features come
from ``recognition.inference.audio`` (the serving code), and the test numbers are produced by
``recognition.inference.voice.clip_probabilities``, the path that serves uploads.

Models: ``build_mlp`` (the original voice_emotion_model.py: mean MFCC(40) -> Dense(256),
Dropout, Dense(128), Dropout, Dense(64), softmax(8)) and ``build_cnn`` (a 1-D CNN over 3 s of
64-band log-mel frames, trained with speed/pitch perturbation, noise, time shift and
SpecAugment masks).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from recognition.inference import audio
from recognition.inference.labels import VOICE_EMOTIONS
from training import extra_data
from training.clips import Clip
from training.common import mixup, next_version, strip_optimizer
from training.metrics import (
    ece_noise_floor,
    fit_temperature,
    markdown_confusion,
    summarise,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "ravdess-speech-16k"
CACHE = REPO / "training" / "cache"
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".m4a", ".mp4", ".aac", ".ogg", ".oga", ".opus", ".webm", ".mka", ".aif", ".aiff"}
RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")

TRAIN_ACTORS = tuple(range(1, 13))
INNER_VAL_ACTORS = tuple(range(13, 17))
TEST_ACTORS = tuple(range(17, 21))


def _keras():
    import keras

    return keras


# ---------------------------------------------------------------------------------------------
# Data


def parse_ravdess_name(path: Path) -> tuple[int, int] | None:
    """``03-01-EE-II-SS-RR-AA.ext`` -> (emotion index 0-7, actor); None for other names."""
    match = RAVDESS_NAME.match(Path(path).stem)
    if not match:
        return None
    emotion, actor = int(match.group(3)), int(match.group(7))
    if not 1 <= emotion <= len(VOICE_EMOTIONS):
        return None
    return emotion - 1, actor


def list_clips(root: Path, actors: Iterable[int] | None = None) -> list[Clip]:
    """RAVDESS-named audio files at any depth under ``root`` (any supported suffix), sorted."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    wanted = set(actors) if actors is not None else None
    clips = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        parsed = parse_ravdess_name(path)
        if parsed and (wanted is None or parsed[1] in wanted):
            clips.append(Clip(path, parsed[0], parsed[1]))
    return clips


def load_signal(path: Path) -> np.ndarray:
    """A file, decoded exactly as an upload is: bytes -> 16 kHz mono float32."""
    return audio.decode_audio(Path(path).read_bytes())


def _cache_key(clips: list[Clip], extra: str) -> str:
    listing = "\n".join(f"{c.path.resolve()}:{c.path.stat().st_size}" for c in clips)
    return hashlib.sha256(f"{extra}\n{listing}".encode()).hexdigest()[:16]


# Augmentation variants computed once per training clip and cached: (speed, semitones).
# Every variant except the original gets noise at a random SNR with probability NOISE_PROB.
VARIANTS = ((1.0, 0.0), (0.9, 0.0), (1.1, 0.0), (1.0, -2.0), (1.0, 2.0), (1.0, 0.0))
NOISE_PROB = 0.5
SNR_DB = (10.0, 30.0)


def perturb(signal: np.ndarray, speed: float, semitones: float, rng: np.random.Generator, noise: bool) -> np.ndarray:
    """Speed (tempo and pitch, by resampling), pitch shift, and white/pink noise at 10-30 dB SNR.
    Gain needs no augmentation: trimming is relative and features are peak-normalised."""
    out = signal
    if speed != 1.0:
        out = audio.resample(out, round(audio.SAMPLE_RATE / speed), audio.SAMPLE_RATE)
    if semitones:
        import librosa

        out = librosa.effects.pitch_shift(out, sr=audio.SAMPLE_RATE, n_steps=semitones).astype(np.float32)
    if noise:
        white = rng.standard_normal(len(out)).astype(np.float32)
        if rng.random() < 0.5:  # pink: 1/f power, shaped in the frequency domain
            spectrum = np.fft.rfft(white)
            spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
            white = np.fft.irfft(spectrum, n=len(out)).astype(np.float32)
        start, end = audio.trim_bounds(out)
        speech_power = float(np.mean(out[start:end] ** 2)) + 1e-12
        snr = rng.uniform(*SNR_DB)
        white *= np.sqrt(speech_power / (10 ** (snr / 10)) / (np.mean(white**2) + 1e-12))
        out = out + white
    return out.astype(np.float32)


def clip_log_mels(signal: np.ndarray) -> np.ndarray:
    """Training's view of one clip: trimmed, then exactly serving's per-window features."""
    return audio.clip_features(audio.trim(signal), "log_mel")


def load_features(clips: list[Clip], kind: str, augment: bool, seed: int, log: Callable[[str], None] = print) -> dict:
    """Features for ``clips``, cached in training/cache/.

    mfcc_mean: {"x": (N, 40)}. log_mel: variable-length frames packed as {"frames": (F, 64),
    "offsets": (N*V+1,)} with V variants per clip (1 without augmentation; variant 0 is the
    clean original).
    """
    variants = VARIANTS if augment else VARIANTS[:1]
    config = json.dumps({"kind": kind, "variants": variants, "noise": [NOISE_PROB, SNR_DB], "seed": seed, "v": 2,
                         "audio": [audio.N_FFT, audio.WIN_LENGTH, audio.HOP_LENGTH, audio.N_MELS, audio.FMIN, audio.FMAX, audio.TRIM_TOP_DB]})
    key = _cache_key(clips, config)
    path = CACHE / f"voice-{kind}-{'aug' if augment else 'clean'}-{len(clips)}-{key}.npz"
    labels = np.asarray([c.label for c in clips], dtype=np.int64)
    actors = np.asarray([c.actor for c in clips], dtype=np.int64)
    if path.exists():
        data = dict(np.load(path))
        log(f"features from cache {path.name}")
        return data
    started = time.time()
    rng = np.random.default_rng(seed)
    if kind == "mfcc_mean":
        x = np.stack([audio.clip_features(audio.trim(load_signal(c.path)), "mfcc_mean") for c in clips])
        data = {"x": x.astype(np.float32), "y": labels, "actor": actors}
    else:
        chunks, offsets = [], [0]
        for i, clip in enumerate(clips):
            signal = load_signal(clip.path)
            for v, (speed, semitones) in enumerate(variants):
                noisy = v > 0 and (v == len(VARIANTS) - 1 or rng.random() < NOISE_PROB)
                variant = signal if v == 0 else perturb(signal, speed, semitones, rng, noisy)
                feats = clip_log_mels(variant)
                chunks.append(feats.astype(np.float32 if v == 0 else np.float16))
                offsets.append(offsets[-1] + len(feats))
            if (i + 1) % 200 == 0:
                log(f"  features {i + 1}/{len(clips)} ({time.time() - started:.0f} s)")
        frames = np.concatenate([c.astype(np.float32) for c in chunks])
        data = {"frames": frames, "offsets": np.asarray(offsets, dtype=np.int64), "variants": np.asarray(len(variants)), "y": labels, "actor": actors}
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    log(f"features for {len(clips)} clips ({kind}, augment={augment}) in {time.time() - started:.0f} s -> {path.name}")
    return data


def clip_frames(data: dict, index: int, variant: int = 0) -> np.ndarray:
    v = int(data["variants"])
    a, b = data["offsets"][index * v + variant], data["offsets"][index * v + variant + 1]
    return data["frames"][a:b]


def select(data: dict, mask: np.ndarray) -> dict:
    """Rows of a feature dict for the clips in ``mask`` (log-mel frames stay packed)."""
    idx = np.flatnonzero(mask)
    if "x" in data:
        return {"x": data["x"][idx], "y": data["y"][idx], "actor": data["actor"][idx]}
    v = int(data["variants"])
    chunks, offsets = [], [0]
    for i in idx:
        for variant in range(v):
            chunk = clip_frames(data, i, variant)
            chunks.append(chunk)
            offsets.append(offsets[-1] + len(chunk))
    return {"frames": np.concatenate(chunks), "offsets": np.asarray(offsets), "variants": np.asarray(v), "y": data["y"][idx], "actor": data["actor"][idx]}


def spec_augment(x: np.ndarray, rng: np.random.Generator, fill: float, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 25) -> np.ndarray:
    """SpecAugment (Park et al. 2019) frequency and time masks on (frames, bands), in place."""
    frames, bands = x.shape
    for _ in range(freq_masks):
        w = int(rng.integers(0, freq_width + 1))
        f0 = int(rng.integers(0, bands - w + 1))
        x[:, f0 : f0 + w] = fill
    for _ in range(time_masks):
        w = int(rng.integers(0, time_width + 1))
        t0 = int(rng.integers(0, frames - w + 1))
        x[t0 : t0 + w, :] = fill
    return x


def epoch_batch(data: dict, rng: np.random.Generator, augment: bool, fill: float) -> np.ndarray:
    """One epoch of (N, 301, 64) inputs: a random variant per clip, a random time shift, masks.
    Without ``augment``: the clean clip, centred (exactly what serving feeds)."""
    n = len(data["y"])
    out = np.empty((n, audio.WINDOW_FRAMES, audio.N_MELS), dtype=np.float32)
    v = int(data["variants"])
    for i in range(n):
        if not augment:
            out[i] = audio.fit_frames(clip_frames(data, i, 0))
            continue
        feats = clip_frames(data, i, int(rng.integers(0, v)))
        span = abs(audio.WINDOW_FRAMES - len(feats))
        out[i] = audio.fit_frames(feats, offset=int(rng.integers(0, span + 1)))
        spec_augment(out[i], rng, fill)
    return out


# ---------------------------------------------------------------------------------------------
# Models


def build_mlp(num_classes: int = 8, normalizer_data: np.ndarray | None = None, dropout: float = 0.3):
    """The original voice_emotion_model.py: mean MFCC(40) -> Dense(256), Dropout, Dense(128),
    Dropout, Dense(64), softmax(8); with the MFCCs standardised inside the model."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input((audio.N_MFCC,), name="mfcc_mean")
    norm = layers.Normalization(axis=-1, name="standardise")
    if normalizer_data is not None:
        norm.adapt(normalizer_data)
    x = norm(inputs)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="voice_mlp")


def build_cnn(
    num_classes: int = 8,
    normalizer_data: np.ndarray | None = None,
    widths=(64, 96, 128, 160, 192),
    dropout: float = 0.2,
    *,
    pooling: str = "avgmax",
    deltas: bool = False,
    utterance_norm: bool = False,
    frontend: str = "conv1d",
):
    """1-D CNN over (301 frames x 64 log-mel bands): per-band standardisation, five Conv1D/BN/ReLU
    layers with three max-pools, pooling over time, Dense(128), softmax(8).

    Options (each a row of the model card's fold table): ``utterance_norm`` subtracts each band's
    mean over the window's real frames first; ``deltas`` appends first-order deltas (128 inputs);
    ``pooling`` "avgmax" (global average + max), "attention" (attentive statistics pooling) or
    "gru" (a bidirectional GRU over the pooled frames, then average + max: a CRNN);
    ``frontend`` "conv1d" (the five layers above, bands as channels) or "conv2d" (four Conv2D
    layers over time x bands, each halving both (the first by its stride), then the bands folded into channels: a network
    that sees local time-frequency patterns, which the 1-D stack does not)."""
    from recognition.inference.layers import (
        AttentiveStatsPooling,
        Deltas,
        UtteranceNorm,
    )

    keras = _keras()
    layers = keras.layers
    inputs = keras.Input((audio.WINDOW_FRAMES, audio.N_MELS), name="log_mel")
    x = inputs
    prefix = []
    if utterance_norm:
        prefix.append(UtteranceNorm(name="utterance_norm"))
    if deltas:
        prefix.append(Deltas(name="deltas"))
    for layer in prefix:
        x = layer(x)
    norm = layers.Normalization(axis=-1, name="standardise")
    if normalizer_data is not None:
        adapt = normalizer_data
        for layer in prefix:
            adapt = np.concatenate([np.asarray(layer(adapt[i : i + 256])) for i in range(0, len(adapt), 256)])
        norm.adapt(adapt.reshape(-1, adapt.shape[-1]))
    x = norm(x)
    if frontend == "conv2d":
        if deltas:
            raise ValueError("frontend conv2d takes the log-mel bands alone (no deltas)")
        x = layers.Reshape((audio.WINDOW_FRAMES, audio.N_MELS, 1))(x)
        for i, filters in enumerate(CONV2D_WIDTHS):
            # The first layer strides instead of pooling: full-resolution maps cost the most.
            x = layers.Conv2D(filters, 3, strides=1 if i else 2, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            if i:
                x = layers.MaxPooling2D(2)(x)
                x = layers.SpatialDropout2D(0.05)(x)
        x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]))(x)
        x = layers.Conv1D(widths[-1], 1, use_bias=False, kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    elif frontend == "conv1d":
        for i, filters in enumerate(widths):
            x = layers.Conv1D(filters, 5 if i == 0 else 3, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            if 1 <= i <= 3:
                x = layers.MaxPooling1D(2)(x)
                x = layers.SpatialDropout1D(0.05)(x)
    else:
        raise ValueError(f"unknown frontend {frontend!r}")
    if pooling == "gru":
        x = layers.Bidirectional(layers.GRU(64, return_sequences=True), name="bigru")(x)
        pooling = "avgmax"
    if pooling == "attention":
        x = AttentiveStatsPooling(name="attentive_stats")(x)
    elif pooling == "avgmax":
        x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    else:
        raise ValueError(f"unknown pooling {pooling!r}")
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(128, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="voice_cnn")


# Channels of the "conv2d" front end's four Conv2D layers (time x bands halved after each).
CONV2D_WIDTHS = (16, 32, 64, 96)

ARCHITECTURES = {"mlp": ("mfcc_mean", build_mlp), "cnn": ("log_mel", build_cnn)}


# ---------------------------------------------------------------------------------------------
# Training loop: one stage = fixed epochs, warm-up + cosine, a checkpoint every epoch, --resume


def model_options(args) -> dict:
    """Architecture options from the command line (CNN only; the MLP baseline has none)."""
    if args.arch != "cnn":
        return {}
    options = {"pooling": getattr(args, "pooling", "avgmax"), "deltas": bool(getattr(args, "deltas", False)),
               "utterance_norm": bool(getattr(args, "utterance_norm", False))}
    if getattr(args, "frontend", "conv1d") != "conv1d":  # recipes written before it existed stay as they were
        options["frontend"] = args.frontend
    return options


def cosine_lr(base: float, epoch: int, epochs: int, warmup: int = 2) -> float:
    if epoch < warmup:
        return base * (epoch + 1) / (warmup + 1)
    progress = (epoch - warmup) / max(1, epochs - warmup)
    return 0.5 * base * (1 + np.cos(np.pi * min(1.0, progress))) + 1e-6


def predict(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    if len(x) == 0:
        return np.zeros((0, len(VOICE_EMOTIONS)), dtype=np.float32)
    return np.concatenate([np.asarray(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)])


def run_stage(args, stage: str, train: dict, val: dict | None, log: Callable[[str], None]):
    """Train ``args.arch`` for ``args.epochs`` epochs into runs/<name>/<stage>/; resumable.
    Returns (model, state)."""
    keras = _keras()
    kind, build = ARCHITECTURES[args.arch]
    run_dir = Path(args.runs) / args.name / stage
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path, last_path = run_dir / "state.json", run_dir / "last.keras"
    n_classes = len(VOICE_EMOTIONS)
    fill = float(np.log(audio.LOG_FLOOR)) if kind == "log_mel" else 0.0
    if kind == "log_mel":
        fill = float(train["frames"].mean())
    x_val = None
    if val is not None:
        x_val = val["x"] if kind == "mfcc_mean" else epoch_batch(val, np.random.default_rng(0), False, fill)
    if args.resume and state_path.exists() and last_path.exists():
        state = json.loads(state_path.read_text())
        from recognition.inference import layers  # noqa: F401  (custom layers)

        model = keras.models.load_model(last_path)
        model.jit_compile = False
        log(f"[{stage}] resumed after epoch {state['epoch']}")
    else:
        keras.utils.set_random_seed(args.seed)
        norm_data = train["x"] if kind == "mfcc_mean" else epoch_batch(train, np.random.default_rng(args.seed), False, fill)
        model = build(n_classes, normalizer_data=norm_data, **model_options(args))
        model.compile(
            optimizer=keras.optimizers.AdamW(learning_rate=args.lr, weight_decay=args.weight_decay),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
            metrics=["accuracy"],
            jit_compile=False,  # XLA (True) was 0.6x the CPU throughput here; "auto" is off on CPU (benchmarks/bench_train_face.py)
        )
        state = {"stage": stage, "epoch": 0, "elapsed_s": 0.0, "history": []}
    y_train = keras.utils.to_categorical(train["y"], n_classes)
    while state["epoch"] < args.epochs:
        epoch = state["epoch"]
        t0 = time.time()
        keras.utils.set_random_seed(args.seed + 1000 * epoch)  # resume replays the same stream
        rng = np.random.default_rng(args.seed + epoch)
        x = train["x"] if kind == "mfcc_mean" else epoch_batch(train, rng, True, fill)
        lr = cosine_lr(args.lr, epoch, args.epochs)
        model.optimizer.learning_rate.assign(lr)
        y_epoch = y_train
        if getattr(args, "mixup", 0.0) > 0:
            x, y_epoch = mixup(x, y_train, rng, args.mixup)
        hist = model.fit(x, y_epoch, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=True)
        record = {"epoch": epoch + 1, "loss": float(hist.history["loss"][-1]), "accuracy": float(hist.history["accuracy"][-1]), "lr": lr}
        if x_val is not None:
            record["val_accuracy"] = float((predict(model, x_val).argmax(1) == val["y"]).mean())
        record["seconds"] = round(time.time() - t0, 2)
        state["epoch"] = epoch + 1
        state["elapsed_s"] += record["seconds"]
        state["history"].append(record)
        model.save(last_path)
        state_path.write_text(json.dumps(state, indent=1))
        log(f"[{stage}] epoch {epoch + 1}/{args.epochs} {record['seconds']:.1f}s loss {record['loss']:.4f} acc {record['accuracy']:.4f}"
            + (f" val_acc {record['val_accuracy']:.4f}" if "val_accuracy" in record else "") + f" lr {lr:.2e}")
    return model, state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="cnn", help="mlp: the MFCC baseline; cnn: 1-D CNN over log-mel frames")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="RAVDESS folder (03-01-EE-..-AA.* at any depth)")
    parser.add_argument("--name", default=None, help="model name (default voice_<arch>)")
    parser.add_argument("--out", type=Path, default=REPO / "models", help="where the model and its card go")
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs", help="checkpoint folder")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per stage (default: mlp 30, cnn 40)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: mlp 1e-3, cnn 3e-3)")
    parser.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default: mlp 1e-3, cnn 5e-4)")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--no-augment", action="store_true", help="cnn: train on clean clips only")
    parser.add_argument("--pooling", choices=("avgmax", "attention", "gru"), default="avgmax",
                        help="cnn: pooling over time (gru: a bidirectional GRU over the frames first, a CRNN)")
    parser.add_argument("--frontend", choices=("conv1d", "conv2d"), default="conv1d",
                        help="cnn: 1-D convolutions with bands as channels, or 2-D convolutions over time x bands")
    parser.add_argument("--deltas", action="store_true", help="cnn: append delta features inside the model")
    parser.add_argument("--utterance-norm", action="store_true", help="cnn: per-utterance mean normalisation inside the model")
    parser.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0: off)")
    parser.add_argument("--folds", type=int, default=0,
                        help="k-fold cross-validation over actors 1-16 (folds of consecutive actors); serves the ensemble of the fold models")
    parser.add_argument("--cv-only", action="store_true", help="with --folds: report the fold table and stop, never touching actors 17-20")
    parser.add_argument("--inner-only", action="store_true", help="explore: stop after stage 1 (actors 13-16), never touching 17-20")
    parser.add_argument("--skip-final", action="store_true", help="ship the inner-split model (actors 1-12) instead of retraining on 1-16")
    parser.add_argument("--limit", type=int, default=None, help="use only N clips per actor group (smoke tests)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--resume", action="store_true", help="continue each stage from its last checkpoint")
    parser.add_argument("--version", default=None, help="version written into the card (default: date)")
    parser.add_argument("--no-formats", action="store_true", help="skip the WAV/MP3/M4A robustness check")
    parser.add_argument("--serve", action="store_true", help="name this model as the served 'voice' model in models/registry.json")
    parser.add_argument(
        "--extra-data", type=Path, action="append", default=None, metavar="PATH",
        help="repeatable: a dataset exported by the site (folder or .zip with voice/<class>/*.wav and manifest.csv) "
        "added to the training clips as actor 0 (never validation or test); recorded in the card; not with --folds",
    )


def apply_defaults(args: argparse.Namespace) -> argparse.Namespace:
    args.name = args.name or f"voice_{args.arch}"
    if args.epochs is None:
        args.epochs = 30 if args.arch == "mlp" else 40
    if args.lr is None:
        args.lr = 1e-3 if args.arch == "mlp" else 3e-3
    if args.weight_decay is None:
        args.weight_decay = 1e-3 if args.arch == "mlp" else 5e-4
    return args


def run_logger(run_root: Path) -> Callable[[str], None]:
    """A log function that prints a timestamped line and appends it to ``run_root/train.log``."""

    def log(message: str) -> None:
        line = f"{datetime.now().strftime('%H:%M:%S')} {message}"
        print(line, flush=True)
        with open(run_root / "train.log", "a") as fh:
            fh.write(line + "\n")

    return log


def train(args: argparse.Namespace) -> dict:
    """Stage 1 (1-12 / 13-16), temperature, stage 2 (1-16), test on 17-20; writes model + card.
    ``--folds K`` (cross-validation over actor folds) is ``training.voice_folds.train``'s, which
    the command (``training.train_voice``) calls: this module does not import the folds."""
    if getattr(args, "folds", 0):
        raise SystemExit("--folds K: run training.train_voice (training.voice_folds.train)")
    args = apply_defaults(args)
    started = time.time()
    run_root = Path(args.runs) / args.name
    run_root.mkdir(parents=True, exist_ok=True)
    log = run_logger(run_root)

    kind, _ = ARCHITECTURES[args.arch]
    augment = kind == "log_mel" and not args.no_augment
    clips = list_clips(args.data, actors=range(1, 17))
    if args.limit:
        clips = _limit(clips, args.limit)
    if not clips:
        raise SystemExit(f"no RAVDESS clips of actors 1-16 under {args.data}")
    extra_clips, args.extra_used = extra_data.voice_clips(getattr(args, "extra_data", None))
    if extra_clips:
        clips = clips + extra_clips
        log(f"extra data: {len(extra_clips)} clips from {len(args.extra_used)} export(s): {[e['counts'] for e in args.extra_used]}")
    log(f"{args.name}: arch {args.arch}, {len(clips)} training clips (actors 1-16), augment {augment}, epochs {args.epochs}")
    data = load_features(clips, kind, augment, args.seed, log)
    inner_mask = np.isin(data["actor"], INNER_VAL_ACTORS)
    inner_train, inner_val = select(data, ~inner_mask), select(data, inner_mask)
    log(f"stage 1: train actors 1-12 ({len(inner_train['y'])} clips), validate 13-16 ({len(inner_val['y'])})")
    inner_model, inner_state = run_stage(args, "inner", inner_train, inner_val, log)
    x_inner = inner_val["x"] if kind == "mfcc_mean" else epoch_batch(inner_val, np.random.default_rng(0), False, 0.0)
    inner_raw = predict(inner_model, x_inner)
    temperature = fit_temperature(inner_raw, inner_val["y"]) if len(inner_val["y"]) else 1.0
    from recognition.inference.registry import apply_temperature

    inner_metrics = summarise(apply_temperature(inner_raw, temperature), inner_val["y"], VOICE_EMOTIONS)
    log(f"stage 1: actors 13-16 accuracy {inner_metrics['accuracy']:.4f}, temperature {temperature:.3f}, ECE {inner_metrics['ece']:.4f}")
    if args.inner_only:
        return {"inner_validation": inner_metrics, "temperature": temperature, "history": inner_state["history"]}
    if args.skip_final:
        model, final_state = inner_model, None
    else:
        log(f"stage 2: retrain on actors 1-16 ({len(data['y'])} clips) for {args.epochs} epochs")
        model, final_state = run_stage(args, "final", data, None, log)
    train_seconds = inner_state["elapsed_s"] + (final_state["elapsed_s"] if final_state else 0.0)
    return finish(args, model, kind, temperature, inner_metrics, inner_state, final_state, train_seconds, started, log)


def _limit(clips: list[Clip], n: int) -> list[Clip]:
    inner = [c for c in clips if c.actor in INNER_VAL_ACTORS][:n]
    rest = [c for c in clips if c.actor not in INNER_VAL_ACTORS][:n]
    return rest + inner


def finish(args, model, kind, temperature, inner_metrics, inner_state, final_state, train_seconds, started, log) -> dict:
    """Save the model, score actors 17-20 through the serving path, write the card."""
    from recognition.inference.registry import sha256_file

    keras = _keras()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{args.name}.keras"
    strip_optimizer(model).save(model_path)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    card = {
        "name": args.name,
        "task": "voice",
        "version": args.version or next_version(out / f"{args.name}.json", today.replace("-", ".")),
        "architecture": args.arch,
        "file": model_path.name,
        "classes": list(VOICE_EMOTIONS),
        "input": {
            "features": kind,
            "shape": [audio.N_MFCC] if kind == "mfcc_mean" else [audio.WINDOW_FRAMES, audio.N_MELS],
            "sample_rate": audio.SAMPLE_RATE,
            "window_seconds": audio.WINDOW_SECONDS,
            "hop_seconds": audio.WINDOW_HOP_SECONDS,
            "preprocessing": "recognition.inference.audio.model_input (trim, peak-normalise, features)",
        },
        "parameters": int(model.count_params()),
        "temperature": round(float(temperature), 4),
        "data": {
            "dataset": "RAVDESS speech, 16 kHz mono FLAC (CC BY-NC-SA 4.0)",
            "split": "by actor: train 1-16, test 17-20 (never a random split of clips)",
            "inner_split": "epochs, recipe and temperature chosen on train 1-12 / validate 13-16; test actors 17-20 scored once",
            "final_training": "actors 1-12 only (--skip-final)" if final_state is None else "actors 1-16, same recipe and epochs",
            "augmentation": ("speed 0.9/1.1, pitch -2/+2 semitones, white/pink noise 10-30 dB SNR, random time shift, SpecAugment (2 freq masks <= 8 bands, 2 time masks <= 25 frames)"
                             if kind == "log_mel" and not args.no_augment else "none"),
        },
        "metrics": {"inner_validation": inner_metrics},
        "training": {
            "command": f"python -m training.train_voice --arch {args.arch} --name {args.name} --epochs {args.epochs} --lr {args.lr} --seed {args.seed}"
            + (" --no-augment" if args.no_augment else "") + (" --skip-final" if args.skip_final else ""),
            "backend": keras.backend.backend(),
            "device": f"CPU ({platform.processor() or platform.machine()}, 2 shared cores)",
            "epochs": args.epochs,
            "train_seconds": round(train_seconds, 1),
            "total_seconds": None,
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "weight_decay": args.weight_decay,
            "label_smoothing": args.label_smoothing,
            "inner_history": [{k: r[k] for k in ("epoch", "accuracy", "val_accuracy") if k in r} for r in inner_state["history"]],
        },
        "date": today,
        "sha256": sha256_file(model_path),
        "size_bytes": model_path.stat().st_size,
        **({"extra_data": args.extra_used} if getattr(args, "extra_used", None) else {}),
    }
    return finish_card(card, args, out, started, card_markdown, log)


def finish_card(card: dict, args: argparse.Namespace, out: Path, started: float, markdown, log) -> dict:
    """The end of every voice training run (one model or the fold models' ensemble): write the
    card, score the saved model once on the test actors (17-20), check the upload formats, write
    the card again with ``markdown(card)`` and serve it with ``--serve``."""
    from recognition.inference import registry
    from recognition.inference.registry import write_card

    write_card(card, out)
    registry.clear_cache()  # a model of this name may have been loaded earlier in this process
    test = evaluate_folder(args.data, args.name, directory=out, actors=TEST_ACTORS, limit=args.limit)
    card["metrics"]["test_uncalibrated_ece"] = test.pop("uncalibrated_ece")
    card["metrics"]["test"] = test
    log(f"{args.name}: actors 17-20 accuracy {test['accuracy']:.4f} (n={test['n']}), ECE {test['ece']:.4f}")
    if not args.no_formats:
        card["metrics"]["formats"] = format_check(args.data, args.name, directory=out, limit=args.limit, log=log)
    card["training"]["total_seconds"] = round(time.time() - started, 1)
    write_card(card, out, markdown=markdown(card))
    if args.serve:
        serve(args.name, out)
        log(f"models/registry.json: voice -> {args.name}")
    return card


def serve(name: str, directory: Path) -> None:
    """Point the registry's "voice" entry at ``name``, keeping every other key."""
    path = Path(directory) / "registry.json"
    registry = json.loads(path.read_text()) if path.exists() else {}
    registry["voice"] = name
    path.write_text(json.dumps(registry, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# Evaluation through the serving path


def evaluate_folder(path: Path, model_name: str | None = None, *, directory: Path | None = None, actors: Iterable[int] | None = None, limit: int | None = None) -> dict:
    """Score every RAVDESS-named file under ``path`` (any depth, format, sample rate) with the
    serving code. Returns accuracy, n, per_class_recall, confusion, ece, no_speech (clips the
    speech rule would report as silent; still scored), model, seconds."""
    from recognition.inference import registry
    from recognition.inference.voice import clip_probabilities

    started = time.time()
    clips = list_clips(Path(path), actors=actors)
    if limit:
        clips = clips[:limit]
    if not clips:
        raise ValueError(f"no RAVDESS-named audio files (03-01-EE-..-AA.ext) under {path}")
    model = registry.get_model(model_name, task="voice", directory=directory)
    probabilities, raw, labels, silent = [], [], [], 0
    for clip in clips:
        p, p_raw, speech = clip_probabilities(load_signal(clip.path), model)
        probabilities.append(p)
        raw.append(p_raw)
        labels.append(clip.label)
        silent += not speech
    y = np.asarray([model.classes.index(VOICE_EMOTIONS[i]) for i in labels])  # the card's class order
    metrics = summarise(np.stack(probabilities), y, model.classes)
    metrics["uncalibrated_ece"] = summarise(np.stack(raw), y, model.classes)["ece"]
    metrics["ece_noise_floor"] = ece_noise_floor(np.stack(probabilities))
    metrics["no_speech"] = int(silent)
    metrics["model"] = model.info()
    metrics["seconds"] = round(time.time() - started, 2)
    return metrics


def write_formats(clips: list[Clip], out_dir: Path) -> dict[str, Path]:
    """The clips re-encoded with PyAV as 48 kHz WAV, 128 kbit/s MP3, 128 kbit/s AAC in M4A, and
    48 kHz Opus (64 kbit/s, what browsers record) in OGG and WEBM."""

    targets = {"wav48k": ("wav", "pcm_s16le", 48000, None), "mp3_128k": ("mp3", "libmp3lame", None, 128_000), "m4a_aac_128k": ("m4a", "aac", None, 128_000),
               "ogg_opus_64k": ("ogg", "libopus", 48000, 64_000), "webm_opus_64k": ("webm", "libopus", 48000, 64_000)}
    folders = {}
    for label, (ext, codec, rate, bitrate) in targets.items():
        folder = Path(out_dir) / label
        folder.mkdir(parents=True, exist_ok=True)
        for clip in clips:
            signal = load_signal(clip.path)
            sr = rate or audio.SAMPLE_RATE
            if sr != audio.SAMPLE_RATE:
                signal = audio.resample(signal, audio.SAMPLE_RATE, sr)
            encode(signal, sr, folder / f"{clip.path.stem}.{ext}", codec, bitrate)
        folders[label] = folder
    return folders


def encode(signal: np.ndarray, sr: int, path: Path, codec: str, bitrate: int | None = None, container_format: str | None = None) -> None:
    """Write a mono float signal with PyAV (its own FFmpeg) in any container/codec it encodes:
    e.g. ("wav", pcm_s16le), ("mp3", libmp3lame), ("m4a", aac), ("ogg"/"webm", libopus), ("flac", flac)."""
    import av

    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sr, layout="mono")
        if bitrate:
            stream.bit_rate = bitrate
        supported = [f.name for f in (stream.codec_context.codec.audio_formats or [])]
        fmt = next((f for f in ("fltp", "flt", "s16", "s16p") if f in supported), supported[0] if supported else "s16")
        frame_size = stream.codec_context.frame_size or 1024
        pcm = np.clip(np.asarray(signal, dtype=np.float32), -1.0, 1.0)
        pcm = np.pad(pcm, (0, -len(pcm) % frame_size))  # fixed-size frames for every codec
        for start in range(0, len(pcm), frame_size):
            chunk = pcm[start : start + frame_size]
            arr = chunk[None] if fmt.startswith("flt") else (chunk * 32767).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(arr, format=fmt, layout="mono")
            frame.sample_rate = sr
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def format_check(data: Path, model_name: str, *, directory: Path | None = None, limit: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Accuracy on actors 17-20 as the original 16 kHz FLAC and re-encoded 48 kHz WAV / MP3 / M4A /
    OGG / WEBM (written to a temporary folder, never the repository)."""
    clips = list_clips(data, actors=TEST_ACTORS)
    if limit:
        clips = clips[:limit]
    results = {"flac16k": evaluate_folder(data, model_name, directory=directory, actors=TEST_ACTORS, limit=limit)["accuracy"]}
    with tempfile.TemporaryDirectory(prefix="voice-formats-") as tmp:
        for label, folder in write_formats(clips, Path(tmp)).items():
            results[label] = evaluate_folder(folder, model_name, directory=directory)["accuracy"]
    results["max_spread_points"] = round(100 * (max(results.values()) - min(results.values())), 2)
    log(f"formats: {json.dumps(results)}")
    return results


# ---------------------------------------------------------------------------------------------
# Model card


def floor_text(test: dict) -> str:
    """The card's note on how much of a measured ECE is the sample's own noise."""
    floor = test.get("ece_noise_floor")
    if not floor:
        return ""
    return (f"; a perfectly calibrated model with these confidences would measure {floor['mean']:.4f} on {floor['n']} clips "
            f"(90th percentile {floor['p90']:.4f}; `training.metrics.ece_noise_floor`, labels drawn from the model's own probabilities)")


def card_markdown_folds(card: dict) -> str:
    """The card of a fold ensemble (``training.voice_folds``): the fold table first."""
    m = card["metrics"]
    cv, test, t = m["cross_validation"], m["test"], card["training"]
    fold_rows = "\n".join(f"| {r['fold']} | {r['actors'][0]}-{r['actors'][-1]} | {r['n']} | {r['accuracy']:.4f} | {r['temperature']} | {r['ece']:.4f} |" for r in cv["folds"])
    combiner_rows = "\n".join(f"| {k} | {v['mean']:.4f} | {v['std']:.4f} |" for k, v in cv["window_combiners"].items())
    candidates = cv.get("candidates") or []
    candidate_block = ("\n## Recipes and their combinations (out-of-fold accuracy, mean and std over folds)\n| recipes averaged | mean | std | per fold |\n|---|---|---|---|\n"
                       + "\n".join(f"| {' + '.join(r['recipes'])} | {r['mean']:.4f} | {r['std']:.4f} | {', '.join(f'{a:.3f}' for a in r['folds'])} |" for r in candidates) + "\n") if candidates else ""
    combiner_block = (f"\n## Combining window scores (out-of-fold, mean and std over folds)\n| combiner | accuracy | std |\n|---|---|---|\n{combiner_rows}\n") if combiner_rows else ""
    short = m.get("short_clip")
    short_line = f"\n- **A clip shorter than one window** (actors 17-20 cut to their first {short['seconds']:.0f} s of speech): answered {short['answered']:.0%}, accuracy {short['accuracy']:.4f}" if short else ""
    recall = "\n".join(f"| {k} | {v:.3f} |" if v is not None else f"| {k} | n/a |" for k, v in test["per_class_recall"].items())
    formats = m.get("formats")
    format_rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in formats.items() if k != "max_spread_points") if formats else ""
    format_block = (f"\n## Same clips, other formats (actors 17-20)\n| format | accuracy |\n|---|---|\n{format_rows}\n\n"
                    f"Largest spread: {formats['max_spread_points']} points.\n") if formats else ""
    notes = "".join(f"\n- {note}" for note in card.get("notes", []))
    members = ", ".join(f"`{x['name']}` (sha256 `{x['sha256'][:16]}...`)" for x in card["members"])
    return f"""# Model card: {card['name']} ({card['architecture']}), version {card['version']}

Speech-emotion classifier: a 16 kHz mono recording, trimmed of leading/trailing silence and
peak-normalised, scored in 3 s windows (hop 1.5 s) on 3 s of 64-band log-mel frames (25 ms / 10 ms)
-> probabilities over {', '.join(card['classes'])}: the mean of the calibrated probabilities of
{len(card['members'])} {"fold models" if "fold models" in card['architecture'] else "models"}. Windows without speech are reported as no speech instead of guessed.

- **Data**: {card['data']['dataset']}; split {card['data']['split']}.
- **Model selection**: {card['data']['inner_split']}.
- **Served models**: {card['data'].get('final_training', 'the fold models, averaged')}.
- **Members**: {members}
- **Recipe**: `{json.dumps(t['recipe'])}`; augmentation: {card['data']['augmentation']}
- **Cross-validation (out-of-fold actors; {"the chosen recipes' fold models averaged" if candidates else "each fold model alone"})**: mean {cv['mean']:.4f}, spread (std) {cv['std']:.4f}, min {cv['min']:.4f}, max {cv['max']:.4f}; out-of-fold ECE {cv['out_of_fold_ece']:.4f}
- **Test accuracy (actors 17-20, never seen in training or selection; the ensemble)**: {test['accuracy']:.4f} on {test['n']} clips (chance 0.125)
- **Expected calibration error** (15 bins; members calibrated on {"their" if "fold models" in card['architecture'] else "their recipes'"} out-of-fold actors): {test['ece']:.4f} (uncalibrated members: {m['test_uncalibrated_ece']:.4f}){floor_text(test)}
- **Parameters**: {card['parameters']:,} in all
- **Training**: `{t['command']}`; {t['epochs'] if isinstance(t['epochs'], int) else 70} epochs per model, {t['train_seconds']:.0f} s of training of the members ({t['total_seconds']:.0f} s for this command, evaluation included) on {t['device']} ({t['backend']} backend)
- **Date**: {card['date']}{short_line}

## Folds (fold models scored on the actors they never heard, through the serving code)
| fold | actors | clips | accuracy | temperature | ECE |
|---|---|---|---|---|---|
{fold_rows}

{candidate_block}{combiner_block}
## Per-class recall (actors 17-20)
| class | recall |
|---|---|
{recall}

## Confusion matrix (actors 17-20, rows true, columns predicted)
{markdown_confusion(test['confusion'], card['classes'])}
{format_block}
## Notes{notes or chr(10) + '- none'}

## Limits
RAVDESS is 24 North-American actors reading two fixed sentences with acted emotion in a quiet
studio: expect much lower accuracy on spontaneous speech, other languages, children, noisy rooms
and far microphones. Only 4 actors (240 clips) are in the test, so one actor more or less moves
the score by several points (a 95% interval is roughly +-6 points). Licence of the training data:
CC BY-NC-SA 4.0 (non-commercial).
Reproduce: `python -m training.evaluate voice --data ../shared/datasets/ravdess-speech-16k --model {card['name']}`
(scores every actor in the folder; point it at a folder of actors 17-20 for the test number).
"""


def card_markdown(card: dict) -> str:
    m = card["metrics"]
    test, inner, t = m["test"], m["inner_validation"], card["training"]
    recall = "\n".join(f"| {k} | {v:.3f} |" if v is not None else f"| {k} | n/a |" for k, v in test["per_class_recall"].items())
    formats = m.get("formats")
    format_rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in formats.items() if k != "max_spread_points") if formats else ""
    notes = "".join(f"\n- {note}" for note in card.get("notes", []))
    notes_block = f"\n## Notes{notes}\n" if notes else ""
    format_block = (f"\n## Same clips, other formats (actors 17-20)\n| format | accuracy |\n|---|---|\n{format_rows}\n\n"
                    f"Largest spread: {formats['max_spread_points']} points.\n") if formats else ""
    feature = "mean MFCC(40) of the whole window" if card["input"]["features"] == "mfcc_mean" else "3 s of 64-band log-mel frames (25 ms / 10 ms)"
    return f"""# Model card: {card['name']} ({card['architecture']}), version {card['version']}

Speech-emotion classifier: a 16 kHz mono recording, trimmed of leading/trailing silence and
peak-normalised, scored in 3 s windows (hop 1.5 s) on {feature} -> probabilities over
{', '.join(card['classes'])}. Windows without speech (energy + spectral-flatness rule) are
reported as no speech instead of guessed.

- **Data**: {card['data']['dataset']}; split {card['data']['split']}.
- **Model selection**: {card['data']['inner_split']}. Final training: {card['data']['final_training']}.
- **Augmentation**: {card['data']['augmentation']}
- **Test accuracy (actors 17-20, never seen in training or selection)**: {test['accuracy']:.4f} on {test['n']} clips (chance 0.125; neutral has half as many clips)
- **Inner validation accuracy (actors 13-16, model trained on 1-12)**: {inner['accuracy']:.4f}
- **Expected calibration error** (15 bins, temperature T={card['temperature']} fitted on actors 13-16): {test['ece']:.4f} (before: {m['test_uncalibrated_ece']:.4f})
- **Parameters**: {card['parameters']:,}; file `{card['file']}` ({card['size_bytes'] / 1e6:.2f} MB)
- **Training**: `{t['command']}`; {t['epochs']} epochs per stage, {t['train_seconds']:.0f} s of training ({t['total_seconds']:.0f} s in all, features included) on {t['device']} ({t['backend']} backend)
- **Date**: {card['date']}
- **sha256**: `{card['sha256']}`

## Per-class recall (actors 17-20)
| class | recall |
|---|---|
{recall}

## Confusion matrix (actors 17-20, rows true, columns predicted)
{markdown_confusion(test['confusion'], card['classes'])}
{format_block}{notes_block}
## Limits
RAVDESS is 24 North-American actors reading two fixed sentences with acted emotion in a quiet
studio: expect much lower accuracy on spontaneous speech, other languages, children, noisy rooms
and far microphones. Only 4 actors (240 clips) are in the test, so one actor more or less moves
the score by several points (a 95% interval is roughly +-6 points). Licence of the training data:
CC BY-NC-SA 4.0 (non-commercial).
Reproduce: `python -m training.evaluate voice --data ../shared/datasets/ravdess-speech-16k --model {card['name']}`
(scores every actor in the folder; point it at a folder of actors 17-20 for the test number).
"""
