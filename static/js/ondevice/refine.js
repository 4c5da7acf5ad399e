// faces.refine_landmarks in the browser: a tilted face's landmarks found again in turned views.
//
// YuNet's eye landmarks report only about a third of a head's roll, so a face whose eyes tilt
// ALIGN_MIN_DEGREES or more is cut out with room around it (twice its box, edges repeated),
// shrunk to DETECT_MIN_SIDE when larger, turned by each of REFINE_ANGLES towards upright and
// detected again; the view whose eyes look most level wins, and its landmarks, turned back, are
// the ones the face is aligned with. The same steps, sizes and rounding as the server
// (recognition/inference/faces.py), held together by tests/e2e/test_ondevice_parity.py.

import {
  ALIGN_MIN_DEGREES, eyeAngle, invertAffine, resizeArea, resizeLinear, rotationMatrix2D,
  roundHalfEven, squareRegion, transformPoints, warpAffine,
} from './align.js';
import { MIN_BOX_PX } from './yunet.js';

export const DETECT_MIN_SIDE = 240;
const f32 = Math.fround;
export const REFINE_ANGLES = [15, 30, 45];

function grayToRgba({ data, width, height }) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let j = 0, i = 0; j < data.length; j++, i += 4) {
    rgba[i] = rgba[i + 1] = rgba[i + 2] = data[j];
    rgba[i + 3] = 255;
  }
  return rgba;
}

// faces.detect_with_landmarks for a small grey view (long side up to DETECT_MIN_SIDE: looked at
// enlarged to DETECT_MIN_SIDE, as the server does): [{box, score, landmarks}].
export async function detectSmall(detector, gray) {
  const { width, height } = gray;
  const long = Math.max(width, height);
  if (long > DETECT_MIN_SIDE) throw new Error(`detectSmall takes views up to ${DETECT_MIN_SIDE} px, not ${width}x${height}`);
  const scale = DETECT_MIN_SIDE / long;
  const view = scale === 1 ? gray
    : resizeLinear(gray, Math.max(1, roundHalfEven(width * scale)), Math.max(1, roundHalfEven(height * scale)));
  const found = [];
  for (const row of await detector.detectRows(grayToRgba(view), view.width, view.height)) {
    // float32 arithmetic, as numpy does with the detector's float32 rows
    const x0 = Math.max(0, Math.floor(f32(row[0] / scale))), y0 = Math.max(0, Math.floor(f32(row[1] / scale)));
    const x1 = Math.min(width, Math.ceil(f32(f32(row[0] + row[2]) / scale)));
    const y1 = Math.min(height, Math.ceil(f32(f32(row[1] + row[3]) / scale)));
    if (x1 - x0 >= MIN_BOX_PX && y1 - y0 >= MIN_BOX_PX) {
      const landmarks = [0, 1, 2, 3, 4].map((j) => [row[4 + 2 * j] / scale, row[5 + 2 * j] / scale]);
      found.push({ box: [x0, y0, x1 - x0, y1 - y0], score: row[14], landmarks });
    }
  }
  return found;
}

// faces.detection_at: the best-scoring detection whose box holds the point, or null.
export function detectionAt(found, [x, y]) {
  let best = null;
  for (const f of found) {
    const [bx, by, bw, bh] = f.box;
    if (bx <= x && x <= bx + bw && by <= y && y <= by + bh && (best === null || f.score > best.score)) best = f;
  }
  return best;
}

// The landmarks to align a face with: its own when it looks upright, else those of the turned
// view whose eyes look most level (faces.refine_landmarks).
export async function refineLandmarks(detector, gray, box, landmarks) {
  if (!landmarks) return null;
  if (landmarks.turn !== undefined) return landmarks; // found in a turned view: seen near upright
  const first = eyeAngle(landmarks);
  if (Math.abs(first) < ALIGN_MIN_DEGREES) return landmarks;
  const [x, y, w, h] = box;
  const side = Math.ceil(2 * Math.max(w, h));
  const cx = x + w / 2, cy = y + h / 2;
  const x0 = roundHalfEven(cx - side / 2), y0 = roundHalfEven(cy - side / 2);
  let region = squareRegion(gray, x0, y0, side);
  const scale = Math.min(1, DETECT_MIN_SIDE / side);
  if (scale < 1) region = resizeArea(region, DETECT_MIN_SIDE, DETECT_MIN_SIDE);
  const size = region.width;
  const centre = [size / 2 - 0.5, size / 2 - 0.5];
  let best = landmarks, bestResidual = Math.abs(first);
  for (const turn of REFINE_ANGLES) {
    const matrix = rotationMatrix2D(centre[0], centre[1], Math.sign(first) * turn, 1);
    const view = warpAffine(region, matrix, size, size, 'replicate');
    const hit = detectionAt(await detectSmall(detector, view), centre);
    if (!hit) continue;
    const residual = Math.abs(eyeAngle(hit.landmarks));
    if (residual < bestResidual) {
      best = transformPoints(hit.landmarks, invertAffine(matrix)).map(([px, py]) => [px / scale + x0, py / scale + y0]);
      bestResidual = residual;
    }
  }
  return best;
}
