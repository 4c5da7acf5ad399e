"""What the live page needs to analyse faces on the person's own device ("On this device"): the
manifest of the served files (the YuNet detector and the live face model's ONNX networks, each
with its name, version, size and the sha256 its card records) and the files themselves.

The page downloads each file from a URL keyed by its sha256, checks the bytes against the
manifest's sha256 before using them (static/js/ondevice/pipeline.js refuses any other file), and
the browser caches them for good (the URL changes when the file does). Only files named by the
served cards can be fetched; a file on disk whose bytes differ from its card is not offered.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from recognition.inference import faces, registry

DETECTOR_CARD = "LICENSE-yunet.md"  # the detector's card: where its sha256 is recorded
FILE_URL = "/live/models/{sha256}/{file}"


@functools.lru_cache(maxsize=32)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return registry.sha256_file(Path(path))


def _checked(directory: Path, file: str, sha256: str) -> dict[str, Any]:
    """The file's entry; ModelUnavailable unless it exists with the card's sha256."""
    path = directory / file
    try:
        stat = path.stat()
    except OSError as exc:
        raise registry.ModelUnavailable(f"{file}: missing ({exc})") from exc
    if _file_sha256(str(path), stat.st_mtime_ns, stat.st_size) != sha256:
        raise registry.ModelUnavailable(f"{file}: its bytes are not the sha256 its card records")
    return {"file": file, "url": FILE_URL.format(sha256=sha256, file=file), "sha256": sha256, "size": stat.st_size}


def detector_sha256(directory: Path) -> str:
    """The YuNet file's sha256 as its card (models/LICENSE-yunet.md) records it."""
    try:
        found = re.search(r"sha256: ([0-9a-f]{64})", (directory / DETECTOR_CARD).read_text())
    except OSError as exc:
        raise registry.ModelUnavailable(f"{DETECTOR_CARD}: {exc}") from exc
    if not found:
        raise registry.ModelUnavailable(f"{DETECTOR_CARD} records no sha256")
    return found.group(1)


def manifest() -> dict[str, Any]:
    """The served on-device files and how to use them: ``detector``, ``model`` (the live face
    model: name, version, classes, test-time views, temperature) and its ``members`` (each ONNX
    network with its own temperature), ``download_bytes``. ModelUnavailable when a file is
    missing, altered or has no ONNX export."""
    directory = registry.models_dir()
    name = faces.live_model_name() or registry.served_name("face")
    card = registry.load_card(name)
    ensemble = card.get("kind") == "ensemble"
    names = [m["name"] for m in card["members"]] if ensemble else [name]
    members = []
    for member_name in names:
        member = registry.load_card(member_name)
        engine = member.get("engine") or {}
        if engine.get("format") != "onnx" or not engine.get("file") or not engine.get("sha256"):
            raise registry.ModelUnavailable(f"{member_name} has no ONNX export for the device")
        members.append({"name": member_name, "version": str(member["version"]),
                        "temperature": float(member.get("temperature", 1.0)),
                        **_checked(directory, engine["file"], engine["sha256"])})  # fmt: skip
    detector = {"name": faces.DETECTOR_FILE.removesuffix(".onnx"),
                **_checked(directory, faces.DETECTOR_FILE, detector_sha256(directory))}  # fmt: skip
    model = {
        "name": card["name"],
        "version": str(card["version"]),
        "classes": list(card["classes"]),
        # a single network is served as it is: no test-time views, its temperature per member
        "tta": list(card.get("tta", [])) if ensemble else [],
        "temperature": float(card.get("temperature", 1.0)) if ensemble else 1.0,
    }
    return {
        "detector": detector,
        "model": model,
        "members": members,
        "download_bytes": detector["size"] + sum(m["size"] for m in members),
    }


def served_file(sha256: str, file: str) -> Path | None:
    """The path of a file the manifest offers under this sha256, else None."""
    try:
        offered = manifest()
    except registry.ModelUnavailable:
        return None
    for entry in (offered["detector"], *offered["members"]):
        if entry["sha256"] == sha256 and entry["file"] == file:
            return registry.models_dir() / file
    return None
