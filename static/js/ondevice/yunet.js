// YuNet face detection in the browser, the same arithmetic as recognition/inference/yunet.py
// (float32 throughout): pad right/bottom to a multiple of 32, float BGR NCHW blob of raw 0-255
// values, decode each stride's cls/obj/bbox/kps, score = sqrt(clip(cls) * clip(obj)), then
// cv2.dnn.NMSBoxes over integer boxes (score > threshold, stable sort by score, IoU <= nms kept).

export const STRIDES = [8, 16, 32];
export const DIVISOR = 32;
export const SCORE_THRESHOLD = 0.6;
export const NMS_THRESHOLD = 0.3;
export const TOP_K = 500;
export const MIN_BOX_PX = 2;

const f32 = Math.fround;
const clip01 = (v) => (v < 0 ? 0 : v > 1 ? 1 : v);

// RGBA pixels -> padded BGR float32 NCHW blob.
export function blob(rgba, width, height) {
  const padW = Math.floor((width - 1) / DIVISOR + 1) * DIVISOR;
  const padH = Math.floor((height - 1) / DIVISOR + 1) * DIVISOR;
  const plane = padW * padH;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4, o = y * padW + x;
      data[o] = rgba[i + 2];
      data[plane + o] = rgba[i + 1];
      data[2 * plane + o] = rgba[i];
    }
  }
  return { data, padW, padH };
}

// outputs: {cls_8: Float32Array, ...} -> rows [x, y, w, h, 10 landmark coords, score]
export function decode(outputs, padW, scoreThreshold = SCORE_THRESHOLD) {
  const threshold = f32(scoreThreshold);
  const rows = [];
  for (const stride of STRIDES) {
    const cols = padW / stride;
    const cls = outputs[`cls_${stride}`], obj = outputs[`obj_${stride}`];
    const bbox = outputs[`bbox_${stride}`], kps = outputs[`kps_${stride}`];
    const s = stride;
    for (let k = 0; k < cls.length; k++) {
      const score = f32(Math.sqrt(f32(clip01(cls[k]) * clip01(obj[k]))));
      if (!(score >= threshold)) continue;
      const c = k % cols, r = Math.floor(k / cols);
      const w = f32(f32(Math.exp(bbox[4 * k + 2])) * s);
      const h = f32(f32(Math.exp(bbox[4 * k + 3])) * s);
      const x1 = f32(f32(f32(c + bbox[4 * k]) * s) - f32(w / 2));
      const y1 = f32(f32(f32(r + bbox[4 * k + 1]) * s) - f32(h / 2));
      const row = [x1, y1, w, h];
      for (let j = 0; j < 5; j++) {
        row.push(f32(f32(kps[10 * k + 2 * j] + c) * s), f32(f32(kps[10 * k + 2 * j + 1] + r) * s));
      }
      row.push(score);
      rows.push(row);
    }
  }
  return rows;
}

function intersectionArea(a, b) {
  const x = Math.max(a[0], b[0]), y = Math.max(a[1], b[1]);
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - x, h = Math.min(a[1] + a[3], b[1] + b[3]) - y;
  return w > 0 && h > 0 ? w * h : 0;
}

// cv2.dnn.NMSBoxes(int boxes, scores, scoreThreshold, nmsThreshold, eta=1, topK) -> kept indices
export function nmsBoxes(boxes, scores, scoreThreshold, nmsThreshold, topK) {
  const threshold = f32(scoreThreshold);
  let order = scores.map((s, i) => [s, i]).filter(([s]) => s > threshold);
  order.sort((a, b) => b[0] - a[0]); // Array.prototype.sort is stable
  if (topK > 0) order = order.slice(0, topK);
  const kept = [];
  for (const [, i] of order) {
    const keep = kept.every((j) => {
      const a = boxes[i], b = boxes[j];
      const aa = a[2] * a[3], ab = b[2] * b[3];
      if (aa + ab <= 0) return 1.0 <= nmsThreshold;
      const inter = intersectionArea(a, b);
      return inter / (aa + ab - inter) <= nmsThreshold;
    });
    if (keep) kept.push(i);
  }
  return kept;
}

export class YuNet {
  constructor(ort, session) {
    this.ort = ort;
    this.session = session;
    this.outputs = ['cls', 'obj', 'bbox', 'kps'].flatMap((kind) => STRIDES.map((s) => `${kind}_${s}`));
  }

  // rows as YuNet.detect returns them, best first after NMS
  async detectRows(rgba, width, height, scoreThreshold = SCORE_THRESHOLD) {
    const { data, padW, padH } = blob(rgba, width, height);
    const input = new this.ort.Tensor('float32', data, [1, 3, padH, padW]);
    const result = await this.session.run({ [this.session.inputNames[0]]: input });
    const outputs = {};
    for (const name of this.outputs) outputs[name] = result[name].data;
    let rows = decode(outputs, padW, scoreThreshold);
    if (rows.length > 1) {
      const boxes = rows.map((r) => r.slice(0, 4).map(Math.trunc));
      rows = nmsBoxes(boxes, rows.map((r) => r[14]), scoreThreshold, NMS_THRESHOLD, TOP_K).map((i) => rows[i]);
    }
    return rows;
  }

  // faces.detect_with_landmarks' upright view for an image the server would not rescale (long
  // side 241-960 px, e.g. a 640x480 webcam frame): [{box, score, landmarks}], left to right
  // (``sorted: false``: in the detector's order, best first, as the server merges views).
  async detect(rgba, width, height, { sorted = true } = {}) {
    const long = Math.max(width, height);
    if (long > 960 || long <= 240) throw new Error(`on-device detection takes 241-960 px frames, not ${width}x${height}`);
    const found = [];
    for (const row of await this.detectRows(rgba, width, height)) {
      const x0 = Math.max(0, Math.floor(row[0])), y0 = Math.max(0, Math.floor(row[1]));
      const x1 = Math.min(width, Math.ceil(f32(row[0] + row[2]))), y1 = Math.min(height, Math.ceil(f32(row[1] + row[3])));
      if (x1 - x0 >= MIN_BOX_PX && y1 - y0 >= MIN_BOX_PX) {
        const landmarks = [0, 1, 2, 3, 4].map((j) => [row[4 + 2 * j], row[5 + 2 * j]]);
        found.push({ box: [x0, y0, x1 - x0, y1 - y0], score: row[14], landmarks });
      }
    }
    return sorted ? found.sort(leftToRight) : found;
  }
}

// faces._left_to_right
export function leftToRight(a, b) {
  return a.box[0] - b.box[0] || a.box[1] - b.box[1];
}
