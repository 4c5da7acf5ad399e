// The face pipeline on the person's own device: a frame's pixels (ImageData, RGBA) -> faces
// with box, probabilities and emotion, computed as the server computes them
// (faces.detect_with_landmarks upright view -> preprocessing.align_face -> the live model), with
// onnxruntime-web's WebAssembly backend vendored in static/vendor/onnxruntime-web (no network
// beyond this site, one thread: the site is not cross-origin isolated).
//
// A tilted face's landmarks are refined as faces.refine_landmarks does (looked at again turned
// by 15, 30 and 45 degrees; the view whose eyes look most level wins) before it is levelled.
// Not done here (yet): the turned detector views (DETECT_TURNS), frames the server would
// rescale (long side over 960 or up to 240 px).

import * as ort from '../../vendor/onnxruntime-web/ort.wasm.min.mjs';
import {
  alignFace, eyeAngle, toGray, ALIGN_MIN_DEGREES, DETECT_MIN_SIDE, REFINE_ANGLES, refineRegion, resizeLinear,
  rotationMatrix, turnBack, warpSquare,
} from './align.js';
import { FaceClassifier } from './classify.js';
import { YuNet } from './yunet.js';

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

  // faces.detect_with_landmarks of a grey square view of at most DETECT_MIN_SIDE px (scaled up
  // to it with INTER_LINEAR when smaller): [{box, score, landmarks}] in the view's pixels
  async detectView(view) {
    const scale = DETECT_MIN_SIDE / view.width;
    const small = scale === 1 ? view : resizeLinear(view, DETECT_MIN_SIDE, DETECT_MIN_SIDE);
    const n = small.width, rgba = new Uint8Array(n * n * 4);
    for (let i = 0; i < n * n; i++) {
      const v = small.data[i];
      rgba[4 * i] = v; rgba[4 * i + 1] = v; rgba[4 * i + 2] = v; rgba[4 * i + 3] = 255;
    }
    const found = [];
    for (const row of await this.detector.detectRows(rgba, n, n)) {
      const x0 = Math.max(0, Math.floor(row[0] / scale)), y0 = Math.max(0, Math.floor(row[1] / scale));
      const x1 = Math.min(view.width, Math.ceil((row[0] + row[2]) / scale));
      const y1 = Math.min(view.width, Math.ceil((row[1] + row[3]) / scale));
      if (x1 - x0 >= 2 && y1 - y0 >= 2) {
        found.push({ box: [x0, y0, x1 - x0, y1 - y0], score: row[14], landmarks: [0, 1, 2, 3, 4].map((j) => [row[4 + 2 * j] / scale, row[5 + 2 * j] / scale]) });
      }
    }
    return found;
  }

  // faces.refine_landmarks: the landmarks of a tilted face from the turned view in which its
  // eyes look most level (the first ones when no view finds it again, or it is not tilted)
  async refineLandmarks(gray, box, landmarks) {
    if (!landmarks) return landmarks;
    const first = eyeAngle(landmarks);
    if (Math.abs(first) < ALIGN_MIN_DEGREES) return landmarks;
    const region = refineRegion(gray, box);
    const [cx, cy] = region.centre;
    let best = landmarks, bestResidual = Math.abs(first);
    for (const turn of REFINE_ANGLES) {
      const m = rotationMatrix(region.centre, Math.sign(first) * turn);
      const hits = (await this.detectView(warpSquare(region.view, m)))
        .filter(({ box: [x, y, w, h] }) => x <= cx && cx <= x + w && y <= cy && cy <= y + h);
      if (!hits.length) continue;
      const hit = hits.reduce((a, b) => (b.score > a.score ? b : a));
      const residual = Math.abs(eyeAngle(hit.landmarks));
      if (residual < bestResidual) {
        best = turnBack(hit.landmarks, m, region);
        bestResidual = residual;
      }
    }
    return best;
  }

  // ImageData (or {data, width, height}) -> [{box, score, landmarks, tilted, too_small, emotion,
  // confidence, probabilities: {class: p}}], left to right
  async run(image) {
    const { data, width, height } = image;
    let found = await this.detector.detect(data, width, height);
    if (found.length > MAX_FACES) {
      found = found.slice().sort((a, b) => b.score - a.score).slice(0, MAX_FACES)
        .sort((a, b) => a.box[0] - b.box[0] || a.box[1] - b.box[1]);
    }
    if (!found.length) return [];
    const gray = toGray(data, width, height);
    const crops = [];
    for (const f of found) crops.push(alignFace(gray, f.box, await this.refineLandmarks(gray, f.box, f.landmarks)));
    const probabilities = await this.classifier.predict(crops);
    const classes = this.classifier.classes;
    return found.map((f, i) => {
      const row = probabilities[i];
      const best = row.indexOf(Math.max(...row));
      return {
        box: f.box,
        score: f.score,
        landmarks: f.landmarks,
        tilted: Math.abs(eyeAngle(f.landmarks)) >= ALIGN_MIN_DEGREES,
        too_small: Math.max(f.box[2], f.box[3]) < MIN_JUDGE_PX,
        emotion: classes[best],
        confidence: row[best],
        probabilities: Object.fromEntries(classes.map((c, k) => [c, row[k]])),
      };
    });
  }
}
