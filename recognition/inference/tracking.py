"""Faces followed from frame to frame (video samples, live webcam frames), so the work a face
needs once is done once.

``IoUTracker`` links each frame's boxes to tracks (greedy IoU matching, constant-velocity
prediction). ``AlignmentMemory`` keeps, per track, what ``faces.refine_landmarks`` found for a
tilted face (three extra detector passes, the largest cost of a tilted face): while the face's
tilt as the detector reports it stays within ``REUSE_MAX_DEGREES`` of the tilt it was refined at,
its refined landmarks are carried along with its box instead of being looked for again. A new
track, or a tilt that changed, is refined afresh; so is every track once per ``REFRESH_FRAMES``
frames. ``FaceTracks`` is the two together: one per live session or video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TRACK_IOU = 0.3
# The detector's own eye angle jitters by up to ~5 degrees between frames of a still face (a 30-
# degree tilt read as 19-25 degrees, tests/test_tracking.py) and reports about a third to two
# thirds of a real change of roll, so a change of 5 degrees is about one refinement step (15 real
# degrees, faces.REFINE_ANGLES); a slower drift is caught by the refresh, every 15 frames (half a
# second to a second of live video).
REUSE_MAX_DEGREES = 5.0
REFRESH_FRAMES = 15
# A tracked frame runs every turned detector view once in this many frames (faces.detect_in_frame).
TURN_EVERY = 10


def iou(a: list[float] | list[int], b: list[float] | list[int]) -> float:
    """Intersection over union of two [x, y, w, h] boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: list[int]
    last_seen: int  # frame (sample) index
    velocity: tuple[float, float] = (0.0, 0.0)  # box movement per frame (x, y)

    def predicted(self, index: int) -> list[float]:
        """Where the box should be at frame ``index`` if it keeps moving the same way."""
        steps = index - self.last_seen
        x, y, w, h = self.box
        return [x + self.velocity[0] * steps, y + self.velocity[1] * steps, w, h]


@dataclass
class IoUTracker:
    """Greedy IoU matching of each frame's boxes to the live tracks (highest overlap first).

    A track's box is compared where it is predicted to be (constant velocity), so faces moving
    with a pan, or walking, keep their track at a few samples per second."""

    min_iou: float = TRACK_IOU
    max_gap: int = 4  # frames a track may go unseen before it ends
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 1

    def update(self, boxes: list[list[int]], index: int) -> list[int]:
        """Track ids for ``boxes`` (in order) seen at frame ``index``."""
        self.tracks = [t for t in self.tracks if index - t.last_seen <= self.max_gap]
        pairs = sorted(
            (
                (max(iou(track.predicted(index), box), iou(track.box, box)), ti, bi)
                for ti, track in enumerate(self.tracks)
                for bi, box in enumerate(boxes)
            ),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < self.min_iou:
                break
            if ti in used or ids[bi] is not None:
                continue
            used.add(ti)
            track = self.tracks[ti]
            steps = max(1, index - track.last_seen)
            new = list(boxes[bi])
            track.velocity = ((new[0] - track.box[0]) / steps, (new[1] - track.box[1]) / steps)
            track.box, track.last_seen = new, index
            ids[bi] = track.id
        for bi, box in enumerate(boxes):
            if ids[bi] is None:
                self.tracks.append(Track(self.next_id, list(box), index))
                ids[bi] = self.next_id
                self.next_id += 1
        return [int(i) for i in ids if i is not None]


@dataclass
class _Refined:
    tilt: float  # the detector's eye angle when refined
    relative: np.ndarray  # refined landmarks, (point - box corner) / box size
    frame: int


@dataclass
class AlignmentMemory:
    """Refined landmarks per track, reused while the tilt holds (module docstring)."""

    reuse_max_degrees: float = REUSE_MAX_DEGREES
    refresh_frames: int = REFRESH_FRAMES
    entries: dict[int, _Refined] = field(default_factory=dict)
    refined: int = 0  # refinements computed (each: up to three small detector passes)
    reused: int = 0  # refinements carried along with a track instead

    def landmarks(self, track: int, frame: int, gray: np.ndarray, box: list[int], first: np.ndarray | None, refine) -> np.ndarray | None:
        """The landmarks to align ``box`` with: remembered for ``track`` when its tilt holds,
        else ``refine(gray, box, first)`` (remembered for next time)."""
        from recognition.inference.preprocessing import ALIGN_MIN_DEGREES, eye_angle

        if first is None:
            return None
        if hasattr(first, "turn"):  # faces.TurnedLandmarks: seen near upright, nothing to refine
            return np.asarray(first)
        first = np.asarray(first, dtype=np.float64).reshape(5, 2)
        tilt = eye_angle(first)
        if abs(tilt) < ALIGN_MIN_DEGREES:  # upright: nothing to refine, nothing to remember
            self.entries.pop(track, None)
            return first
        x, y, w, h = (float(v) for v in box)
        size = np.array([max(w, 1.0), max(h, 1.0)])
        entry = self.entries.get(track)
        if entry is not None and abs(tilt - entry.tilt) <= self.reuse_max_degrees and frame - entry.frame < self.refresh_frames:
            self.reused += 1
            return entry.relative * size + [x, y]
        refined = refine(gray, box, first)
        self.refined += 1
        self.entries[track] = _Refined(tilt, (np.asarray(refined, dtype=np.float64) - [x, y]) / size, frame)
        return refined

    def forget_except(self, live: set[int]) -> None:
        for track in [t for t in self.entries if t not in live]:
            del self.entries[track]


@dataclass
class FaceTracks:
    """One video's or live session's tracks and what they remember: each tilted face's refined
    landmarks, and which turned detector view found each face (``faces.detect_in_frame``)."""

    tracker: IoUTracker = field(default_factory=IoUTracker)
    memory: AlignmentMemory = field(default_factory=AlignmentMemory)
    frame: int = 0
    turn_every: int = TURN_EVERY
    turn_of: dict[int, float] = field(default_factory=dict)

    def turns(self, candidates: tuple[float, ...]) -> tuple[float, ...]:
        """The turned detector views this frame needs: all ``candidates`` on every
        ``turn_every``-th frame (a newly tilted face is found within that many frames), else
        those that found a face of a live track last time."""
        if self.frame % self.turn_every == 0:
            return tuple(candidates)
        needed = set(self.turn_of.values())
        return tuple(t for t in candidates if t in needed)

    def would_lose(self, boxes: list[list[int]]) -> bool:
        """Whether a face seen in the last frame matches none of ``boxes``."""
        last = [t for t in self.tracker.tracks if t.last_seen == self.frame - 1]
        return any(max((max(iou(t.predicted(self.frame), b), iou(t.box, b)) for b in boxes), default=0.0) < self.tracker.min_iou for t in last)

    def assign(self, boxes: list[list[int]], turns: list[float | None] | None = None) -> list[int]:
        """Track ids for this frame's boxes (``turns``: the turned view that found each, None for
        the upright one); advances the frame count."""
        ids = self.tracker.update(boxes, self.frame)
        for track, turn in zip(ids, turns or [None] * len(ids), strict=True):
            if turn is None:
                self.turn_of.pop(track, None)
            else:
                self.turn_of[track] = turn
        live = {t.id for t in self.tracker.tracks}
        self.turn_of = {k: v for k, v in self.turn_of.items() if k in live}
        self.memory.forget_except(live)
        self.frame += 1
        return ids
