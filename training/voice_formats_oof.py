"""How much do formats move a voice model on speakers it never heard, without touching actors 17-20?

Each fold model of a cross-validated recipe (``models/<recipe>_f<i>``) never heard the actors of
its fold: their clips, as the original 16 kHz FLAC and re-encoded as 48 kHz WAV, MP3 128k, M4A,
OGG and WEBM (the card's format check, ``training.voice.write_formats``), are scored through the
serving code. A codec that hurts shows up as a row below FLAC in every fold and recipe; a spread
that changes sign from model to model is borderline clips flipping, not the codec.

    python -m training.voice_formats_oof --recipes voice_cv_base voice_cv_deltas voice_cv_gru --folds 1 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from training.voice import (
    DEFAULT_DATA,
    REPO,
    evaluate_folder,
    list_clips,
    write_formats,
)
from training.voice_folds import fold_actors


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", required=True, help="cross-validated recipe names (their fold models are <name>_f<i>)")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4], help="which folds (1-4: actors 1-4 ... 13-16)")
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips of each fold (smoke tests)")
    args = parser.parse_args(argv)
    folds = fold_actors(4)
    rows = []
    for fold in args.folds:
        actors = folds[fold - 1]
        clips = list_clips(args.data, actors=actors)[: args.limit]
        with tempfile.TemporaryDirectory(prefix="voice-formats-oof-") as tmp:
            folders = {"flac16k": None, **write_formats(clips, Path(tmp))}
            for recipe in args.recipes:
                name = f"{recipe}_f{fold}"
                row = {"model": name, "actors": f"{actors[0]}-{actors[-1]}"}
                for label, folder in folders.items():
                    result = (evaluate_folder(args.data, name, directory=args.models, actors=actors, limit=args.limit) if folder is None
                              else evaluate_folder(folder, name, directory=args.models))
                    row[label] = round(result["accuracy"], 4)
                scores = [row[k] for k in folders]
                row["spread_points"] = round(100 * (max(scores) - min(scores)), 2)
                row["mp3_minus_flac_points"] = round(100 * (row["mp3_128k"] - row["flac16k"]), 2)
                rows.append(row)
                print(json.dumps(row), flush=True)
    labels = list(folders)
    print("| model | actors | " + " | ".join(labels) + " | spread (points) | MP3 - FLAC |")
    print("|---|---|" + "---|" * (len(labels) + 2))
    for r in rows:
        print(f"| {r['model']} | {r['actors']} | " + " | ".join(f"{r[k]:.1%}" for k in labels) + f" | {r['spread_points']} | {r['mp3_minus_flac_points']:+} |")
    return rows


if __name__ == "__main__":
    main()
