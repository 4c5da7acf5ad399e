// The face pipeline on the person's own device: a frame's pixels (ImageData, RGBA) -> faces
// with box, probabilities and emotion, computed as the server computes them
// (faces.detect_with_landmarks upright view -> preprocessing.align_face -> the live model), with
// onnxruntime-web's WebAssembly backend vendored in static/vendor/onnxruntime-web (no network
// beyond this site, one thread: the site is not cross-origin isolated).
//
// A tilted face's landmarks are found again in turned views before it is levelled (refine.js,
// faces.refine_landmarks). With a session's FaceTracks (tracking.js), a frame is handled as the
// server handles a live frame (faces.detect_in_frame, faces.tracked_face_crops): the turned
// detector views (DETECT_TURNS, for faces the upright view misses) run where the tracks need
// them, and a track reuses its refined landmarks while its tilt holds. Not done here: frames the
// server would rescale (long side over 960 or up to 240 px).

import * as ort from '../../vendor/onnxruntime-web/ort.wasm.min.mjs';
import {
  alignFace, eyeAngle, invertAffine, rotationMatrix2D, toGray, transformPoints, warpAffineRgba, ALIGN_MIN_DEGREES,
} from './align.js';
import { FaceClassifier } from './classify.js';
import { refineLandmarks } from './refine.js';
import { iou } from './tracking.js';

export { FaceTracks } from './tracking.js';
import { MIN_BOX_PX, NMS_THRESHOLD, YuNet, leftToRight } from './yunet.js';

ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL('../../vendor/onnxruntime-web/', import.meta.url).href;

export class ModelIntegrityError extends Error {}

export async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

// The model file at url, refused unless its sha256 is the card's.
export async function fetchVerified(url, sha256) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const buffer = await response.arrayBuffer();
  const actual = await sha256Hex(buffer);
  if (actual !== String(sha256).toLowerCase()) {
    throw new ModelIntegrityError(`${url}: sha256 ${actual} is not the card's ${sha256}; refused`);
  }
  return buffer;
}

const SESSION_OPTIONS = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };

async function session(url, sha256) {
  const bytes = await fetchVerified(url, sha256);
  return ort.InferenceSession.create(new Uint8Array(bytes), SESSION_OPTIONS);
}

export const MAX_FACES = 64;
export const MIN_JUDGE_PX = 32;
export const DETECT_TURNS = [30, -30];
const TURN_BORDER = 127;

// faces._suppress: non-maximum suppression over the views, best score first.
function suppress(found) {
  const kept = [];
  for (const f of found.slice().sort((a, b) => b.score - a.score)) {
    if (kept.every((k) => iou(f.box, k.box) < NMS_THRESHOLD)) kept.push(f);
  }
  return kept;
}

export class FacePipeline {
  constructor(detector, classifier) {
    this.detector = detector;
    this.classifier = classifier;
  }

  // detector: {url, sha256}; card: the live model's card (face_live.json: classes, tta,
  // temperature); members: [{url, sha256, temperature}] (each member card's engine file, its
  // sha256 and temperature), in the card's order.
  static async load({ detector, card, members }) {
    const [yunet, ...sessions] = await Promise.all([
      session(detector.url, detector.sha256),
      ...members.map((m) => session(m.url, m.sha256)),
    ]);
    const classifier = new FaceClassifier(ort, sessions.map((s, i) => ({ session: s, temperature: members[i].temperature })), card);
    return new FacePipeline(new YuNet(ort, yunet), classifier);
  }

  // faces._turned_detections: the frame turned by `turn` degrees about its centre (same size,
  // grey where the turn brings in nothing), its detections turned back into the frame; their
  // landmarks carry `turn` (faces.TurnedLandmarks).
  async turnedDetections(data, width, height, turn) {
    const matrix = rotationMatrix2D(width / 2, height / 2, turn, 1);
    const view = warpAffineRgba(data, width, height, matrix, TURN_BORDER);
    const back = invertAffine(matrix);
    const found = [];
    for (const row of await this.detector.detectRows(view, width, height)) {
      const bw = row[2], bh = row[3];
      const [[cx, cy]] = transformPoints([[Math.fround(row[0] + Math.fround(bw / 2)), Math.fround(row[1] + Math.fround(bh / 2))]], back);
      const x0 = Math.max(0, Math.floor(cx - bw / 2)), y0 = Math.max(0, Math.floor(cy - bh / 2));
      const x1 = Math.min(width, Math.ceil(cx + bw / 2)), y1 = Math.min(height, Math.ceil(cy + bh / 2));
      if (x1 - x0 < MIN_BOX_PX || y1 - y0 < MIN_BOX_PX) continue;
      const landmarks = transformPoints([0, 1, 2, 3, 4].map((j) => [row[4 + 2 * j], row[5 + 2 * j]]), back);
      landmarks.turn = turn;
      found.push({ box: [x0, y0, x1 - x0, y1 - y0], score: row[14], landmarks });
    }
    return found;
  }

  // faces.detect_with_landmarks with `turns` (and the upright view unless upright is false).
  async detectViews(data, width, height, turns, upright = true) {
    let found = upright ? await this.detector.detect(data, width, height, { sorted: false }) : [];
    for (const turn of turns) found = found.concat(await this.turnedDetections(data, width, height, turn));
    if (turns.length) found = suppress(found);
    return found.sort(leftToRight);
  }

  // faces.detect_in_frame: a photo (no tracks) gets the upright view only here (the server's
  // photos get every turned view too); a tracked frame gets the turned views its tracks need,
  // and the ones not looked at yet when a face of the last frame would be lost.
  async detectInFrame(data, width, height, tracks) {
    if (!tracks) return this.detector.detect(data, width, height);
    const turns = tracks.turns(DETECT_TURNS);
    let found = await this.detectViews(data, width, height, turns);
    const missing = DETECT_TURNS.filter((t) => !turns.includes(t));
    if (missing.length && tracks.wouldLose(found.map((f) => f.box))) {
      found = suppress(found.concat(await this.detectViews(data, width, height, missing, false))).sort(leftToRight);
    }
    return found;
  }

  // ImageData (or {data, width, height}) -> [{box, score, landmarks, tilted, too_small, emotion,
  // confidence, probabilities: {class: p}}], left to right. `tracks`: the session's FaceTracks
  // (tracking.js) for live frames; each face then has its `track` id.
  async run(image, tracks = null) {
    const { data, width, height } = image;
    let found = await this.detectInFrame(data, width, height, tracks);
    if (found.length > MAX_FACES) {
      found = found.slice().sort((a, b) => b.score - a.score).slice(0, MAX_FACES).sort(leftToRight);
    }
    const ids = tracks ? tracks.assign(found.map((f) => f.box), found.map((f) => f.landmarks.turn ?? null)) : null;
    if (!found.length) return [];
    const gray = toGray(data, width, height);
    const crops = [];
    for (const [i, f] of found.entries()) {
      const refine = () => refineLandmarks(this.detector, gray, f.box, f.landmarks);
      const points = tracks ? await tracks.memory.landmarks(ids[i], tracks.frame - 1, f.box, f.landmarks, refine) : await refine();
      crops.push(alignFace(gray, f.box, points));
    }
    const probabilities = await this.classifier.predict(crops);
    const classes = this.classifier.classes;
    return found.map((f, i) => {
      const row = probabilities[i];
      const best = row.indexOf(Math.max(...row));
      return {
        box: f.box,
        score: f.score,
        landmarks: f.landmarks,
        ...(ids ? { track: ids[i] } : {}),
        tilted: Math.abs(eyeAngle(f.landmarks)) >= ALIGN_MIN_DEGREES,
        too_small: Math.max(f.box[2], f.box[3]) < MIN_JUDGE_PX,
        emotion: classes[best],
        confidence: row[best],
        probabilities: Object.fromEntries(classes.map((c, k) => [c, row[k]])),
      };
    });
  }
}
