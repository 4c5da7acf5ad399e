"""Fold models averaged, or one model on every training actor? A nested cross-validation.

The served voice ensemble averages fold models, each trained on 12 of the 16 training actors and
calibrated on the 4 it never heard. A model trained on all 16 hears a third more speakers, and
its calibration would match what it was fitted on; averaged fold models are less confident on
new speakers than each alone. This measures the two against each other without touching actors
17-20: for each outer fold (4 actors of 1-16), inside the other 12 actors,

- **folds**: 3 inner fold models (8 actors each), each with the temperature fitted on the 4 inner
  actors it never heard, averaged: how ``voice_folds`` is built and served;
- **full**: one model on all 12, with the temperature fitted on the pooled inner out-of-fold
  outputs of the fold models (the only honest outputs there are for that recipe);

both scored, through the serving code, on the outer fold's 4 actors, which none of them heard.

    python -m training.voice_nested --name voice_nested_base --epochs 70 [recipe flags of train_voice]

Per outer fold a line goes to ``runs/<name>/nested.json``; every stage checkpoints each epoch
(``--resume``). Each row also reports the temperature the outer actors would have asked of the
full model, against the one it got from the fold models: their ratio is the correction
``voice_ensemble --final full --temperature-scale`` applies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from recognition.inference.labels import VOICE_EMOTIONS
from training.metrics import fit_temperature, summarise
from training.voice import (
    ARCHITECTURES,
    add_arguments,
    apply_defaults,
    list_clips,
    load_features,
    model_options,
    run_logger,
    run_stage,
    select,
)
from training.voice_folds import _Wrapped, clip_matrix, fold_actors, window_outputs


def scored(probabilities: np.ndarray, y: np.ndarray) -> dict:
    metrics = summarise(probabilities, y, VOICE_EMOTIONS)
    return {"accuracy": round(metrics["accuracy"], 4), "ece": round(metrics["ece"], 4),
            "mean_confidence": round(float(probabilities.max(1).mean()), 4), "n": metrics["n"]}


def outer_fold(args, data: dict, clips: list, outer: tuple[int, ...], inner_folds: list[tuple[int, ...]], stage: str, log) -> dict:
    kind, _ = ARCHITECTURES[args.arch]
    outer_clips = [c for c in clips if c.actor in outer]
    inner_actors = [a for fold in inner_folds for a in fold]
    members, oof = [], []
    for j, held in enumerate(inner_folds, start=1):
        train_mask = np.isin(data["actor"], [a for a in inner_actors if a not in held])
        model, _ = run_stage(args, f"{stage}_inner{j}", select(data, train_mask), None, log)
        wrapped = _Wrapped(model, kind)
        records = window_outputs(wrapped, [c for c in clips if c.actor in held])
        raw, y = clip_matrix(records)
        temperature = fit_temperature(raw, y)
        oof.extend(records)
        members.append((clip_matrix(window_outputs(wrapped, outer_clips), "mean", temperature)[0], temperature))
    y_outer = np.asarray([c.label for c in outer_clips])
    folds_p = np.mean([p for p, _ in members], axis=0)
    pooled_raw, pooled_y = clip_matrix(oof)
    t_full = fit_temperature(pooled_raw, pooled_y)
    model, state = run_stage(args, f"{stage}_full", select(data, np.isin(data["actor"], inner_actors)), None, log)
    full_records = window_outputs(_Wrapped(model, kind), outer_clips)
    full_p = clip_matrix(full_records, "mean", t_full)[0]
    # What the outer actors would have asked for (reported, never used to score): the gap between
    # it and t_full is how far a temperature from fold models misses a model on more actors.
    t_outer = fit_temperature(*clip_matrix(full_records))
    return {
        "outer": [outer[0], outer[-1]],
        "folds": scored(folds_p, y_outer),
        "full": scored(full_p, y_outer),
        "fold_members": [{**scored(p, y_outer), "temperature": round(t, 4)} for p, t in members],
        "full_temperature": round(t_full, 4),
        "full_outer_temperature": round(t_outer, 4),
        "full_train_seconds": round(state["elapsed_s"], 1),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--outer", type=int, nargs="+", default=None, help="outer folds to run (1-4; default all)")
    args = apply_defaults(parser.parse_args(argv))
    kind, _ = ARCHITECTURES[args.arch]
    if kind != "log_mel":
        raise SystemExit("the nested comparison needs a log-mel model (--arch cnn)")
    run_root = Path(args.runs) / args.name
    run_root.mkdir(parents=True, exist_ok=True)
    log = run_logger(run_root)
    clips = list_clips(args.data, actors=range(1, 17))
    folds = fold_actors(4)
    if args.limit:
        clips = [c for fold in folds for a in fold for c in [c for c in clips if c.actor == a][: args.limit]]
    log(f"{args.name}: nested CV over actors 1-16, options {model_options(args)}, epochs {args.epochs} "
        f"(command: {' '.join(sys.argv[1:] if argv is None else argv)})")
    data = load_features(clips, kind, not args.no_augment, args.seed, log)
    results_path = run_root / "nested.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    done = {tuple(r["outer"]) for r in results}
    for i in args.outer or range(1, len(folds) + 1):
        outer = folds[i - 1]
        if (outer[0], outer[-1]) in done:
            continue
        started = time.time()
        row = outer_fold(args, data, clips, outer, [f for f in folds if f != outer], f"outer{i}", log)
        row["seconds"] = round(time.time() - started, 1)
        results.append(row)
        results_path.write_text(json.dumps(results, indent=1))
        log(f"outer fold {i} (actors {outer[0]}-{outer[-1]}): folds {row['folds']} | full {row['full']}")
    for how in ("folds", "full"):
        acc = [r[how]["accuracy"] for r in results]
        ece = [r[how]["ece"] for r in results]
        log(f"{how}: accuracy {np.mean(acc):.4f} +- {np.std(acc):.4f}, ECE {np.mean(ece):.4f} over {len(results)} outer folds")
    ratios = [r["full_outer_temperature"] / r["full_temperature"] for r in results if "full_outer_temperature" in r]
    if ratios:
        log(f"full: outer-fold temperature / out-of-fold temperature {np.mean(ratios):.3f} (per fold {[round(x, 3) for x in ratios]})")
    return results


if __name__ == "__main__":
    main()
