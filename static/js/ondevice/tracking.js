// Faces followed from frame to frame on the device, as recognition/inference/tracking.py follows
// them on the server (the same constants and steps; tests/e2e/test_ondevice_parity.py runs the
// same frame sequences through both): IoU tracks with constant-velocity prediction, a tilted
// face's refined landmarks reused while its tilt holds, and which turned detector view found
// each face, so a live frame pays for turned views only where a track needs them.

import { ALIGN_MIN_DEGREES, eyeAngle } from './align.js';

export const TRACK_IOU = 0.3;
export const REUSE_MAX_DEGREES = 5.0;
export const REFRESH_FRAMES = 15;
export const TURN_EVERY = 10;
export const MAX_GAP = 4;

// Intersection over union of two [x, y, w, h] boxes.
export function iou(a, b) {
  const ix = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

class Track {
  constructor(id, box, lastSeen) {
    this.id = id;
    this.box = box.slice();
    this.lastSeen = lastSeen;
    this.velocity = [0, 0];
  }

  predicted(index) {
    const steps = index - this.lastSeen;
    const [x, y, w, h] = this.box;
    return [x + this.velocity[0] * steps, y + this.velocity[1] * steps, w, h];
  }
}

// Greedy IoU matching of each frame's boxes to the live tracks, highest overlap first.
export class IoUTracker {
  constructor(minIou = TRACK_IOU, maxGap = MAX_GAP) {
    this.minIou = minIou;
    this.maxGap = maxGap;
    this.tracks = [];
    this.nextId = 1;
  }

  update(boxes, index) {
    this.tracks = this.tracks.filter((t) => index - t.lastSeen <= this.maxGap);
    const pairs = [];
    this.tracks.forEach((track, ti) => boxes.forEach((box, bi) => {
      pairs.push([Math.max(iou(track.predicted(index), box), iou(track.box, box)), ti, bi]);
    }));
    // Python's sorted(reverse=True) over (overlap, track index, box index) tuples
    pairs.sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2]);
    const ids = new Array(boxes.length).fill(null);
    const used = new Set();
    for (const [overlap, ti, bi] of pairs) {
      if (overlap < this.minIou) break;
      if (used.has(ti) || ids[bi] !== null) continue;
      used.add(ti);
      const track = this.tracks[ti];
      const steps = Math.max(1, index - track.lastSeen);
      const box = boxes[bi];
      track.velocity = [(box[0] - track.box[0]) / steps, (box[1] - track.box[1]) / steps];
      track.box = box.slice();
      track.lastSeen = index;
      ids[bi] = track.id;
    }
    boxes.forEach((box, bi) => {
      if (ids[bi] === null) {
        this.tracks.push(new Track(this.nextId, box, index));
        ids[bi] = this.nextId++;
      }
    });
    return ids;
  }
}

// Refined landmarks per track, reused while the tilt holds (tracking.AlignmentMemory).
export class AlignmentMemory {
  constructor() {
    this.entries = new Map();
    this.refined = 0;
    this.reused = 0;
  }

  async landmarks(track, frame, box, first, refine) {
    if (!first) return null;
    if (first.turn !== undefined) return first; // found in a turned view: seen near upright
    const tilt = eyeAngle(first);
    if (Math.abs(tilt) < ALIGN_MIN_DEGREES) {
      this.entries.delete(track);
      return first;
    }
    const [x, y, w, h] = box;
    const size = [Math.max(w, 1), Math.max(h, 1)];
    const entry = this.entries.get(track);
    if (entry && Math.abs(tilt - entry.tilt) <= REUSE_MAX_DEGREES && frame - entry.frame < REFRESH_FRAMES) {
      this.reused += 1;
      return entry.relative.map(([rx, ry]) => [rx * size[0] + x, ry * size[1] + y]);
    }
    const refined = await refine();
    this.refined += 1;
    this.entries.set(track, { tilt, relative: refined.map(([px, py]) => [(px - x) / size[0], (py - y) / size[1]]), frame });
    return refined;
  }

  forgetExcept(live) {
    for (const track of [...this.entries.keys()]) if (!live.has(track)) this.entries.delete(track);
  }
}

// One live session's tracks and what they remember (tracking.FaceTracks).
export class FaceTracks {
  constructor() {
    this.tracker = new IoUTracker();
    this.memory = new AlignmentMemory();
    this.frame = 0;
    this.turnOf = new Map();
  }

  // The turned detector views this frame needs: all candidates every TURN_EVERY-th frame, else
  // those that found a face of a live track last time.
  turns(candidates) {
    if (this.frame % TURN_EVERY === 0) return candidates.slice();
    const needed = new Set(this.turnOf.values());
    return candidates.filter((t) => needed.has(t));
  }

  // Whether a face seen in the last frame matches none of boxes.
  wouldLose(boxes) {
    const last = this.tracker.tracks.filter((t) => t.lastSeen === this.frame - 1);
    return last.some((t) => {
      let best = 0;
      for (const b of boxes) best = Math.max(best, Math.max(iou(t.predicted(this.frame), b), iou(t.box, b)));
      return best < this.tracker.minIou;
    });
  }

  // Track ids for this frame's boxes (turns: the turned view that found each, null for upright);
  // advances the frame count.
  assign(boxes, turns) {
    const ids = this.tracker.update(boxes, this.frame);
    ids.forEach((track, i) => {
      const turn = turns ? turns[i] : null;
      if (turn === null || turn === undefined) this.turnOf.delete(track);
      else this.turnOf.set(track, turn);
    });
    const live = new Set(this.tracker.tracks.map((t) => t.id));
    for (const track of [...this.turnOf.keys()]) if (!live.has(track)) this.turnOf.delete(track);
    this.memory.forgetExcept(live);
    this.frame += 1;
    return ids;
  }
}
