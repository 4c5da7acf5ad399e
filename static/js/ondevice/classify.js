// The live face model in the browser, as registry.EnsembleModel.predict serves it: each 48x48
// grey crop scaled to [0, 1] (preprocessing.faces_to_input) and its mirror image (test-time view
// "hflip") through the member network, each output calibrated by the member's temperature,
// averaged over views (and members), renormalised, then the ensemble card's temperature.

export const FACE_SIZE = 48;

// registry.apply_temperature: softmax(log(clip(p, 1e-12, 1)) / T)
export function applyTemperature(p, temperature) {
  const logp = Array.from(p, (v) => Math.log(Math.min(Math.max(v, 1e-12), 1)) / temperature);
  const top = Math.max(...logp);
  const e = logp.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

export class FaceClassifier {
  // members: [{session, temperature}], card: the ensemble card (classes, tta, temperature)
  constructor(ort, members, card) {
    this.ort = ort;
    this.members = members;
    this.classes = card.classes;
    this.tta = card.tta || [];
    this.temperature = card.temperature ?? 1.0;
    for (const view of this.tta) if (view !== 'hflip') throw new Error(`test-time view ${view} is not supported on the device`);
  }

  // crops: [{data: Uint8Array(48*48)}] -> [[p per class]]
  async predict(crops) {
    const n = crops.length;
    if (!n) return [];
    const views = this.tta.includes('hflip') ? 2 : 1;
    const size = FACE_SIZE * FACE_SIZE;
    const x = new Float32Array(views * n * size);
    crops.forEach((crop, i) => {
      for (let k = 0; k < size; k++) x[i * size + k] = crop.data[k] / 255;
      if (views === 2) {
        for (let r = 0; r < FACE_SIZE; r++) for (let c = 0; c < FACE_SIZE; c++) {
          x[(n + i) * size + r * FACE_SIZE + c] = crop.data[r * FACE_SIZE + FACE_SIZE - 1 - c] / 255;
        }
      }
    });
    const classes = this.classes.length;
    const total = Array.from({ length: views * n }, () => new Float64Array(classes));
    for (const member of this.members) {
      const input = new this.ort.Tensor('float32', x, [views * n, FACE_SIZE, FACE_SIZE, 1]);
      const out = await member.session.run({ [member.session.inputNames[0]]: input });
      const raw = out[member.session.outputNames[0]].data;
      for (let v = 0; v < views * n; v++) {
        const p = applyTemperature(raw.subarray(v * classes, (v + 1) * classes), member.temperature).map(Math.fround);
        for (let c = 0; c < classes; c++) total[v][c] += p[c];
      }
    }
    const result = [];
    for (let i = 0; i < n; i++) {
      const mean = new Float64Array(classes);
      for (let v = 0; v < views; v++) for (let c = 0; c < classes; c++) mean[c] += total[v * n + i][c] / this.members.length / views;
      const sum = mean.reduce((a, b) => a + b, 0);
      result.push(applyTemperature(mean.map((m) => m / sum), this.temperature));
    }
    return result;
  }
}
