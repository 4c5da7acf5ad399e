"""Export served Keras models to their serving engine file (ONNX) and record it in their cards.

    python -m training.export_engine            # every network the registry serves
    python -m training.export_engine face_vgg   # named models

Trainers export on save (``registry.write_card``); this command is for models saved before that,
or after a Keras file was replaced by hand. A model whose engine file was made from its current
Keras file is left as it is. The card's markdown gets (or has replaced) its "Serving engine"
section.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recognition.inference import registry
from training import data as datasets

SECTION = "\n## Serving engine\n"


def served_networks(directory: Path) -> list[str]:
    """Names of the single networks the registry serves: every member of every served ensemble."""
    names: list[str] = []
    for task in json.loads((directory / "registry.json").read_text()):
        card = registry.load_card(registry.served_name(task, directory), directory)
        for name in [m["name"] for m in card.get("members", [])] or [card["name"]]:
            if name not in names:
                names.append(name)
    return names


def export(name: str, directory: Path) -> bool:
    """Export ``name``'s engine file when missing or stale and rewrite its card; True if it did."""
    card = registry.load_card(name, directory)
    if not registry.refresh_engine(card, directory):
        return False
    rewrite(card, directory)
    return True


def rewrite(card: dict, directory: Path) -> None:
    """Write the card's JSON and replace (or add) the "Serving engine" section of its markdown."""
    registry.write_card(card, directory, export_engine=False)
    md = directory / f"{card['name']}.md"
    if md.exists():
        text = md.read_text()
        text = text[: text.index(SECTION)] if SECTION in text else text
        md.write_text(text.rstrip("\n") + "\n" + registry.engine_markdown(card))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="model names (default: every network the registry serves)")
    parser.add_argument("--models-dir", type=Path, default=datasets.REPO / "models")
    args = parser.parse_args(argv)
    for name in args.names or served_networks(args.models_dir):
        done = export(name, args.models_dir)
        entry = registry.load_card(name, args.models_dir)["engine"]
        print(f"{name}: {'exported' if done else 'up to date'} {entry['file']} sha256 {entry['sha256'][:16]} max |onnx - keras| {entry['max_abs_difference']:.1e}")


if __name__ == "__main__":
    main()
