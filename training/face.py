"""Face-emotion training shared by ``train_face_cnn`` and ``train_face_vgg``.

Why one module over 400 lines: the networks, the loop, calibration and the card are one recipe
that the two commands and the ensemble, distillation and ablation scripts share.

The networks are short functions; the loop adds what a long run on a shared machine needs:
a seeded stratified validation split carved out of ``train/`` (never ``test/``), augmentation
on the fly, class weighting, a time budget that sizes the cosine schedule to the epochs that fit,
a checkpoint every epoch with ``--resume``, temperature calibration on the validation split, and
a model card with the PublicTest numbers written next to the served ``.keras`` file.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from recognition.inference.labels import FACE_EMOTIONS
from recognition.inference.preprocessing import FACE_SIZE, faces_to_input
from training import data as datasets
from training import extra_data
from training.common import mixup, next_version, strip_optimizer
from training.metrics import fit_temperature, markdown_confusion, summarise

BASE_WIDTHS = (64, 128, 256, 512)


def _keras():
    import keras

    return keras


def _widths(multiplier: float, base=BASE_WIDTHS) -> list[int]:
    return [max(8, int(round(w * multiplier))) for w in base]


def conv_bn_relu(x, filters: int):
    layers = _keras().layers
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def build_cnn(num_classes: int = 7, width: float = 0.5, dropout: float = 0.25, dense: int = 256):
    """Compact CNN (the original facetrain.py): 4 blocks of 2x(Conv, BN, ReLU), MaxPool, Dropout;
    then Dense, BN, Dropout, softmax."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = inputs
    for filters in _widths(width):
        x = conv_bn_relu(x, filters)
        x = conv_bn_relu(x, filters)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="face_cnn")


def build_vgg(num_classes: int = 7, width: float = 0.5, dense: int = 512, dropout: float = 0.3):
    """VGG16-style network from scratch at 48x48 (the original emotion_model.py used ImageNet VGG16
    + GlobalAveragePooling + Dense + Dense(7)): 13 convolutions in blocks of 2, 2, 3, 3, 3 with
    BatchNorm, GlobalAveragePooling, Dense, Dense(7)."""
    keras = _keras()
    layers = keras.layers
    widths = _widths(width, (64, 128, 256, 512, 512))
    repeats = (2, 2, 3, 3, 3)
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = inputs
    for filters, n in zip(widths, repeats):
        for _ in range(n):
            x = conv_bn_relu(x, filters)
        x = layers.MaxPooling2D(padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="face_vgg")


def build_vgg_imagenet(weights: Path, num_classes: int = 7, dense: int = 512):
    """Keras VGG16 base with local ImageNet weights (no download): grey face tiled to 3 channels."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = layers.Concatenate()([inputs, inputs, inputs])
    x = layers.Rescaling(255.0)(x)
    x = keras.applications.vgg16.preprocess_input(x)
    base = keras.applications.VGG16(include_top=False, weights=str(weights), input_shape=(48, 48, 3))
    x = base(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(dense, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="face_vgg"), base


AUGMENT_MODES = ("full", "flip", "none")


def augment_faces(faces: np.ndarray, rng: np.random.Generator, erase: float = 0.0, *, mode: str = "full", rotate: float = 10.0) -> np.ndarray:
    """Random flip, rotation (+-``rotate`` deg), zoom (0.9-1.1), shift (+-10%) and
    brightness/contrast on uint8 48x48 faces, on the CPU with OpenCV. (Keras' RandomRotation/Zoom
    layers go through map_coordinates, which on the JAX GPU backend made an epoch take minutes.)
    With ``erase`` > 0, that share of the faces also gets one random rectangle (2-20% of the area,
    aspect 0.3-3.3) filled with noise (random erasing, Zhong et al. 2017). ``mode`` "flip" keeps
    only the mirror images, "none" returns the faces as they are (ablations)."""
    import cv2

    if mode not in AUGMENT_MODES:
        raise ValueError(f"unknown augmentation mode {mode!r}; expected one of {AUGMENT_MODES}")
    n = len(faces)
    if mode == "none":
        return faces.copy()
    if mode == "flip":
        flips = rng.random(n) < 0.5
        out = faces.copy()
        out[flips] = faces[flips][:, :, ::-1]
        return out
    out = np.empty_like(faces)
    flips = rng.random(n) < 0.5
    angles = rng.uniform(-rotate, rotate, n)
    scales = rng.uniform(0.9, 1.1, n)
    shifts = rng.uniform(-0.1, 0.1, (n, 2)) * FACE_SIZE
    alphas = rng.uniform(0.8, 1.2, n)
    betas = rng.uniform(-20, 20, n)
    centre = (FACE_SIZE / 2 - 0.5, FACE_SIZE / 2 - 0.5)
    for i in range(n):
        matrix = cv2.getRotationMatrix2D(centre, angles[i], scales[i])
        matrix[:, 2] += shifts[i]
        face = faces[i][:, ::-1] if flips[i] else faces[i]
        warped = cv2.warpAffine(np.ascontiguousarray(face), matrix, (FACE_SIZE, FACE_SIZE), borderMode=cv2.BORDER_REFLECT_101)
        out[i] = np.clip(warped.astype(np.float32) * alphas[i] + betas[i], 0, 255).astype(np.uint8)
    if erase > 0:
        for i in np.flatnonzero(rng.random(n) < erase):
            area = rng.uniform(0.02, 0.2) * FACE_SIZE * FACE_SIZE
            aspect = math.exp(rng.uniform(math.log(0.3), math.log(1 / 0.3)))
            h = min(FACE_SIZE, max(1, int(round(math.sqrt(area * aspect)))))
            w = min(FACE_SIZE, max(1, int(round(math.sqrt(area / aspect)))))
            top, left = rng.integers(0, FACE_SIZE - h + 1), rng.integers(0, FACE_SIZE - w + 1)
            out[i, top : top + h, left : left + w] = rng.integers(0, 256, (h, w) + out.shape[3:], dtype=np.uint8)
    return out


def class_weights(y: np.ndarray, n_classes: int, power: float) -> dict[int, float]:
    """(N / (K * n_c)) ** power: power 0 is unweighted, 1 fully balanced."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = (len(y) / (n_classes * np.maximum(counts, 1))) ** power
    return {i: float(w) for i, w in enumerate(weights)}


class BudgetSchedule:
    """Warm-up then cosine learning rate over the epochs that fit in the time budget.

    After the second epoch (the first includes compilation) the remaining budget is divided by
    the measured epoch time, and the schedule is stretched over exactly that many epochs.
    """

    def __init__(self, base_lr: float, max_epochs: int, budget_s: float | None, warmup: int = 2):
        self.base_lr, self.max_epochs, self.budget_s, self.warmup = base_lr, max_epochs, budget_s, warmup
        self.total = max_epochs

    def lr(self, epoch: int) -> float:
        if epoch < self.warmup:
            return self.base_lr * (epoch + 1) / (self.warmup + 1)
        progress = (epoch - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * self.base_lr * (1 + math.cos(math.pi * min(1.0, progress))) + 1e-6

    def resize(self, epochs_done: int, elapsed_s: float, last_epoch_s: float) -> None:
        if self.budget_s is None or epochs_done < 2:
            return
        remaining = max(0.0, self.budget_s - elapsed_s)
        fit = epochs_done + int(remaining // max(last_epoch_s, 1e-3))
        self.total = max(epochs_done, min(self.max_epochs, fit))

    def observe(self, val_loss: float) -> None:
        """Told each epoch's validation loss; the cosine schedule does not need it."""

    def state(self) -> dict | None:
        """What --resume must restore (kept in state.json as "schedule"); None: nothing."""
        return None

    def restore(self, saved: dict | None) -> None:
        pass


class PlateauSchedule(BudgetSchedule):
    """Warm-up, then the learning rate halved whenever validation loss has not improved for
    ``patience`` epochs (Keras' ReduceLROnPlateau, kept in the run state so --resume continues
    it): the alternative to cosine in the ablation table."""

    def __init__(self, base_lr: float, max_epochs: int, budget_s: float | None, warmup: int = 2, patience: int = 3, factor: float = 0.5):
        super().__init__(base_lr, max_epochs, budget_s, warmup)
        self.patience, self.factor = patience, factor
        self.current, self.best_loss, self.waited = base_lr, float("inf"), 0

    def lr(self, epoch: int) -> float:
        if epoch < self.warmup:
            return self.base_lr * (epoch + 1) / (self.warmup + 1)
        return self.current

    def observe(self, val_loss: float) -> None:
        if val_loss < self.best_loss - 1e-4:
            self.best_loss, self.waited = val_loss, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            self.current, self.waited = max(self.current * self.factor, 1e-6), 0

    def state(self) -> dict:
        return {"current": self.current, "best_loss": self.best_loss, "waited": self.waited}

    def restore(self, saved: dict | None) -> None:
        if saved:
            self.current, self.best_loss, self.waited = saved["current"], saved["best_loss"], saved["waited"]


def make_callbacks(run_dir: Path, schedule: BudgetSchedule, state: dict, log):
    keras = _keras()

    class Loop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.time()
            self.model.optimizer.learning_rate.assign(schedule.lr(epoch))

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            seconds = time.time() - self._t0
            state["elapsed_s"] += seconds
            state["epoch"] = epoch + 1
            state["history"].append({k: float(v) for k, v in logs.items()} | {"epoch": epoch + 1, "seconds": seconds})
            state["total_epochs"] = schedule.total
            schedule.observe(float(logs.get("val_loss", 0.0)))
            if schedule.state() is not None:
                state["schedule"] = schedule.state()
            val_acc = float(logs.get("val_accuracy", 0.0))
            if val_acc > state["best_val_accuracy"]:
                state["best_val_accuracy"] = val_acc
                state["best_epoch"] = epoch + 1
                strip_optimizer(self.model).save(run_dir / "best.keras")  # weights only: small enough to commit
            self.model.save(run_dir / "last.keras")
            (run_dir / "state.json").write_text(json.dumps(state, indent=1))
            log(
                f"epoch {epoch + 1}/{schedule.total} {seconds:.1f}s loss {logs.get('loss', 0):.4f} "
                f"acc {logs.get('accuracy', 0):.4f} val_loss {logs.get('val_loss', 0):.4f} "
                f"val_acc {val_acc:.4f} lr {schedule.lr(epoch):.2e} best {state['best_val_accuracy']:.4f}@{state['best_epoch']}"
            )
            if epoch + 1 >= schedule.total:
                self.model.stop_training = True

    return [Loop()]


def add_arguments(parser: argparse.ArgumentParser, *, name: str, width: float, epochs: int, lr: float) -> None:
    parser.add_argument("--data", type=Path, default=datasets.DEFAULT_FER / "train", help="train folder (<class>/*.jpg) or .npz")
    parser.add_argument("--test", type=Path, default=datasets.DEFAULT_FER / "test", help="held-out test folder or .npz (PublicTest)")
    parser.add_argument("--name", default=name, help="model name: models/<name>.keras and its card")
    parser.add_argument("--out", type=Path, default=datasets.REPO / "models", help="where the model and card go")
    parser.add_argument(
        "--runs", type=Path, default=datasets.REPO / "training" / "checkpoints",
        help="checkpoint folder: <runs>/<name>/ holds state.json, last.keras (with optimizer state) and best.keras, "
        "overwritten every epoch; the default is tracked by git, so a long run goes on elsewhere from a commit with --resume",
    )
    parser.add_argument("--width", type=float, default=width, help="channel width multiplier")
    parser.add_argument("--epochs", type=int, default=epochs, help="maximum epochs")
    parser.add_argument("--budget-minutes", type=float, default=None, help="fit the schedule into this much training time")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--erase", type=float, default=0.0, help="share of training faces given a random-erasing rectangle")
    parser.add_argument("--augment", choices=AUGMENT_MODES, default="full",
                        help="full: flip, rotation, zoom, shift, brightness/contrast; flip: mirror images only; none")
    parser.add_argument("--rotate", type=float, default=10.0, help="largest random rotation in degrees (full augmentation)")
    parser.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0: off): faces and labels blended in pairs")
    parser.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw", help="sgd: SGD with Nesterov momentum 0.9 (give it a larger --lr, e.g. 0.01)")
    parser.add_argument("--schedule", choices=("cosine", "plateau"), default="cosine",
                        help="cosine (sized to --budget-minutes) or halve on a validation-loss plateau (3 epochs)")
    parser.add_argument("--train-fraction", type=float, default=1.0,
                        help="train on this stratified share of the training split, validate on all of it (ablations)")
    parser.add_argument("--validation-only", action="store_true",
                        help="stop after training: report validation, never touch --test, write no model (ablations)")
    parser.add_argument(
        "--jit", action="store_true",
        help="XLA-compile the training step (jit_compile=True): 0.6x the CPU throughput here; off, as Keras' 'auto' is on this CPU (benchmarks/bench_train_face.py)",
    )
    parser.add_argument(
        "--teacher", default=None, metavar="MODEL",
        help="distil: learn this served face model's calibrated probabilities (e.g. face_ensemble, with its views) "
        "as well as the labels (training/distill.py); recorded in the card",
    )
    parser.add_argument("--distill-temperature", type=float, default=2.0, help="softening temperature of teacher and student (--teacher)")
    parser.add_argument("--distill-weight", type=float, default=0.9, help="share of the loss on the teacher's soft labels; the rest on the labels (--teacher)")
    parser.add_argument(
        "--online-teacher", action="store_true",
        help="the teacher labels each epoch's augmented (and mixed, with --mixup) faces, not the clean ones once: "
        "the student matches the teacher on exactly what it sees (Beyer et al. 2022, consistent teaching); costs a "
        "teacher pass over the training set per epoch",
    )
    parser.add_argument("--class-weight-power", type=float, default=0.3)
    parser.add_argument("--val-fraction", type=float, default=0.1, help="validation carved from --data, stratified")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training samples (smoke tests)")
    parser.add_argument("--seed", type=int, default=1337, help="seeds the validation split (keep it fixed: members of one ensemble must share it)")
    parser.add_argument(
        "--aug-seed", type=int, default=None,
        help="seeds initialisation, shuffling and augmentation (default: --seed); a second ensemble member changes this, not --seed",
    )
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads (e.g. 1 each for two runs side by side on 2 cores)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    parser.add_argument(
        "--init-weights", type=Path, default=None,
        help="warm start: begin from this .keras model's weights (same architecture and width) with a fresh optimizer and schedule",
    )
    parser.add_argument(
        "--widen", action="store_true",
        help="with --init-weights: the model may be this architecture at a smaller --width; it is widened (Net2WiderNet, training/widen.py) to start from its exact function",
    )
    parser.add_argument("--version", default=None, help="version written into the card (default: date)")
    parser.add_argument(
        "--extra-data", type=Path, action="append", default=None, metavar="PATH",
        help="repeatable: a dataset exported by the site (corrections page, GET /api/v1/corrections/export.zip, "
        "manage.py export_corrections; a folder or .zip with face/<class>/*.png and manifest.csv) added to the "
        "training split (never validation or test); recorded in the card as extra_data",
    )


def train(args: argparse.Namespace, build, arch: str, extra_card: dict | None = None) -> dict:
    """Train, calibrate, evaluate on --test and write models/<name>.keras + card. Returns the card."""
    keras = _keras()
    started = time.time()
    run_dir = Path(args.runs) / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "train.log"

    def log(message: str) -> None:
        line = f"{datetime.now().strftime('%H:%M:%S')} {message}"
        print(line, flush=True)
        with open(log_path, "a") as fh:
            fh.write(line + "\n")

    if args.threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        except RuntimeError:  # TensorFlow already ran in this process: its pools are fixed
            pass
    aug_seed = args.seed if getattr(args, "aug_seed", None) is None else args.aug_seed
    keras.utils.set_random_seed(aug_seed)
    x_all, y_all = datasets.load_face_arrays(args.data)
    if args.limit:
        x_all, y_all = x_all[: args.limit], y_all[: args.limit]
    train_idx, val_idx = datasets.stratified_split(y_all, args.val_fraction, args.seed)
    if getattr(args, "train_fraction", 1.0) < 1.0:  # stratified: each class keeps its share
        keep, _ = datasets.stratified_split(y_all[train_idx], 1.0 - args.train_fraction, args.seed + 1)
        train_idx = train_idx[np.sort(keep)]
    x_train_u8, y_train = x_all[train_idx], y_all[train_idx]
    x_val, y_val = faces_to_input(x_all[val_idx]), y_all[val_idx]
    x_extra, y_extra, extra_used = extra_data.load_all(getattr(args, "extra_data", None))
    if extra_used:
        x_train_u8, y_train = np.concatenate([x_train_u8, x_extra]), np.concatenate([y_train, y_extra])
        extra_card = {**(extra_card or {}), "extra_data": extra_used}
        log(f"extra data: {len(y_extra)} faces from {len(extra_used)} export(s): {[e['counts'] for e in extra_used]}")
    n_classes = len(FACE_EMOTIONS)
    log(f"{args.name}: backend {keras.backend.backend()}, train {len(y_train)}, val {len(y_val)}, arch {arch}, width {args.width}")

    teacher = getattr(args, "teacher", None)
    if teacher:
        # imported here: it registers DistillationLoss before a checkpoint that names it loads
        from training import distill

        started_teacher = time.time()
        teacher_train = distill.teacher_probabilities(teacher, x_train_u8)
        teacher_val = distill.teacher_probabilities(teacher, x_all[val_idx])
        log(f"teacher {teacher}: labelled {len(teacher_train) + len(teacher_val)} faces in {time.time() - started_teacher:.0f} s; "
            f"validation accuracy {(teacher_val.argmax(1) == y_val).mean():.4f}")
        extra_card = {**(extra_card or {}), "distillation": {
            "teacher": teacher, "temperature": args.distill_temperature, "weight": args.distill_weight,
            "teacher_validation_accuracy": round(float((teacher_val.argmax(1) == y_val).mean()), 4),
            "teacher_labels": "each epoch's augmented faces" if getattr(args, "online_teacher", False) else "clean faces, once",
        }}

    def compile_model(model) -> None:
        if getattr(args, "optimizer", "adamw") == "sgd":
            optimizer = keras.optimizers.SGD(learning_rate=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
        else:
            optimizer = keras.optimizers.AdamW(learning_rate=args.lr, weight_decay=args.weight_decay)
        if teacher:
            loss = distill.DistillationLoss(n_classes, args.distill_temperature, args.distill_weight, args.label_smoothing)
            metrics = [distill.hard_accuracy(n_classes)]
        else:
            loss, metrics = keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing), ["accuracy"]
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=bool(getattr(args, "jit", False)))

    state_path = run_dir / "state.json"
    if args.resume and state_path.exists() and (run_dir / "last.keras").exists():
        state = json.loads(state_path.read_text())
        try:
            model = keras.models.load_model(run_dir / "last.keras")
        except TypeError:  # a distilled checkpoint from before distill.label_accuracy was registered
            model = keras.models.load_model(run_dir / "last.keras", compile=False)
            compile_model(model)
            log("the checkpoint's metric could not be loaded: weights kept, optimizer state restarted")
        model.jit_compile = bool(getattr(args, "jit", False))  # the checkpoint's compile config may say otherwise
        log(f"resumed at epoch {state['epoch']} (best {state['best_val_accuracy']:.4f})")
    else:
        state = {"epoch": 0, "elapsed_s": 0.0, "best_val_accuracy": -1.0, "best_epoch": 0, "history": [], "total_epochs": args.epochs}
        model = build(n_classes, args.width)
        if args.init_weights:
            warm_start = load_warm_start(args.init_weights, model, run_dir, widen=getattr(args, "widen", False), seed=aug_seed)
            state["warm_start"] = warm_start
            log(f"warm start from {args.init_weights} ({warm_start.get('epochs', '?')} epochs, sha256 {warm_start['sha256'][:12]})")
        compile_model(model)
    state.setdefault("commands", []).append(command_line(args, arch))
    log(f"parameters: {model.count_params():,}")
    budget_s = args.budget_minutes * 60 if args.budget_minutes else None
    kind = PlateauSchedule if getattr(args, "schedule", "cosine") == "plateau" else BudgetSchedule
    schedule = kind(args.lr, args.epochs, budget_s)
    schedule.restore(state.get("schedule"))
    # A resumed run goes on to --epochs, or to what fits in --budget-minutes (which counts the
    # wall time already spent), so a finished run can be continued with a new schedule.
    schedule.total = args.epochs
    if args.resume and state["history"]:
        schedule.resize(state["epoch"], state.get("wall_s", state["elapsed_s"]), state["history"][-1]["seconds"])
    callbacks = make_callbacks(run_dir, schedule, state, log)
    y_train_1h = keras.utils.to_categorical(y_train, n_classes)
    y_val_1h = keras.utils.to_categorical(y_val, n_classes)
    weights = class_weights(y_train, n_classes, args.class_weight_power)
    sample_weight = None
    if teacher:  # targets are [one-hot | teacher]; Keras' class_weight would read them as 14 classes
        y_train_1h = distill.targets(y_train, teacher_train, args.distill_temperature)
        y_val_1h = distill.targets(y_val, teacher_val, args.distill_temperature)
        sample_weight = np.asarray([weights[int(c)] for c in y_train], dtype=np.float32)
        weights = None
    state.setdefault("wall_s", 0.0)
    while state["epoch"] < schedule.total:
        epoch, epoch_started = state["epoch"], time.time()
        # Fresh augmentation every epoch, seeded by (seed, epoch) so a resumed run sees the same data.
        rng = np.random.default_rng([aug_seed, epoch])
        x_epoch = faces_to_input(augment_faces(x_train_u8, rng, args.erase, mode=getattr(args, "augment", "full"), rotate=getattr(args, "rotate", 10.0)))
        y_epoch = y_train_1h
        if getattr(args, "mixup", 0.0) > 0:
            x_epoch, y_epoch = mixup(x_epoch, y_train_1h, rng, args.mixup)
        if teacher and getattr(args, "online_teacher", False):
            y_epoch = distill.online_targets(teacher, x_epoch, y_epoch, args.distill_temperature)
        model.fit(
            x_epoch, y_epoch, validation_data=(x_val, y_val_1h), batch_size=args.batch_size,
            epochs=epoch + 1, initial_epoch=epoch, class_weight=weights, sample_weight=sample_weight, callbacks=callbacks, verbose=0, shuffle=True,
        )
        # The budget counts wall time (augmentation, fit, validation, checkpoints), not fit alone.
        last_wall = time.time() - epoch_started
        state["wall_s"] += last_wall
        state.setdefault("epoch_walls", []).append(round(last_wall, 1))
        # The median of the last five epochs, not the last one: on a shared machine one slow
        # epoch would otherwise shrink the cosine schedule and the next fast one stretch it again.
        schedule.resize(state["epoch"], state["wall_s"], float(np.median(state["epoch_walls"][-5:])))
        state["total_epochs"] = schedule.total
        (run_dir / "state.json").write_text(json.dumps(state, indent=1))
    if getattr(args, "validation_only", False):
        log(f"{args.name}: best validation accuracy {state['best_val_accuracy']:.4f} at epoch {state['best_epoch']} of {state['epoch']} (validation only: test untouched)")
        return {"name": args.name, "validation_only": True, "best_val_accuracy": state["best_val_accuracy"], "best_epoch": state["best_epoch"],
                "epochs": state["epoch"], "final_val_accuracy": state["history"][-1]["val_accuracy"] if state["history"] else None,
                "train_seconds": round(state["wall_s"], 1), "train_size": len(y_train), "val_size": len(y_val)}
    classifier = keras.models.load_model(run_dir / "best.keras") if (run_dir / "best.keras").exists() else model
    return finish(args, classifier, arch, state, x_val, y_val, started, log, extra_card or {})


def load_warm_start(path: Path, model, run_dir: Path, *, widen: bool = False, seed: int = 0) -> dict:
    """Copy ``path`` into the run folder and load its weights into ``model``. Returns its sha256
    and what its JSON card (next to it, if any) records about the earlier training. With ``widen``,
    ``path`` may be the same architecture at a smaller --width: ``training.widen`` widens it so the
    new model starts out computing exactly what it does."""
    import shutil

    from recognition.inference.registry import sha256_file

    path = Path(path)
    if not path.exists():
        raise SystemExit(f"--init-weights {path} does not exist")
    copy = run_dir / "init.keras"
    if path.resolve() != copy.resolve():
        shutil.copyfile(path, copy)
    source = _keras().models.load_model(copy, compile=False)
    info = {"file": str(path), "sha256": sha256_file(copy)}
    if [w.shape for w in source.get_weights()] == [w.shape for w in model.get_weights()]:
        model.set_weights(source.get_weights())
    elif widen:
        from training.widen import widen_into

        try:
            widen_into(source, model, seed=seed)
        except ValueError as error:
            raise SystemExit(f"--init-weights {path} --widen: {error}") from None
        info["widened_from"] = {"parameters": int(source.count_params()), "to": int(model.count_params())}
    else:
        raise SystemExit(f"--init-weights {path}: its layers do not match this architecture and --width (a narrower model of it: add --widen)")
    card_path = path.with_suffix(".json")
    if card_path.exists():
        earlier = json.loads(card_path.read_text())
        training = earlier.get("training", {})
        info |= {
            "version": earlier.get("version"),
            "epochs": training.get("epochs"),
            "train_seconds": training.get("train_seconds"),
            "device": training.get("device"),
            "command": training.get("command"),
            "test_accuracy": earlier.get("metrics", {}).get("test", {}).get("accuracy"),
        }
    return info


def command_line(args, arch: str) -> str:
    """The command as typed (``args.argv``, recorded by each trainer's main()), for the model card."""
    import shlex

    module = "training.train_face_vgg" if arch.startswith("vgg") else "training.train_face_cnn"
    return f"python -m {module} {shlex.join(args.argv)}".strip()


def predict_in_batches(model, x: np.ndarray, batch: int = 512) -> np.ndarray:
    return np.concatenate([np.asarray(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)] or [np.zeros((0, 7))])


def finish(args, classifier, arch, state, x_val, y_val, started, log, extra_card) -> dict:
    """Calibrate on validation, evaluate on the held-out test set, save the model and its card."""
    from recognition.inference.registry import (
        apply_temperature,
        sha256_file,
        write_card,
    )

    keras = _keras()
    temperature = fit_temperature(predict_in_batches(classifier, x_val), y_val)
    val_metrics = summarise(apply_temperature(predict_in_batches(classifier, x_val), temperature), y_val, FACE_EMOTIONS)
    x_test, y_test = datasets.load_face_arrays(args.test)
    raw_test = predict_in_batches(classifier, faces_to_input(x_test))
    test_metrics = summarise(apply_temperature(raw_test, temperature), y_test, FACE_EMOTIONS)
    test_uncal = summarise(raw_test, y_test, FACE_EMOTIONS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{args.name}.keras"
    served = strip_optimizer(classifier)
    served.save(model_path)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        import jax

        device = str(jax.devices()[0].device_kind)
    except Exception:
        device = platform.processor() or platform.machine()
    card = {
        "name": args.name,
        "task": "face",
        "version": args.version or next_version(out / f"{args.name}.json", today.replace("-", ".")),
        "architecture": arch,
        "file": model_path.name,
        "classes": list(FACE_EMOTIONS),
        "input": {"shape": [FACE_SIZE, FACE_SIZE, 1], "preprocessing": "recognition.inference.preprocessing.faces_to_input"},
        "parameters": int(classifier.count_params()),
        "temperature": round(temperature, 4),
        "data": {
            "train": f"FER2013 Training ({args.data.name}), minus a {args.val_fraction:.0%} stratified validation split (seed {args.seed})",
            "validation": f"{len(y_val)} images from train/, used for best-epoch selection and temperature calibration",
            "test": f"FER2013 PublicTest ({len(y_test)} images), never used for training or model selection",
        },
        "metrics": {"test": test_metrics, "test_uncalibrated_ece": test_uncal["ece"], "validation_accuracy": val_metrics["accuracy"], "validation_ece": val_metrics["ece"]},
        "training": {
            "command": ", then ".join(state["commands"]),
            "backend": keras.backend.backend(),
            "device": device,
            "epochs": state["epoch"],
            "best_epoch": state["best_epoch"],
            "train_seconds": round(state.get("wall_s", state["elapsed_s"]), 1),
            "total_seconds": round(time.time() - started, 1),
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "label_smoothing": args.label_smoothing,
            "class_weight_power": args.class_weight_power,
        },
        "date": today,
        "sha256": sha256_file(model_path),
        "size_bytes": model_path.stat().st_size,
        **({"warm_start": state["warm_start"]} if state.get("warm_start") else {}),
        **extra_card,
    }
    write_card(card, out, markdown=card_markdown(card))
    log(f"{args.name}: test accuracy {test_metrics['accuracy']:.4f}, ECE {test_metrics['ece']:.4f} (T={temperature:.3f}), saved {model_path}")
    return card


def _warm_start_text(card: dict) -> str:
    warm = card.get("warm_start")
    if not warm:
        return ""
    earlier = f"version {warm.get('version')}, {warm.get('epochs')} epochs, {warm.get('train_seconds') or 0:.0f} s on {warm.get('device')}"
    return f"; warm-started from `{Path(warm['file']).name}` ({earlier}; sha256 `{warm['sha256'][:16]}...`; command `{warm.get('command')}`)"


def _distillation_text(card: dict) -> str:
    """The card's "Distillation" line (``train_face_vgg --teacher``): teacher, temperature, weight
    and the teacher's validation accuracy beside the student's; empty for a network taught by
    the labels alone."""
    info = card.get("distillation")
    if not info:
        return ""
    teacher_val = info.get("teacher_validation_accuracy")
    teacher_val = f"{teacher_val:.4f}" if isinstance(teacher_val, (int, float)) else "n/a"
    return (
        f"\n- **Distillation**: teacher `{info.get('teacher')}` (labels: {info.get('teacher_labels', 'n/a')}), "
        f"temperature T={info.get('temperature')}, weight {info.get('weight')} on the teacher's labels; "
        f"validation accuracy: teacher {teacher_val}, student {card['metrics']['validation_accuracy']:.4f}"
    )


def recall_rows(test: dict) -> str:
    """Markdown rows ``| class | recall |`` of a card's test metrics."""
    return "\n".join(f"| {k} | {v:.3f} |" if v is not None else f"| {k} | n/a |" for k, v in test["per_class_recall"].items())


def limits_markdown(name: str) -> str:
    """The "Limits" section every face card ends with."""
    return f"""## Limits
FER2013 is low-resolution, mostly frontal, web-scraped faces with label noise (human accuracy
about 65%). Expect lower accuracy on profile faces, occlusions, children and poor lighting.
Licence of the training data: research use (ICML 2013 challenge); not for commercial use.
Reproduce the test numbers: `python -m training.evaluate face --data ../shared/datasets/fer2013/test --model {name}`.
"""


def card_markdown(card: dict) -> str:
    test = card["metrics"]["test"]
    recall = recall_rows(test)
    t = card["training"]
    return f"""# Model card: {card['name']} ({card['architecture']}), version {card['version']}

Facial-expression classifier: one 48x48 grey face crop -> probabilities over {', '.join(card['classes'])}.

- **Data**: {card['data']['train']}. Validation: {card['data']['validation']}. Test: {card['data']['test']}.{extra_data.markdown(card)}
- **Test accuracy (FER2013 PublicTest)**: {test['accuracy']:.4f} on {test['n']} images
- **Expected calibration error** (15 bins, after temperature T={card['temperature']}): {test['ece']:.4f} (before: {card['metrics']['test_uncalibrated_ece']:.4f})
- **Validation accuracy** (from train/): {card['metrics']['validation_accuracy']:.4f}
- **Parameters**: {card['parameters']:,}; file `{card['file']}` ({card['size_bytes'] / 1e6:.1f} MB)
- **Training**: `{t['command']}`; {t['epochs']} epochs (best {t['best_epoch']}), {t['train_seconds']:.0f} s on {t['device']} ({t['backend']} backend){_warm_start_text(card)}{_distillation_text(card)}
- **Date**: {card['date']}
- **sha256**: `{card['sha256']}`

## Per-class recall (PublicTest)
| class | recall |
|---|---|
{recall}

## Confusion matrix (PublicTest, rows true, columns predicted)
{markdown_confusion(test['confusion'], card['classes'])}

{limits_markdown(card['name'])}"""
