"""Choose and write the served face ensemble, on the validation split only.

    python -m training.face_ensemble --candidates face_vgg face_cnn --name face_ensemble [--serve]

Every non-empty subset of the candidate models, with each set of test-time views (none; the
mirror image; the mirror image and 2-pixel shifts of both: ``registry.TTA_SETS``), is scored on
the validation split that every face model was trained without (10% of FER2013
Training, stratified, seed 1337: ``training.data.stratified_split``). The best one (ties: fewer
members, then fewer views, as they are cheaper) is written as an ensemble card (``"kind": "ensemble"``,
members with sha256, ``tta``), its temperature fitted on the validation split; PublicTest is then
scored once through ``registry.get_model`` and ``training.evaluate`` (the serving code).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from recognition.inference.labels import FACE_EMOTIONS
from recognition.inference.preprocessing import faces_to_input
from training import data as datasets
from training.common import next_version
from training.face import limits_markdown, recall_rows
from training.metrics import fit_temperature, markdown_confusion, summarise

# The sets of test-time views compared on validation, cheapest first (registry.tta_views).
TTA_SETS = ((), ("hflip",), ("hflip", "shift2"))


def validation_split(train: Path, fraction: float = 0.1, seed: int = 1337) -> tuple[np.ndarray, np.ndarray]:
    """The face trainers' validation faces (uint8) and labels: same split, same seed."""
    x, y = datasets.load_face_arrays(train)
    _, val_idx = datasets.stratified_split(y, fraction, seed)
    return x[val_idx], y[val_idx]


def candidate_table(
    names: list[str], x: np.ndarray, y: np.ndarray, directory: Path | None, max_members: int, max_views: int = 10, max_passes: int | None = None
) -> list[dict]:
    """Validation accuracy of every subset (up to ``max_members``) with each set of test-time
    views, averaged exactly as ``registry.EnsembleModel`` averages them. ``max_passes`` leaves out
    the rows whose network passes per face (members x views) exceed it."""
    from recognition.inference import registry

    inputs = faces_to_input(x)
    widest = max(TTA_SETS, key=len)
    n_views = len(registry.tta_views(inputs[:1], widest))
    outputs = {}
    for name in names:
        model = registry.get_model(name, directory=directory)
        if model.classes != list(FACE_EMOTIONS):
            raise SystemExit(f"{name}: classes {model.classes} are not {list(FACE_EMOTIONS)}")
        # (views, N, classes): the views of the widest set, in tta_views' order
        outputs[name] = np.concatenate(
            [model.predict(registry.tta_views(inputs[i : i + 256], widest)).reshape(n_views, -1, len(FACE_EMOTIONS)) for i in range(0, len(inputs), 256)],
            axis=1,
        )
    rows = []
    for k in range(1, min(max_members, len(names)) + 1):
        for subset in itertools.combinations(names, k):
            for tta in TTA_SETS:
                views = len(registry.tta_views(inputs[:1], tta))
                if views > max_views or (max_passes is not None and views * len(subset) > max_passes):
                    continue  # (the first views of the widest set are this set's)
                p = np.mean([outputs[n][:views] for n in subset], axis=(0, 1))
                rows.append({"members": list(subset), "tta": list(tta),
                             "validation_accuracy": round(float((p.argmax(1) == y).mean()), 4), "_p": p})
    return rows


def choose(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: (r["validation_accuracy"], -len(r["members"]), -len(r["tta"])))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", nargs="+", required=True, help="face model names in --models-dir")
    parser.add_argument("--name", default="face_ensemble")
    parser.add_argument("--models-dir", type=Path, default=datasets.REPO / "models")
    parser.add_argument("--train", type=Path, default=datasets.DEFAULT_FER / "train", help="FER2013 train folder (the validation split is carved from it)")
    parser.add_argument("--test", type=Path, default=datasets.DEFAULT_FER / "test", help="PublicTest folder, scored once for the chosen ensemble")
    parser.add_argument("--max-members", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help="name the ensemble as the served face model")
    parser.add_argument("--max-views", type=int, default=10, help="only sets of test-time views up to this many views per face (live: fewer)")
    parser.add_argument("--max-passes", type=int, default=None, help="only ensembles of up to this many network passes per face (members x views; live: 2)")
    parser.add_argument("--serve-as", default="face", choices=("face", "face_live"), help="the registry key --serve sets (face_live: the live webcam's model)")
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    from recognition.inference import registry
    from recognition.inference.registry import apply_temperature, write_card
    from training.evaluate import evaluate_face

    started = time.time()
    directory = args.models_dir
    x_val, y_val = validation_split(args.train)
    rows = candidate_table(args.candidates, x_val, y_val, directory, args.max_members, args.max_views, args.max_passes)
    best = choose(rows)
    for row in sorted(rows, key=lambda r: -r["validation_accuracy"]):
        print(f"{row['validation_accuracy']:.4f}  {'+'.join(row['members'])} {'+'.join(row['tta']) or 'no tta'}", file=sys.stderr)
    temperature = fit_temperature(best["_p"], y_val)
    val_metrics = summarise(apply_temperature(best["_p"], temperature), y_val, FACE_EMOTIONS)
    members = [registry.get_model(n, directory=directory) for n in best["members"]]
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    card = {
        "name": args.name,
        "task": "face",
        "kind": "ensemble",
        "version": next_version(directory / f"{args.name}.json", today.replace("-", ".")),
        "architecture": " + ".join(m.card.get("architecture", m.name) for m in members) + (f" (test-time views: {', '.join(best['tta'])})" if best["tta"] else ""),
        "members": [{"name": m.name, "version": m.version, "sha256": m.card["sha256"], "test_accuracy": m.card.get("metrics", {}).get("test", {}).get("accuracy")} for m in members],
        "tta": list(best["tta"]),
        "classes": list(FACE_EMOTIONS),
        "input": members[0].card["input"],
        "parameters": int(sum(m.card.get("parameters", 0) for m in members)),
        "temperature": round(float(temperature), 4),
        "data": {
            "selection": f"every subset of {args.candidates} (up to {args.max_members}), with each set of test-time views {[list(t) for t in TTA_SETS]}, scored on the validation split; the best chosen",
            "validation": f"{len(y_val)} images from FER2013 Training (10% stratified, seed 1337), never trained on by any member; chooses the members and fits the temperature",
            "test": "FER2013 PublicTest, scored once for the chosen ensemble",
        },
        "selection": [{k: v for k, v in r.items() if k != "_p"} for r in sorted(rows, key=lambda r: -r["validation_accuracy"])],
        "metrics": {"validation_accuracy": val_metrics["accuracy"], "validation_ece": val_metrics["ece"]},
        "training": {"command": f"python -m training.face_ensemble {' '.join(argv)}", "device": "members: see their cards"},
        "date": today,
        **distillation_entry(members, directory),
    }
    write_card(card, directory)
    registry.clear_cache()
    test = evaluate_face(args.test, args.name, directory=directory)
    card["metrics"]["test"] = {k: test[k] for k in ("accuracy", "n", "per_class_recall", "confusion", "ece")}
    card["metrics"]["seconds"] = round(time.time() - started, 1)
    write_card(card, directory, markdown=card_markdown(card))
    if args.serve:
        path = directory / "registry.json"
        served = json.loads(path.read_text()) if path.exists() else {}
        served[args.serve_as] = args.name
        path.write_text(json.dumps(served, indent=2) + "\n")
    print(json.dumps({"chosen": card["members"], "tta": card["tta"], "validation_accuracy": best["validation_accuracy"],
                      "test_accuracy": test["accuracy"], "test_ece": test["ece"], "temperature": card["temperature"]}))
    return card


def distillation_entry(members: list, directory: Path | None) -> dict:
    """``{"distillation": ...}`` when a member was distilled (``train_face_vgg --teacher``): its
    teacher (name, version, views, PublicTest accuracy) and temperature, so the card states both
    accuracies; ``{}`` otherwise."""
    from recognition.inference import registry

    taught = [m for m in members if m.card.get("distillation")]
    if not taught:
        return {}
    info = dict(taught[0].card["distillation"])
    teacher = registry.load_card(info["teacher"], directory)
    info |= {"student": taught[0].name, "teacher_version": teacher.get("version"), "teacher_tta": teacher.get("tta", []),
             "teacher_members": [m["name"] for m in teacher.get("members", [])],
             "teacher_test_accuracy": teacher.get("metrics", {}).get("test", {}).get("accuracy")}
    return {"distillation": info}


def distillation_markdown(card: dict) -> str:
    d = card.get("distillation")
    if not d:
        return ""
    teacher_views = " + ".join(d["teacher_members"]) + (f" over {view_text(d['teacher_tta'])}" if d["teacher_tta"] else "")
    return f"""
## Distillation
`{d['student']}` learnt from the served ensemble `{d['teacher']}` {d['teacher_version']} ({teacher_views}): the
teacher's calibrated probabilities on every training face, softened at temperature T={d['temperature']},
weighted {d['weight']} against the labels ({1 - d['weight']:.1f}); see its card for the command.

| | views per face | validation | PublicTest |
|---|---|---|---|
| teacher `{d['teacher']}` | {len(d['teacher_members']) * (2 if 'hflip' in d['teacher_tta'] else 1)} | {d['teacher_validation_accuracy']:.4f} | {d['teacher_test_accuracy']:.4f} |
| this model | {len(card['members']) * (2 if 'hflip' in card['tta'] else 1)} | {card['metrics']['validation_accuracy']:.4f} | {card['metrics']['test']['accuracy']:.4f} |
"""


def view_text(tta: list[str]) -> str:
    if not tta:
        return "the face alone"
    if "shift2" in tta:
        return "the face and its mirror image, each also moved 2 px left, right, up and down (10 views)" if "hflip" in tta else "the face moved 2 px four ways (5 views)"
    return "the face and its mirror image"


def card_markdown(card: dict) -> str:
    test = card["metrics"]["test"]
    recall = recall_rows(test)
    members = "\n".join(
        f"| `{m['name']}` | {m['version']} | {m['test_accuracy']:.4f} | `{m['sha256']}` |" for m in card["members"]
    )
    selection = "\n".join(
        f"| {' + '.join(r['members'])} | {view_text(r['tta'])} | {r['validation_accuracy']:.4f} |" for r in card["selection"]
    )
    return f"""# Model card: {card['name']} (ensemble), version {card['version']}

Facial-expression classifier: one 48x48 grey face crop -> probabilities over {', '.join(card['classes'])}:
the mean of the members' calibrated probabilities{' over ' + view_text(card['tta']) if card['tta'] else ''},
then temperature T={card['temperature']} (fitted on validation).

- **Test accuracy (FER2013 PublicTest, scored once)**: {test['accuracy']:.4f} on {test['n']} images
- **Expected calibration error** (15 bins): {test['ece']:.4f}
- **Validation accuracy** (chooses the members): {card['metrics']['validation_accuracy']:.4f}
- **Data**: {card['data']['validation']}. Test: {card['data']['test']}.
- **Parameters**: {card['parameters']:,} in all
- **Command**: `{card['training']['command']}`
- **Date**: {card['date']}

{distillation_markdown(card)}
## Members (each has its own card: data, training, sha256)
| model | version | its own PublicTest accuracy | sha256 |
|---|---|---|---|
{members}

## Selection on validation (every subset, each set of test-time views)
| members | test-time views | validation accuracy |
|---|---|---|
{selection}

## Per-class recall (PublicTest)
| class | recall |
|---|---|
{recall}

## Confusion matrix (PublicTest, rows true, columns predicted)
{markdown_confusion(test['confusion'], card['classes'])}

{limits_markdown(card['name'])}"""


if __name__ == "__main__":
    main()
