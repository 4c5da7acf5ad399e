"""The face recipe, one change at a time, scored on the validation split only.

    python -m training.ablate_face [--width 0.125] [--train-fraction 0.5] [--epochs 8] [--rows base,no_aug,...] [--json out.json]

Each row trains the VGG-style network from scratch with the served recipe (``BASE``: AdamW
1e-3, cosine schedule, label smoothing 0.1, flip/rotation/zoom/shift/brightness augmentation,
random erasing 0.5, class weights ** 0.3) changed in one way, on a stratified share
of FER2013 Training (``--train-fraction``) for a fixed number of epochs, and reports its
accuracy on the whole validation split (10% of Training, the split every face model is chosen
on). PublicTest is never read (``--validation-only``). Rows are small and short on purpose (a
CPU budget of minutes each: by default width 0.125, half the training split, 8 epochs), so they
rank recipe changes at small scale; the served networks (width 0.25) train for 60-90 epochs.
Checkpoints go to ``--runs`` (each row resumable with ``--resume``).
Prints one markdown table, one row per change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from training import data as datasets

BASE = ["--lr", "1e-3", "--erase", "0.5", "--label-smoothing", "0.1"]

# name -> (what changes, the arguments after BASE; later arguments win). "wider" changes the
# width instead, which every row gets from --width (``WIDTH_FACTOR``).
ROWS: dict[str, tuple[str, list[str]]] = {
    "base": ("served recipe (AdamW, cosine, smoothing 0.1, full augmentation, erasing 0.5)", []),
    "no_aug": ("no augmentation at all (no flip, no geometry, no erasing)", ["--augment", "none", "--erase", "0"]),
    "flip_only": ("mirror images only (no rotation/zoom/shift/brightness, no erasing)", ["--augment", "flip", "--erase", "0"]),
    "no_erase": ("no random erasing", ["--erase", "0"]),
    "rotate15": ("rotation up to 15 degrees instead of 10", ["--rotate", "15"]),
    "no_smoothing": ("no label smoothing", ["--label-smoothing", "0"]),
    "sgd": ("SGD, Nesterov momentum 0.9, lr 0.01, instead of AdamW 1e-3", ["--optimizer", "sgd", "--lr", "0.01"]),
    "plateau": ("halve the learning rate on a 3-epoch validation-loss plateau instead of cosine", ["--schedule", "plateau"]),
    "wider": ("twice the width (4x the convolution work)", []),
    "mixup": ("mixup, alpha 0.2", ["--mixup", "0.2"]),
}


WIDTH_FACTOR = {"wider": 2}


def row_args(name: str, args: argparse.Namespace) -> list[str]:
    width = args.width * WIDTH_FACTOR.get(name, 1)
    return [
        *BASE, "--width", f"{width:g}", *ROWS[name][1],
        "--name", f"ablate_{name}", "--epochs", str(args.epochs), "--train-fraction", str(args.train_fraction),
        "--data", str(args.data), "--runs", str(args.runs), "--out", str(args.runs / "out"),
        "--threads", str(args.threads), "--validation-only", *(["--resume"] if args.resume else []),
        *(["--limit", str(args.limit)] if args.limit else []),
    ]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=datasets.DEFAULT_FER / "train")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from: {', '.join(ROWS)}")
    parser.add_argument("--train-fraction", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--width", type=float, default=0.125, help="every row's width (the served networks use 0.25; 'wider' doubles it)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=Path, default=datasets.REPO / "training" / "runs" / "ablate")
    parser.add_argument("--resume", action="store_true", help="continue rows from their checkpoints (a finished row is not retrained)")
    parser.add_argument("--limit", type=int, default=None, help="first N images only (smoke tests)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    from training.face import add_arguments, build_vgg, train

    results = []
    for name in names:
        sub = argparse.ArgumentParser()
        add_arguments(sub, name=f"ablate_{name}", width=args.width, epochs=args.epochs, lr=1e-3)
        argv = row_args(name, args)
        row = sub.parse_args(argv)
        row.argv = argv
        started = time.time()
        out = train(row, build_vgg, "vgg-scratch")
        results.append({"row": name, "change": ROWS[name][0], **out, "wall_s": round(time.time() - started, 1)})
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    base = next((r["best_val_accuracy"] for r in results if r["row"] == "base"), None)
    n_val = results[0]["val_size"] if results else 0
    print(f"\nFER2013 validation split ({n_val} faces, never trained on); each row: width {args.width:g}, {args.train_fraction:.0%} of the training split "
          f"({results[0]['train_size'] if results else 0} faces), {args.epochs} epochs from scratch, one change from the served recipe\n")
    print("| row | change | best validation accuracy | at epoch | last epoch | vs served recipe | train s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        delta = f"{(r['best_val_accuracy'] - base) * 100:+.1f} pt" if base is not None and r["row"] != "base" else ""
        print(f"| {r['row']} | {r['change']} | {r['best_val_accuracy']:.4f} | {r['best_epoch']} | {r['final_val_accuracy']:.4f} | {delta} | {r['train_seconds']:.0f} |")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
