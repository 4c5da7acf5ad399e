"""Choose the served voice model among cross-validated recipes, by their out-of-fold accuracy.

    python -m training.voice_ensemble --runs training/runs/out/voice_cv_base training/runs/out/voice_cv_attention \\
        --name voice_folds --serve

Each ``--runs`` folder holds one recipe's fold models and cards (``train_voice --folds K``, with
or without ``--cv-only``); every recipe must use the same folds. For fold ``i``, the fold-``i``
models of any set of recipes never heard the actors of fold ``i``, so averaging them gives an
honest out-of-fold score for that set. Every non-empty set is scored (mean and spread over the
folds), the best is chosen (ties: fewer recipes), its temperature is fitted on those out-of-fold
outputs, its member files are copied into ``--out``, and only then are actors 17-20 scored, once,
with the format check (48 kHz WAV, MP3, M4A, OGG, WEBM) and a clip shorter than one window.

``--final full`` serves, instead of the fold models, one model per chosen recipe retrained on all
of actors 1-16 (same recipe and epochs), each with the temperature fitted on its recipe's pooled
out-of-fold outputs, and the set's temperature fitted on the out-of-fold averages as before: an
out-of-fold fold is the average of one model per recipe, which is what is then served, so the
calibration is fitted on the shape it is used in. ``training.voice_nested`` measured the choice
(one model on every training actor against the average of fold models) inside actors 1-16.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from recognition.inference.labels import VOICE_EMOTIONS
from training import export_engine
from training.common import next_version, strip_optimizer
from training.metrics import fit_temperature, summarise
from training.voice import (
    DEFAULT_DATA,
    REPO,
    TEST_ACTORS,
    card_markdown_folds,
    evaluate_folder,
    format_check,
    list_clips,
    load_features,
    run_logger,
    run_stage,
    serve,
)
from training.voice_folds import (
    _Wrapped,
    args_from_recipe,
    clip_matrix,
    combine,
    window_outputs,
)


def load_recipe(folder: Path) -> dict:
    """A recipe's fold members (cards in ``folder``), in fold order."""
    from recognition.inference import registry

    cards = sorted((json.loads(p.read_text()) for p in folder.glob("*_f*.json")), key=lambda c: c["name"])
    cards = [c for c in cards if c.get("member_of")]
    if not cards:
        raise SystemExit(f"{folder}: no fold models (run train_voice --folds K first)")
    name = cards[0]["member_of"]
    members = [registry.get_model(c["name"], task="voice", directory=folder) for c in cards]
    folds = [tuple(c["data"]["validation"].split()[1].split("-")) for c in cards]
    return {"name": name, "folder": folder, "cards": cards, "members": members, "folds": [(int(a), int(b)) for a, b in folds]}


def out_of_fold(recipe: dict, data: Path) -> list[list[dict]]:
    """Per fold: window outputs of that fold's model on that fold's clips (serving code),
    calibrated with the member's own temperature. Kept in the recipe's folder (``oof.pkl``,
    keyed by the members' sha256 and the data folder) so a second selection run reuses them."""
    import pickle

    key = json.dumps([[c["sha256"] for c in recipe["cards"]], str(Path(data).resolve())])
    cache = recipe["folder"] / "oof.pkl"
    if cache.exists():
        stored = pickle.loads(cache.read_bytes())
        if stored.get("key") == key:
            return stored["per_fold"]
    per_fold = []
    for member, (first, last) in zip(recipe["members"], recipe["folds"], strict=True):
        clips = list_clips(data, actors=range(first, last + 1))
        wrapped = _Wrapped(member.keras_model, "log_mel")
        records = window_outputs(wrapped, clips)
        for r in records:
            r["temperature"] = member.temperature
        per_fold.append(records)
    cache.write_bytes(pickle.dumps({"key": key, "per_fold": per_fold}))
    return per_fold


def set_scores(recipes: list[dict], oof: dict[str, list[list[dict]]], names: tuple[str, ...]) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Per-fold accuracy of the average of ``names``' calibrated fold models; and the pooled
    averaged probabilities and labels (for the temperature)."""
    accs, probs, labels = [], [], []
    n_folds = len(recipes[0]["folds"])
    for i in range(n_folds):
        fold = [oof[n][i] for n in names]
        p = np.mean([[combine(r["raw"], r["voiced"], r["speech"], "mean", r["temperature"]) for r in recs] for recs in fold], axis=0)
        y = np.asarray([r["label"] for r in fold[0]])
        accs.append(float((p.argmax(1) == y).mean()))
        probs.append(p)
        labels.append(y)
    return accs, np.concatenate(probs), np.concatenate(labels)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="folders of cross-validated recipes (their --out)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--name", default="voice_folds")
    parser.add_argument("--out", type=Path, default=REPO / "models")
    parser.add_argument("--max-recipes", type=int, default=3)
    parser.add_argument("--no-formats", action="store_true")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--cv-only", action="store_true", help="print the out-of-fold table and stop: actors 17-20 untouched, nothing written")
    parser.add_argument("--final", choices=("folds", "full"), default="folds",
                        help="serve the chosen recipes' fold models (folds) or one model per recipe retrained on actors 1-16 (full)")
    parser.add_argument("--train-runs", type=Path, default=REPO / "training" / "checkpoints",
                        help="--final full: checkpoint folder, one small checkpoint per model overwritten each epoch; "
                             "the default is committed, so a run cut off continues on another clone (it always resumes)")
    parser.add_argument("--epochs", type=int, default=None, help="--final full: epochs (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, default=32, help="--final full: batch size")
    parser.add_argument("--train-only", action="store_true",
                        help="train the full model (--final full) of every recipe in --runs into its checkpoint and stop: nothing "
                             "chosen, nothing written to --out, actors 17-20 untouched; a later --final full run resumes from them")
    parser.add_argument("--temperature-scale", type=float, default=1.0,
                        help="--final full: each member's temperature = its recipe's out-of-fold temperature x this (the ratio "
                             "training.voice_nested measures inside actors 1-16: a model on more actors is more accurate than the "
                             "fold models its temperature came from)")
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    from recognition.inference import registry
    from recognition.inference.registry import sha256_file, write_card

    started = time.time()
    recipes = [load_recipe(folder) for folder in args.runs]
    if args.train_only:
        _, seconds = train_full(args, recipes, None, args.out)
        trained = [full_name(args.name, r) for r in recipes]
        print(json.dumps({"trained": trained, "train_seconds": round(seconds, 1)}))
        return {"trained": trained}
    if len({tuple(r["folds"]) for r in recipes}) != 1:
        raise SystemExit("the recipes were cross-validated on different folds")
    by_name = {r["name"]: r for r in recipes}
    oof = {}
    for r in recipes:
        oof[r["name"]] = out_of_fold(r, args.data)
        print(f"{r['name']}: out-of-fold {np.mean(set_scores(recipes, oof, (r['name'],))[0]):.4f}", file=sys.stderr)
    rows = []
    for k in range(1, min(args.max_recipes, len(recipes)) + 1):
        for names in itertools.combinations(by_name, k):
            accs, _, _ = set_scores(recipes, oof, names)
            rows.append({"recipes": list(names), "mean": round(float(np.mean(accs)), 4), "std": round(float(np.std(accs)), 4), "folds": [round(a, 4) for a in accs]})
    rows.sort(key=lambda r: (-r["mean"], len(r["recipes"])))
    for row in rows:
        print(f"{row['mean']:.4f} +- {row['std']:.4f}  {' + '.join(row['recipes'])}  {row['folds']}", file=sys.stderr)
    if args.cv_only:
        return {"candidates": rows}
    best = rows[0]
    accs, pooled, labels = set_scores(recipes, oof, tuple(best["recipes"]))
    temperature = fit_temperature(pooled, labels)
    oof_metrics = summarise(registry.apply_temperature(pooled, temperature), labels, VOICE_EMOTIONS)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    members, cv_folds = [], []
    full_seconds = None
    if args.final == "full":
        members, full_seconds = train_full(args, [by_name[name] for name in best["recipes"]], oof, out)
    for name in best["recipes"] if args.final == "folds" else ():
        recipe = by_name[name]
        for card in recipe["cards"]:
            for suffix in (".keras", ".json", ".onnx"):  # the model, its card, its serving engine file
                source, target = recipe["folder"] / f"{card['name']}{suffix}", out / f"{card['name']}{suffix}"
                if suffix == ".onnx" and not source.exists():
                    continue  # a fold model saved before engine files: exported below
                if not (target.exists() and source.resolve() == target.resolve()):  # a recipe folder may link to --out
                    shutil.copyfile(source, target)
            if not (out / f"{card['name']}.onnx").exists():
                export_engine.export(card["name"], out)
            if sha256_file(out / card["file"]) != card["sha256"]:
                raise SystemExit(f"{card['name']}: copied file does not match its card")
            members.append({"name": card["name"], "sha256": card["sha256"], "recipe": name, "validation": card["data"]["validation"]})
    at = 0
    for i, (first, last) in enumerate(recipes[0]["folds"]):
        n = len(oof[best["recipes"][0]][i])
        fold_metrics = summarise(registry.apply_temperature(pooled[at : at + n], temperature), labels[at : at + n], VOICE_EMOTIONS)
        at += n
        cv_folds.append({"fold": i + 1, "actors": list(range(first, last + 1)), "n": n,
                         "accuracy": round(accs[i], 4), "temperature": round(float(temperature), 4), "ece": fold_metrics["ece"]})
    recipe_cards = {}
    for name in best["recipes"]:
        recipe_cards[name] = by_name[name]["cards"][0].get("recipe")
        cv_path = REPO / "training" / "runs" / name / "cv.json"  # the trainer's default --runs
        if recipe_cards[name] is None and cv_path.exists():
            recipe_cards[name] = json.loads(cv_path.read_text()).get("options")
    train_seconds = 0.0
    for name in best["recipes"]:
        for i, c in enumerate(by_name[name]["cards"], start=1):
            seconds = (c.get("training") or {}).get("train_seconds")
            state = REPO / "training" / "runs" / name / f"fold{i}" / "state.json"
            if seconds is None and state.exists():
                seconds = json.loads(state.read_text())["elapsed_s"]
            train_seconds += float(seconds or 0.0)
    if full_seconds is not None:
        train_seconds += full_seconds
    fold_text = ", ".join(f"{f['actors'][0]}-{f['actors'][-1]}" for f in cv_folds)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    first_member = by_name[best["recipes"][0]]["cards"][0]
    card = {
        "name": args.name, "task": "voice", "kind": "ensemble",
        "version": next_version(out / f"{args.name}.json", today.replace("-", ".")),
        "architecture": f"ensemble of {len(members)} {'fold models' if args.final == 'folds' else 'models, one per recipe, on actors 1-16'} ({', '.join(best['recipes'])})",
        "members": members, "classes": list(VOICE_EMOTIONS), "input": first_member["input"],
        "parameters": int(sum(json.loads((out / f"{m['name']}.json").read_text())["parameters"] for m in members)),
        "temperature": round(float(temperature), 4),
        "data": {
            "dataset": "RAVDESS speech, 16 kHz mono FLAC (CC BY-NC-SA 4.0)",
            "split": "by actor: train 1-16 (cross-validated in actor folds), test 17-20 (never a random split of clips)",
            "inner_split": f"{len(cv_folds)}-fold cross-validation over actors 1-16 ({fold_text}); "
                           "recipes, their combination, each member's temperature and the ensemble's chosen on out-of-fold actors; test actors 17-20 scored once",
            "final_training": "the fold models of the chosen recipes (each on 12 actors), averaged" if args.final == "folds" else
                              "one model per chosen recipe retrained on all of actors 1-16 (the recipe's epochs), each calibrated with the "
                              "temperature of its recipe's out-of-fold outputs"
                              + (f" x {args.temperature_scale} (the ratio training.voice_nested measured inside actors 1-16)" if args.temperature_scale != 1.0 else "")
                              + ", averaged; the fold models only chose and calibrated",
            "augmentation": "speed 0.9/1.1, pitch -2/+2 semitones, white/pink noise 10-30 dB SNR, random time shift, SpecAugment (per recipe: see recipes)",
        },
        "metrics": {"cross_validation": {
            "folds": cv_folds, "mean": best["mean"], "std": best["std"], "min": round(min(accs), 4), "max": round(max(accs), 4),
            "out_of_fold_ece": oof_metrics["ece"], "window_combiners": {}, "candidates": rows,
        }},
        "training": {
            "command": f"python -m training.voice_ensemble {' '.join(argv)}",
            "recipe": {name: recipe_cards[name] for name in best["recipes"]},
            "recipe_commands": {name: f"python -m training.train_voice --folds {len(cv_folds)} --name {name} ... (see training/runs/{name}/cv.json)" for name in best["recipes"]},
            "backend": "tensorflow", "device": "CPU (x86_64, 2 shared cores)",
            "epochs": first_member.get("training", {}).get("epochs", "see recipes"), "train_seconds": round(train_seconds, 1), "total_seconds": None,
        },
        "date": today,
    }
    write_card(card, out)
    registry.clear_cache()
    test = evaluate_folder(args.data, args.name, directory=out, actors=TEST_ACTORS)
    card["metrics"]["test_uncalibrated_ece"] = test.pop("uncalibrated_ece")
    card["metrics"]["test"] = test
    print(f"{args.name}: actors 17-20 accuracy {test['accuracy']:.4f} (n={test['n']}), ECE {test['ece']:.4f}", file=sys.stderr)
    if not args.no_formats:
        card["metrics"]["formats"] = format_check(args.data, args.name, directory=out, log=lambda m: print(m, file=sys.stderr))
    card["metrics"]["short_clip"] = short_clip_check(args.data, args.name, out)
    card["training"]["total_seconds"] = round(time.time() - started, 1)
    write_card(card, out, markdown=card_markdown_folds(card))
    if args.serve:
        serve(args.name, out)
    print(json.dumps({"chosen": best, "test_accuracy": test["accuracy"], "test_ece": test["ece"], "temperature": card["temperature"]}))
    return card


def full_name(ensemble: str, recipe: dict) -> str:
    """The full model of a recipe in an ensemble: voice_full + voice_cv_gru -> voice_full_gru."""
    return f"{ensemble}_{recipe['name'].removeprefix('voice_cv_')}"


def train_full(args, recipes: list[dict], oof: dict[str, list[list[dict]]] | None, out: Path) -> tuple[list[dict], float]:
    """One model per recipe on all of actors 1-16, written with its card into ``out``; the
    member's temperature is fitted on the recipe's pooled out-of-fold window outputs (fold models,
    uncalibrated). Returns the ensemble's member entries and the training seconds. With ``oof``
    None (``--train-only``) each model is trained into its checkpoint and nothing is written."""
    from recognition.inference.registry import sha256_file, write_card

    clips = list_clips(args.data, actors=range(1, 17))
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    members, seconds, features = [], 0.0, {}
    for recipe in recipes:
        options = recipe["cards"][0].get("recipe")
        if not options:
            raise SystemExit(f"{recipe['name']}: its cards record no recipe, so it cannot be retrained")
        name = full_name(args.name, recipe)
        targs = args_from_recipe(options, epochs=args.epochs or options["epochs"], batch_size=args.batch_size, name=name,
                                 runs=args.train_runs, resume=True, data=args.data)
        run_root = Path(targs.runs) / name
        run_root.mkdir(parents=True, exist_ok=True)
        log = run_logger(run_root)
        key = (targs.no_augment, targs.seed)
        if key not in features:
            features[key] = load_features(clips, "log_mel", not targs.no_augment, targs.seed, log)
        data = features[key]
        model, state = run_stage(targs, "full", data, None, log)  # every clip of actors 1-16
        seconds += state["elapsed_s"]
        if oof is None:  # --train-only: the checkpoint is the product
            log(f"{name}: {targs.epochs} epochs on actors 1-16 in {state['elapsed_s']:.0f} s (checkpoint {run_root})")
            continue
        raw, y = clip_matrix([r for fold in oof[recipe["name"]] for r in fold])
        temperature = fit_temperature(raw, y) * args.temperature_scale
        path = out / f"{name}.keras"
        strip_optimizer(model).save(path)
        first = recipe["cards"][0]
        card = {
            "name": name, "task": "voice", "version": next_version(out / f"{name}.json", today.replace("-", ".")),
            "architecture": first["architecture"], "file": path.name, "classes": list(VOICE_EMOTIONS), "input": first["input"],
            "parameters": int(model.count_params()), "temperature": round(float(temperature), 4),
            "data": {"train": "RAVDESS actors 1-16", "validation": "none: temperature fitted on the recipe's out-of-fold outputs (its fold models)"
                     + (f", x {args.temperature_scale} (training.voice_nested)" if args.temperature_scale != 1.0 else "")},
            "metrics": {}, "date": today, "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
            "member_of": args.name, "recipe": {**options, "epochs": targs.epochs, "folds": None},
            "training": {"epochs": targs.epochs, "train_seconds": round(state["elapsed_s"], 1)},
        }
        write_card(card, out)
        log(f"{name}: {targs.epochs} epochs on actors 1-16 in {state['elapsed_s']:.0f} s, temperature {temperature:.3f} (out of fold)")
        members.append({"name": name, "sha256": card["sha256"], "recipe": recipe["name"], "validation": card["data"]["validation"]})
    return members, seconds


def short_clip_check(data: Path, name: str, directory: Path) -> dict:
    """Actors 17-20 cut to their first 1.0 s of speech (shorter than one 3 s window): accuracy."""
    from recognition.inference import audio, registry
    from recognition.inference.voice import analyse_signal
    from training.voice import load_signal

    model = registry.get_model(name, task="voice", directory=directory)
    correct, n, answered = 0, 0, 0
    for clip in list_clips(data, actors=TEST_ACTORS):
        signal = load_signal(clip.path)
        start, _ = audio.trim_bounds(signal)
        result = analyse_signal(signal[start : start + audio.SAMPLE_RATE], model)
        n += 1
        answered += result["emotion"] is not None
        correct += result["emotion"] == model.classes[clip.label]
    return {"seconds": 1.0, "n": n, "answered": round(answered / n, 4), "accuracy": round(correct / n, 4)}


if __name__ == "__main__":
    main()
