"""The faces of a video's sampled frames -> one timeline and one summary per tracked person: each
frame goes through the photo pipeline's steps (``faces.detect_with_landmarks``,
``faces.face_crops``, ``faces.classify_faces``), the faces of ``CLASSIFY_BATCH_FRAMES`` frames
classified in one model call, and ``IoUTracker`` links boxes across frames (tracks survive
``TRACK_MAX_GAP_SECONDS`` without a match). Part of ``video``, which says what the whole
analysis does and lays out its result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import faces
from .preprocessing import to_gray
from .tracking import FaceTracks
from .video_decoding import Sample

TRACK_MAX_GAP_SECONDS = 1.0
CLASSIFY_BATCH_FRAMES = (
    8  # sampled frames whose faces go through the face model in one call
)


@dataclass
class FaceTimeline:
    """Faces per sampled frame, tracked, with classification batched over ``batch_frames``
    frames: one model call per batch instead of per frame (benchmarks/bench_video.py: the
    per-call overhead of the Keras model is most of the cost of a frame's few faces)."""

    classes: list[str]
    model_name: str
    tracks: FaceTracks
    batch_frames: int = CLASSIFY_BATCH_FRAMES
    points: list[dict[str, Any]] = field(default_factory=list)
    pending: list[tuple[float, list[list[int]], list[int], list[np.ndarray]]] = field(
        default_factory=list
    )
    elapsed_ms: float = 0.0
    detect_ms: float = 0.0  # of elapsed_ms: detection and crops; the rest is classification

    def add(self, sample: Sample) -> None:
        """Detect and crop the faces of one sampled frame (classified with its batch)."""
        t0 = time.perf_counter()
        detections = faces.detect_in_frame(sample.bgr, self.tracks)
        if len(detections) > faces.MAX_FACES:  # the detector's surest, as for photos
            detections = sorted(detections, key=lambda d: -d[1])[: faces.MAX_FACES]
        gray = to_gray(sample.bgr)
        boxes = [box for box, _, _ in detections]
        # Tracked as sampled, so a tilted face's refined alignment follows its track.
        ids, crops = faces.tracked_face_crops(gray, detections, self.tracks)
        self.pending.append((sample.t, boxes, ids, crops))
        self.detect_ms += (time.perf_counter() - t0) * 1000
        self.elapsed_ms += (time.perf_counter() - t0) * 1000
        if len(self.pending) >= self.batch_frames:
            self.flush()

    def flush(self) -> None:
        """Classify the pending frames' faces in one call and append them to ``points``."""
        if not self.pending:
            return
        t0 = time.perf_counter()
        crops = [crop for _, _, _, frame_crops in self.pending for crop in frame_crops]
        rows = faces.classify_faces(crops, model=self.model_name) if crops else []
        at = 0
        for t, boxes, ids, frame_crops in self.pending:
            found = rows[at : at + len(frame_crops)]
            at += len(frame_crops)
            self.points.append(
                {
                    "t": t,
                    "faces": [
                        self._entry(track, box, row)
                        for track, box, row in zip(ids, boxes, found, strict=True)
                    ],
                }
            )
        self.pending.clear()
        self.elapsed_ms += (time.perf_counter() - t0) * 1000

    def _entry(self, track: int, box: list[int], row: np.ndarray) -> dict[str, Any]:
        """One face as ``faces.analyze_image`` gives it, plus its track (4 decimals keep a long
        video's JSON small)."""
        best = int(np.argmax(row))
        return {
            "track": track,
            "box": [int(v) for v in box],
            "emotion": self.classes[best],
            "confidence": round(float(row[best]), 4),
            "probabilities": {
                c: round(float(p), 4) for c, p in zip(self.classes, row, strict=True)
            },
        }


def _track_summaries(
    timeline: list[dict[str, Any]], classes: list[str]
) -> list[dict[str, Any]]:
    """One entry per track: mean probabilities over its samples, its largest box, first/last t."""
    tracks: dict[int, dict[str, Any]] = {}
    for point in timeline:
        for face in point["faces"]:
            entry = tracks.setdefault(
                face["track"],
                {
                    "track": face["track"],
                    "box": face["box"],
                    "first": point["t"],
                    "sum": np.zeros(len(classes)),
                    "samples": 0,
                },
            )
            entry["sum"] += [face["probabilities"].get(c, 0.0) for c in classes]
            entry["samples"] += 1
            entry["last"] = point["t"]
            if face["box"][2] * face["box"][3] > entry["box"][2] * entry["box"][3]:
                entry["box"] = face["box"]
    out = []
    for entry in tracks.values():
        mean = entry.pop("sum") / entry["samples"]
        best = int(np.argmax(mean))
        out.append(
            {
                "track": entry["track"],
                "box": entry["box"],
                "emotion": classes[best],
                "confidence": round(float(mean[best]), 4),
                "probabilities": {
                    c: round(float(p), 4) for c, p in zip(classes, mean, strict=True)
                },
                "first": entry["first"],
                "last": entry["last"],
                "samples": entry["samples"],
            }
        )
    return sorted(out, key=lambda e: e["track"])
