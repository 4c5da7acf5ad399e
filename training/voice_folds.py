"""Voice models chosen by cross-validation over actor folds, served as the ensemble of the folds.

Protocol: actors 1-16 are cut into ``k`` folds of consecutive actors (k=4: 1-4, 5-8, 9-12,
13-16; each fold two men and two women). Fold model ``i`` trains on the other folds and is scored
on fold ``i`` through the serving code (``recognition.inference.voice.score_windows``: trim,
3 s windows, peak-normalise, features, model). Those out-of-fold predictions give, for a recipe,
the fold table (accuracy per fold, mean and spread) and each fold model's temperature; they also
compare ways of combining window scores. Actors 17-20 are touched once, at the end, to score the
ensemble of the k fold models (``--cv-only`` never touches them): nothing is chosen on them.

Files: ``models/<name>_f<i>.keras`` + card per fold model and ``models/<name>.json``, the
ensemble card (``"kind": "ensemble"``) that ``registry.get_model`` serves.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from recognition.inference import audio
from recognition.inference.labels import VOICE_EMOTIONS
from training.common import next_version, strip_optimizer
from training.metrics import fit_temperature, summarise
from training.voice import (
    ARCHITECTURES,
    _keras,
    add_arguments,
    apply_defaults,
    card_markdown_folds,
    finish_card,
    list_clips,
    load_features,
    load_signal,
    model_options,
    run_logger,
    run_stage,
    select,
)
from training.voice import train as voice_train

COMBINERS = ("mean", "geometric", "max_confidence")


def fold_actors(k: int, actors: tuple[int, ...] = tuple(range(1, 17))) -> list[tuple[int, ...]]:
    """``actors`` in ``k`` folds of consecutive actors (odd ids are men, even women, so folds of
    an even size are balanced)."""
    if not 2 <= k <= len(actors):
        raise ValueError(f"--folds must be between 2 and {len(actors)}")
    return [tuple(int(a) for a in part) for part in np.array_split(np.asarray(actors), k)]


class _Wrapped:
    """A Keras model in the shape ``voice.score_windows`` expects of a served model."""

    def __init__(self, keras_model, kind: str, temperature: float = 1.0):
        self.keras_model, self.card = keras_model, {"input": {"features": kind}, "temperature": temperature}
        self.temperature = temperature

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.keras_model.predict_on_batch(x), dtype=np.float64)


def window_outputs(model, clips) -> list[dict]:
    """Per clip, through the serving code: uncalibrated window outputs, voiced frames, speech flags."""
    from recognition.inference.voice import score_windows

    out = []
    for clip in clips:
        scores = score_windows(load_signal(clip.path), model)
        out.append({"raw": scores.raw, "voiced": scores.voiced, "speech": scores.speech, "label": clip.label, "actor": clip.actor})
    return out


def combine(raw: np.ndarray, voiced: np.ndarray, speech: np.ndarray, how: str, temperature: float = 1.0) -> np.ndarray:
    """One clip's window outputs -> clip probabilities. "mean" is what serving does (mean over
    speech windows weighted by voiced frames); "geometric" averages log-probabilities with the
    same weights; "max_confidence" takes the most confident window."""
    from recognition.inference.registry import apply_temperature

    p = apply_temperature(raw, temperature)
    weights = np.where(speech, voiced, 0).astype(np.float64) if speech.any() else np.ones(len(p))
    if how == "mean":
        mean = (p * weights[:, None]).sum(0) / weights.sum()
    elif how == "geometric":
        mean = np.exp((np.log(np.clip(p, 1e-12, 1)) * weights[:, None]).sum(0) / weights.sum())
    elif how == "max_confidence":
        mean = p[int(np.argmax(np.where(weights > 0, p.max(1), -1)))]
    else:
        raise ValueError(how)
    return mean / mean.sum()


def clip_matrix(records: list[dict], how: str = "mean", temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    probs = np.stack([combine(r["raw"], r["voiced"], r["speech"], how, temperature) for r in records])
    return probs, np.asarray([r["label"] for r in records])


def train_folds(args) -> dict:
    """Train the k fold models, write the fold table; unless ``--cv-only``, serve their ensemble
    and score it once on actors 17-20."""
    from recognition.inference.registry import sha256_file, write_card

    args = apply_defaults(args)
    keras = _keras()
    started = time.time()
    run_root = Path(args.runs) / args.name
    run_root.mkdir(parents=True, exist_ok=True)
    log = run_logger(run_root)

    kind, _ = ARCHITECTURES[args.arch]
    if kind != "log_mel":
        raise SystemExit("--folds needs a log-mel model (--arch cnn)")
    augment = not args.no_augment
    clips = list_clips(args.data, actors=range(1, 17))
    folds = fold_actors(args.folds)
    if args.limit:
        clips = [c for fold in folds for c in [c for c in clips if c.actor in fold][: args.limit]]
    log(f"{args.name}: {args.folds}-fold CV over actors 1-16 ({len(clips)} clips), options {model_options(args)}, "
        f"mixup {args.mixup}, epochs {args.epochs}, lr {args.lr}")
    data = load_features(clips, kind, augment, args.seed, log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    version = args.version or next_version(out / f"{args.name}.json", today.replace("-", "."))
    fold_rows, members, oof, train_seconds = [], [], [], 0.0
    for i, actors in enumerate(folds, start=1):
        mask = np.isin(data["actor"], actors)
        model, state = run_stage(args, f"fold{i}", select(data, ~mask), select(data, mask), log)
        train_seconds += state["elapsed_s"]
        val_clips = [c for c in clips if c.actor in actors]
        records = window_outputs(_Wrapped(model, kind), val_clips)
        raw_clip, y = clip_matrix(records)
        temperature = fit_temperature(raw_clip, y)
        metrics = summarise(clip_matrix(records, "mean", temperature)[0], y, VOICE_EMOTIONS)
        log(f"fold {i} (actors {actors[0]}-{actors[-1]}): accuracy {metrics['accuracy']:.4f}, T {temperature:.3f}, ECE {metrics['ece']:.4f}")
        fold_rows.append({"fold": i, "actors": list(actors), "n": metrics["n"], "accuracy": metrics["accuracy"],
                          "temperature": round(temperature, 4), "ece": metrics["ece"],
                          "last_epoch_val_accuracy": state["history"][-1].get("val_accuracy")})
        oof.extend({**r, "temperature": temperature} for r in records)
        name = f"{args.name}_f{i}"
        path = out / f"{name}.keras"
        strip_optimizer(model).save(path)
        member_card = {
            "name": name, "task": "voice", "version": version, "architecture": args.arch, "file": path.name,
            "classes": list(VOICE_EMOTIONS),
            "input": _input_card(kind), "parameters": int(model.count_params()), "temperature": round(temperature, 4),
            "data": {"train": f"RAVDESS actors 1-16 except {actors[0]}-{actors[-1]}", "validation": f"actors {actors[0]}-{actors[-1]} (temperature)"},
            "metrics": {"fold_validation": metrics},
            "date": today, "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
            "member_of": args.name,
            "recipe": recipe_of(args),
            "training": {"epochs": args.epochs, "train_seconds": round(state["elapsed_s"], 1)},
        }
        write_card(member_card, out)
        members.append({"name": name, "sha256": member_card["sha256"], "validation_actors": list(actors)})

    accs = np.asarray([r["accuracy"] for r in fold_rows])
    combiners = {}
    for how in COMBINERS:
        per_fold = []
        for actors in folds:
            rec = [r for r in oof if r["actor"] in actors]
            p = np.stack([combine(r["raw"], r["voiced"], r["speech"], how, r["temperature"]) for r in rec])
            per_fold.append(float((p.argmax(1) == np.asarray([r["label"] for r in rec])).mean()))
        combiners[how] = {"mean": round(float(np.mean(per_fold)), 4), "std": round(float(np.std(per_fold)), 4), "folds": [round(a, 4) for a in per_fold]}
    oof_p = np.stack([combine(r["raw"], r["voiced"], r["speech"], "mean", r["temperature"]) for r in oof])
    oof_metrics = summarise(oof_p, np.asarray([r["label"] for r in oof]), VOICE_EMOTIONS)
    cv = {"folds": fold_rows, "mean": round(float(accs.mean()), 4), "std": round(float(accs.std()), 4),
          "min": round(float(accs.min()), 4), "max": round(float(accs.max()), 4),
          "out_of_fold_ece": oof_metrics["ece"], "window_combiners": combiners}
    log(f"CV {args.name}: mean {cv['mean']:.4f} +- {cv['std']:.4f} (folds {[round(float(a), 4) for a in accs]}), "
        f"OOF ECE {cv['out_of_fold_ece']:.4f}, combiners {json.dumps({k: v['mean'] for k, v in combiners.items()})}")
    (run_root / "cv.json").write_text(json.dumps({"options": recipe_of(args), "cv": cv}, indent=1))
    if args.cv_only:
        return {"cv": cv, "recipe": recipe_of(args)}

    card = {
        "name": args.name, "task": "voice", "kind": "ensemble", "version": version,
        "architecture": f"ensemble of {args.folds} {args.arch} fold models",
        "members": members, "classes": list(VOICE_EMOTIONS), "input": _input_card(kind),
        "parameters": int(sum(_keras().models.load_model(out / f"{m['name']}.keras", compile=False).count_params() for m in members)),
        "temperature": 1.0,
        "data": {
            "dataset": "RAVDESS speech, 16 kHz mono FLAC (CC BY-NC-SA 4.0)",
            "split": "by actor: train 1-16 (cross-validated in actor folds), test 17-20 (never a random split of clips)",
            "inner_split": f"{args.folds}-fold cross-validation over actors 1-16 ({', '.join(f'{a[0]}-{a[-1]}' for a in folds)}); "
                           "recipe, epochs and each member's temperature chosen on the out-of-fold actors; test actors 17-20 scored once",
            "final_training": f"the {args.folds} fold models (each on 12 actors), averaged",
            "augmentation": ("speed 0.9/1.1, pitch -2/+2 semitones, white/pink noise 10-30 dB SNR, random time shift, SpecAugment"
                             + (f", mixup alpha {args.mixup}" if args.mixup else "")) if augment else "none",
        },
        "metrics": {"cross_validation": cv},
        "training": {
            "command": "python -m training.train_voice " + " ".join(getattr(args, "argv", []) or []),
            "recipe": recipe_of(args),
            "backend": keras.backend.backend(),
            "device": "CPU (x86_64, 2 shared cores)",
            "epochs": args.epochs, "train_seconds": round(train_seconds, 1), "total_seconds": None,
            "batch_size": args.batch_size, "learning_rate": args.lr, "weight_decay": args.weight_decay,
            "label_smoothing": args.label_smoothing,
        },
        "date": today,
    }
    return finish_card(card, args, out, started, card_markdown_folds, log)


def _input_card(kind: str) -> dict:
    return {
        "features": kind, "shape": [audio.WINDOW_FRAMES, audio.N_MELS], "sample_rate": audio.SAMPLE_RATE,
        "window_seconds": audio.WINDOW_SECONDS, "hop_seconds": audio.WINDOW_HOP_SECONDS,
        "preprocessing": "recognition.inference.audio.model_input (trim, peak-normalise, features)",
    }


def recipe_of(args) -> dict:
    """The recipe a card records: everything that decides what a training run learns."""
    return {"arch": args.arch, **model_options(args), "mixup": args.mixup, "epochs": args.epochs, "lr": args.lr,
            "weight_decay": args.weight_decay, "label_smoothing": args.label_smoothing, "augment": not args.no_augment,
            "folds": args.folds, "seed": args.seed}


RECIPE_KEYS = ("arch", "pooling", "deltas", "utterance_norm", "frontend", "mixup", "epochs", "lr", "weight_decay", "label_smoothing", "seed")


def args_from_recipe(recipe: dict, **overrides) -> argparse.Namespace:
    """The inverse of :func:`recipe_of`: trainer arguments (defaults for whatever the recipe does not
    record) that train the same recipe again, then ``overrides`` (name, runs, data, ...)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    for key in RECIPE_KEYS:
        if key in recipe:
            setattr(args, key, recipe[key])
    args.no_augment = not recipe.get("augment", True)
    for key, value in overrides.items():
        setattr(args, key, value)
    return apply_defaults(args)


def train(args: argparse.Namespace) -> dict:
    """What ``training.train_voice`` runs: the folds with ``--folds K``, else one model
    (``training.voice.train``)."""
    if getattr(args, "folds", 0):
        if getattr(args, "extra_data", None):
            raise SystemExit("--extra-data is for a single model, not with --folds")
        return train_folds(args)
    return voice_train(args)
