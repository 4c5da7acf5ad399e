// Face crops in the browser, as recognition/inference/preprocessing.py makes them on the server:
// grey conversion (cv2.COLOR_RGB2GRAY's fixed-point weights), the square crop of crop_face
// (Python's round-half-to-even included) and resize_face's 48x48 resize (OpenCV's INTER_AREA
// when shrinking, INTER_LINEAR otherwise, both with OpenCV's own arithmetic).
//
// Tilted faces (eyes >= ALIGN_MIN_DEGREES off level) are rotated as align_face does, with a
// float bilinear warp (OpenCV's warpAffine uses 5-bit fixed-point offsets, so a grey level may
// differ), after their landmarks are refined as faces.refine_landmarks does (the pipeline looks
// again at the face turned by each of REFINE_ANGLES: refineView and turnBack below).

export const FACE_SIZE = 48;
export const ALIGN_SIDE = 2.57;
export const ALIGN_CENTRE_DROP = 0.35;
export const ALIGN_MIN_DEGREES = 5.0;

const f32 = Math.fround;

// cv2.cvtColor(..., COLOR_BGR2GRAY) for 8-bit pixels: Y = (1868 B + 9617 G + 4899 R + 8192) >> 14.
export function toGray(rgba, width, height) {
  const gray = new Uint8Array(width * height);
  for (let i = 0, j = 0; j < gray.length; i += 4, j++) {
    gray[j] = (rgba[i] * 4899 + rgba[i + 1] * 9617 + rgba[i + 2] * 1868 + 8192) >> 14;
  }
  return { data: gray, width, height };
}

// Python's round(): half to even.
export function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// OpenCV's cvRound/saturate_cast<uchar> of a float: nearest, ties to even, clipped to 0..255.
function saturateU8(v) {
  const r = roundHalfEven(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

export function expandBox([x, y, w, h], width, height) {
  const side = Math.max(w, h);
  const cx = x + w / 2, cy = y + h / 2;
  const x0 = roundHalfEven(Math.max(0, cx - side / 2));
  const y0 = roundHalfEven(Math.max(0, cy - side / 2));
  const x1 = roundHalfEven(Math.min(width, cx + side / 2));
  const y1 = roundHalfEven(Math.min(height, cy + side / 2));
  return [x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0)];
}

function region(img, x, y, w, h) {
  // numpy slicing: clipped to the image
  const xa = Math.min(Math.max(x, 0), img.width), xb = Math.min(Math.max(x + w, 0), img.width);
  const ya = Math.min(Math.max(y, 0), img.height), yb = Math.min(Math.max(y + h, 0), img.height);
  const out = new Uint8Array(Math.max(0, xb - xa) * Math.max(0, yb - ya));
  for (let r = ya, k = 0; r < yb; r++) for (let c = xa; c < xb; c++) out[k++] = img.data[r * img.width + c];
  return { data: out, width: Math.max(0, xb - xa), height: Math.max(0, yb - ya) };
}

export function cropFace(gray, box) {
  const [x, y, w, h] = expandBox(box, gray.width, gray.height);
  return resizeFace(region(gray, x, y, w, h));
}

// OpenCV's computeResizeAreaTab (imgproc/src/resize.cpp).
function areaTab(ssize, dsize, scale) {
  const tab = [];
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale, fsx2 = fsx1 + scale;
    const cellWidth = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1), sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) tab.push([dx, sx1 - 1, f32((sx1 - fsx1) / cellWidth)]);
    for (let sx = sx1; sx < sx2; sx++) tab.push([dx, sx, f32(1.0 / cellWidth)]);
    if (fsx2 - sx2 > 1e-3) tab.push([dx, sx2, f32(Math.min(Math.min(fsx2 - sx2, 1), cellWidth) / cellWidth)]);
  }
  return tab;
}

// cv::resize INTER_AREA, 8-bit one channel, shrinking.
export function resizeArea(src, dw, dh) {
  const sx = src.width / dw, sy = src.height / dh;
  const out = new Uint8Array(dw * dh);
  const ix = Math.round(sx), iy = Math.round(sy);
  if (Math.abs(sx - ix) < Number.EPSILON && Math.abs(sy - iy) < Number.EPSILON) {
    // resizeAreaFast: the mean of each ix x iy cell
    const area = ix * iy;
    const scale = f32(1 / area);
    for (let y = 0; y < dh; y++) for (let x = 0; x < dw; x++) {
      let sum = 0;
      for (let r = 0; r < iy; r++) for (let c = 0; c < ix; c++) sum += src.data[(y * iy + r) * src.width + x * ix + c];
      out[y * dw + x] = area === 4 ? (sum + 2) >> 2 : saturateU8(f32(sum * scale));
    }
    return { data: out, width: dw, height: dh };
  }
  const xtab = areaTab(src.width, dw, sx), ytab = areaTab(src.height, dh, sy);
  const buf = new Float32Array(dw), sum = new Float32Array(dw);
  let prev = ytab[0][0];
  for (const [dy, syi, beta] of ytab) {
    buf.fill(0);
    const row = syi * src.width;
    for (const [dx, si, alpha] of xtab) buf[dx] = f32(buf[dx] + f32(src.data[row + si] * alpha));
    if (dy !== prev) {
      for (let dx = 0; dx < dw; dx++) { out[prev * dw + dx] = saturateU8(sum[dx]); sum[dx] = f32(beta * buf[dx]); }
      prev = dy;
    } else {
      for (let dx = 0; dx < dw; dx++) sum[dx] = f32(sum[dx] + f32(beta * buf[dx]));
    }
  }
  for (let dx = 0; dx < dw; dx++) out[prev * dw + dx] = saturateU8(sum[dx]);
  return { data: out, width: dw, height: dh };
}

// cv::resize INTER_LINEAR, 8-bit: 11-bit fixed-point weights, rows combined as OpenCV's
// vectorised VResizeLinear does ((b0 * (s0 >> 4)) >> 16) + ((b1 * (s1 >> 4)) >> 16) + 2) >> 2.
function linearTab(ssize, dsize, clamp) {
  const scale = ssize / dsize;
  const ofs = new Int32Array(dsize), a = new Int32Array(2 * dsize);
  for (let d = 0; d < dsize; d++) {
    let fx = f32((d + 0.5) * scale - 0.5);
    let sx = Math.floor(fx);
    fx = f32(fx - sx);
    if (clamp && sx < 0) { fx = 0; sx = 0; }
    if (clamp && sx >= ssize - 1) { fx = 0; sx = ssize - 1; }
    ofs[d] = sx;
    a[2 * d] = saturateShort(f32(1 - fx) * 2048);
    a[2 * d + 1] = saturateShort(fx * 2048);
  }
  return { ofs, a };
}
function saturateShort(v) { return roundHalfEven(v); }

export function resizeLinear(src, dw, dh) {
  // columns outside the image are clamped with their weight moved to the edge; rows keep their
  // weights and read the edge row (OpenCV's resizeGeneric_Invoker)
  const xt = linearTab(src.width, dw, true), yt = linearTab(src.height, dh, false);
  const out = new Uint8Array(dw * dh);
  const hrow = (sy) => {
    const row = new Int32Array(dw), base = sy * src.width;
    for (let d = 0; d < dw; d++) {
      const sx = xt.ofs[d];
      const s1 = sx + 1 < src.width ? src.data[base + sx + 1] : 0;
      row[d] = src.data[base + sx] * xt.a[2 * d] + s1 * xt.a[2 * d + 1];
    }
    return row;
  };
  for (let y = 0; y < dh; y++) {
    const sy = yt.ofs[y];
    const r0 = hrow(Math.min(Math.max(sy, 0), src.height - 1)), r1 = hrow(Math.min(Math.max(sy + 1, 0), src.height - 1));
    const b0 = yt.a[2 * y], b1 = yt.a[2 * y + 1];
    for (let d = 0; d < dw; d++) {
      const v = (((b0 * (r0[d] >> 4)) >> 16) + ((b1 * (r1[d] >> 4)) >> 16) + 2) >> 2;
      out[y * dw + d] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { data: out, width: dw, height: dh };
}

export function resizeFace(crop) {
  if (crop.width === FACE_SIZE && crop.height === FACE_SIZE) return crop;
  return Math.min(crop.width, crop.height) > FACE_SIZE
    ? resizeArea(crop, FACE_SIZE, FACE_SIZE)
    : resizeLinear(crop, FACE_SIZE, FACE_SIZE);
}

export function eyeAngle(landmarks) {
  const [[rx, ry], [lx, ly]] = landmarks;
  return (Math.atan2(ly - ry, lx - rx) * 180) / Math.PI;
}

// The side x side square at (x0, y0), edges repeated (cv2.BORDER_REPLICATE).
export function squareRegion(gray, x0, y0, side) {
  const out = new Uint8Array(side * side);
  for (let r = 0; r < side; r++) {
    const y = Math.min(Math.max(y0 + r, 0), gray.height - 1);
    for (let c = 0; c < side; c++) {
      const x = Math.min(Math.max(x0 + c, 0), gray.width - 1);
      out[r * side + c] = gray.data[y * gray.width + x];
    }
  }
  return { data: out, width: side, height: side };
}

// preprocessing.align_face (without refine_landmarks; see the top of this file).
export function alignFace(gray, box, landmarks) {
  if (!landmarks) return cropFace(gray, box);
  const angle = eyeAngle(landmarks);
  if (Math.abs(angle) < ALIGN_MIN_DEGREES) return cropFace(gray, box);
  const ex = (landmarks[0][0] + landmarks[1][0]) / 2, ey = (landmarks[0][1] + landmarks[1][1]) / 2;
  const mx = (landmarks[3][0] + landmarks[4][0]) / 2, my = (landmarks[3][1] + landmarks[4][1]) / 2;
  const distance = Math.hypot(mx - ex, my - ey);
  if (distance < 1) return cropFace(gray, box);
  const cx = ex + ((mx - ex) / distance) * ALIGN_CENTRE_DROP * distance;
  const cy = ey + ((my - ey) / distance) * ALIGN_CENTRE_DROP * distance;
  const side = ALIGN_SIDE * distance;
  const half = Math.ceil(side * 0.75) + 2;
  const x0 = Math.floor(cx) - half, y0 = Math.floor(cy) - half;
  const reg = squareRegion(gray, x0, y0, 2 * half);
  const lx = cx - x0, ly = cy - y0;
  const n = reg.width, rot = warpSquare(reg, rotationMatrix([lx, ly], angle)).data;
  const s0 = roundHalfEven(side);
  const left = roundHalfEven(lx - s0 / 2), top = roundHalfEven(ly - s0 / 2);
  const rx0 = Math.max(0, left), ry0 = Math.max(0, top);
  return resizeFace(region({ data: rot, width: n, height: n }, rx0, ry0, left + s0 - rx0, top + s0 - ry0));
}

// cv2.getRotationMatrix2D(centre, angle, 1): [a, b, tx, c, d, ty]
export function rotationMatrix([cx, cy], angle) {
  const t = (angle * Math.PI) / 180, a = Math.cos(t), b = Math.sin(t);
  return [a, b, (1 - a) * cx - b * cy, -b, a, b * cx + (1 - a) * cy];
}

// cv2.invertAffineTransform
export function invertAffine(m) {
  const det = m[0] * m[4] - m[1] * m[3];
  const i0 = m[4] / det, i1 = -m[1] / det, i3 = -m[3] / det, i4 = m[0] / det;
  return [i0, i1, -(i0 * m[2] + i1 * m[5]), i3, i4, -(i3 * m[2] + i4 * m[5])];
}

// cv2.warpAffine(square, m, (n, n), INTER_LINEAR, BORDER_REPLICATE) of a grey square, float bilinear
export function warpSquare(square, m) {
  const [i0, i1, i2, i3, i4, i5] = invertAffine(m);
  const n = square.width, out = new Uint8Array(n * n);
  const px = (x, y) => square.data[Math.min(Math.max(y, 0), n - 1) * n + Math.min(Math.max(x, 0), n - 1)];
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    const sx = i0 * x + i1 * y + i2, sy = i3 * x + i4 * y + i5;
    const xf = Math.floor(sx), yf = Math.floor(sy), fx = sx - xf, fy = sy - yf;
    const v = (px(xf, yf) * (1 - fx) + px(xf + 1, yf) * fx) * (1 - fy) + (px(xf, yf + 1) * (1 - fx) + px(xf + 1, yf + 1) * fx) * fy;
    out[y * n + x] = saturateU8(v);
  }
  return { data: out, width: n, height: n };
}

// faces.refine_landmarks, its image side: the face's box doubled into a square around its centre
// (edges repeated), looked at no larger than DETECT_MIN_SIDE. -> {view, x0, y0, scale, centre}
export const DETECT_MIN_SIDE = 240;
export const REFINE_ANGLES = [15.0, 30.0, 45.0];

export function refineRegion(gray, box) {
  const [x, y, w, h] = box.map(Math.trunc);
  const side = Math.ceil(2 * Math.max(w, h));
  const cx = x + w / 2, cy = y + h / 2;
  const x0 = roundHalfEven(cx - side / 2), y0 = roundHalfEven(cy - side / 2);
  let view = squareRegion(gray, x0, y0, side);
  const scale = Math.min(1.0, DETECT_MIN_SIDE / side);
  if (scale < 1.0) view = resizeArea(view, DETECT_MIN_SIDE, DETECT_MIN_SIDE);
  const size = view.width;
  return { view, x0, y0, scale, centre: [size / 2 - 0.5, size / 2 - 0.5] };
}

// Landmarks seen in a view turned by matrix m, back in the image's pixels.
export function turnBack(points, m, { x0, y0, scale }) {
  const b = invertAffine(m);
  return points.map(([px, py]) => [(b[0] * px + b[1] * py + b[2]) / scale + x0, (b[3] * px + b[4] * py + b[5]) / scale + y0]);
}
