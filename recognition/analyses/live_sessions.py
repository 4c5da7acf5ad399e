"""What a live session saw, as the ``result`` of a live analysis: ``SessionRecorder`` aggregates
a session's face replies (counts, per-label tallies, a bounded one-second timeline) and voice
replies into the summary that ``services.save_live_session`` stores. The live socket
(``recognition.live``) feeds it one reply at a time; a session analysed on the person's own device
is replayed into it from its timeline (``services.save_device_session``), so both are saved alike.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.utils import timezone

from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS

# Timeline points are one-second buckets; past this many the resolution halves (two merge).
MAX_TIMELINE_POINTS = 600
MAX_VOICE_POINTS = 600


def _largest(faces: list[dict]) -> dict | None:
    """The largest face that is not too small to judge (None when there is none)."""
    judged = [f for f in faces if not f.get("too_small")]
    return max(judged, key=lambda f: f["box"][2] * f["box"][3]) if judged else None


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


@dataclass
class SessionRecorder:
    """What one live session saw: frame counts, per-label tallies and a one-second timeline.

    Memory stays bounded for any session length: the timeline halves its resolution when full."""

    started_at: datetime = field(default_factory=timezone.now)
    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    frames_with_faces: int = 0
    dropped: int = 0
    faces_max: int = 0
    labels: Counter = field(default_factory=Counter)
    prob_sums: dict[str, float] = field(default_factory=dict)
    face_count: int = 0
    bucket_seconds: float = 1.0
    timeline: list[dict] = field(default_factory=list)
    voice_chunks: int = 0
    voice_speech: int = 0
    voice_labels: Counter = field(default_factory=Counter)
    voice_timeline: list[dict] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    saved_id: int | None = None

    @property
    def empty(self) -> bool:
        return self.frames == 0 and self.voice_chunks == 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def add_frame(self, reply: dict[str, Any], at: float | None = None) -> None:
        """One frame's reply; ``at``: its time in seconds from the start (default: now)."""
        faces = reply.get("faces") or []
        self.frames += 1
        if reply.get("model"):
            self.models["face"] = reply["model"]
        if len(self.server_ms) < 5000 and reply.get("server_ms") is not None:
            self.server_ms.append(float(reply["server_ms"]))
        self.faces_max = max(self.faces_max, len(faces))
        if faces:
            self.frames_with_faces += 1
        for face in faces:
            self.face_count += 1
            if face.get("too_small"):
                continue  # counted as a face, but its label is not a reading
            self.labels[face["emotion"]] += 1
            for label, p in face["probabilities"].items():
                self.prob_sums[label] = self.prob_sums.get(label, 0.0) + float(p)
        self._add_point(_largest(faces), len(faces), self.elapsed() if at is None else at)

    def _add_point(self, face: dict | None, count: int, elapsed: float) -> None:
        t = math.floor(elapsed / self.bucket_seconds) * self.bucket_seconds
        if not self.timeline or self.timeline[-1]["t"] != round(t, 3):
            self.timeline.append({"t": round(t, 3), "n": 0, "faces": 0, "sums": {}})
        point = self.timeline[-1]
        point["faces"] = max(point["faces"], count)
        if face is not None:
            point["n"] += 1
            for label, p in face["probabilities"].items():
                point["sums"][label] = point["sums"].get(label, 0.0) + float(p)
        if len(self.timeline) > MAX_TIMELINE_POINTS:
            self._halve_timeline()

    def _halve_timeline(self) -> None:
        self.bucket_seconds *= 2
        merged: list[dict] = []
        for point in self.timeline:
            t = math.floor(point["t"] / self.bucket_seconds) * self.bucket_seconds
            if merged and merged[-1]["t"] == t:
                last = merged[-1]
                last["n"] += point["n"]
                last["faces"] = max(last["faces"], point["faces"])
                for label, s in point["sums"].items():
                    last["sums"][label] = last["sums"].get(label, 0.0) + s
            else:
                merged.append(
                    {
                        "t": t,
                        "n": point["n"],
                        "faces": point["faces"],
                        "sums": dict(point["sums"]),
                    }
                )
        self.timeline = merged

    def add_voice(self, reply: dict[str, Any]) -> None:
        self.voice_chunks += 1
        if reply.get("model"):
            self.models["voice"] = reply["model"]
        if reply.get("speech") and reply.get("emotion"):
            self.voice_speech += 1
            self.voice_labels[reply["emotion"]] += 1
        if len(self.voice_timeline) < MAX_VOICE_POINTS:
            self.voice_timeline.append(
                {
                    "t": round(self.elapsed(), 2),
                    "emotion": reply.get("emotion"),
                    "confidence": reply.get("confidence"),
                    "speech": bool(reply.get("speech")),
                    "probabilities": reply.get("probabilities") or {},
                }
            )

    def summary(self) -> dict[str, Any]:
        """The session as the ``result`` JSON of a live Analysis (plus models and timings)."""
        total = sum(self.labels.values())
        order = [
            label
            for label in FACE_EMOTIONS
            if label in self.labels or label in self.prob_sums
        ]
        order += sorted(set(self.labels) - set(order))
        distribution = (
            {label: round(self.labels[label] / total, 4) for label in order}
            if total
            else {}
        )
        probabilities = (
            {
                label: round(self.prob_sums.get(label, 0.0) / self.face_count, 4)
                for label in order
            }
            if self.face_count
            else {}
        )
        emotion = (
            max(
                distribution, key=lambda k: (distribution[k], probabilities.get(k, 0.0))
            )
            if distribution
            else None
        )
        timeline = []
        for point in self.timeline:
            entry: dict[str, Any] = {
                "t": point["t"],
                "faces": point["faces"],
                "emotion": None,
                "confidence": None,
            }
            if point["n"]:
                means = {k: s / point["n"] for k, s in point["sums"].items()}
                top = max(means, key=means.__getitem__)
                entry.update(emotion=top, confidence=round(means[top], 4))
            timeline.append(entry)
        voice = None
        if self.voice_chunks:
            vtotal = sum(self.voice_labels.values())
            vorder = [label for label in VOICE_EMOTIONS if label in self.voice_labels]
            vorder += sorted(set(self.voice_labels) - set(vorder))
            vdist = (
                {label: round(self.voice_labels[label] / vtotal, 4) for label in vorder}
                if vtotal
                else {}
            )
            voice = {
                "chunks": self.voice_chunks,
                "speech_chunks": self.voice_speech,
                "emotion": max(vdist, key=vdist.__getitem__) if vdist else None,
                "distribution": vdist,
                "timeline": self.voice_timeline,
            }
        return {
            "started": self.started_at.isoformat(),
            "duration": round(self.elapsed(), 2),
            "frames": self.frames,
            "frames_with_faces": self.frames_with_faces,
            "dropped": self.dropped,
            "faces_max": self.faces_max,
            "emotion": emotion,
            "confidence": probabilities.get(emotion) if emotion else None,
            "distribution": distribution,
            "probabilities": probabilities,
            "timeline_step": self.bucket_seconds,
            "timeline": timeline,
            "voice": voice,
            "models": dict(self.models),
            "server_ms": {
                "p50": _percentile(self.server_ms, 50),
                "p95": _percentile(self.server_ms, 95),
            },
        }
