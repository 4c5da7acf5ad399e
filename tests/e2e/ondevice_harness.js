// Driven by tests/e2e/test_ondevice_parity.py and benchmarks/bench_ondevice.py through playwright.
import { FacePipeline, ModelIntegrityError, fetchVerified } from '/static/js/ondevice/pipeline.js';
import { FaceTracks } from '/static/js/ondevice/tracking.js';

let pipeline = null;

async function frames(url, width, height) {
  const bytes = new Uint8ClampedArray(await (await fetch(url)).arrayBuffer());
  const size = width * height * 4;
  const out = [];
  for (let o = 0; o + size <= bytes.length; o += size) out.push({ data: bytes.subarray(o, o + size), width, height });
  return out;
}

window.ondevice = {
  async load(config) {
    pipeline = await FacePipeline.load(config);
    return true;
  },
  // every frame of the raw RGBA file at url through the pipeline
  async run(url, width, height) {
    const results = [];
    for (const frame of await frames(url, width, height)) results.push(await pipeline.run(frame));
    return results;
  },
  // the frames at url as one live session (one FaceTracks), in order; with the session's
  // refinement counts
  async runTracked(url, width, height) {
    const tracks = new FaceTracks();
    const results = [];
    for (const frame of await frames(url, width, height)) results.push(await pipeline.run(frame, tracks));
    return { results, refined: tracks.memory.refined, reused: tracks.memory.reused };
  },
  // ms per frame over `repeat` passes (after one warm-up pass) of the frames at url; `tracked`:
  // as one live session (a FaceTracks across all passes), the way the live page runs
  async bench(url, width, height, repeat, tracked = false) {
    const list = await frames(url, width, height);
    const tracks = tracked ? new FaceTracks() : null;
    for (const frame of list) await pipeline.run(frame, tracks);
    const started = performance.now();
    let faces = 0;
    for (let r = 0; r < repeat; r++) for (const frame of list) faces += (await pipeline.run(frame, tracks)).length;
    return { ms: (performance.now() - started) / (repeat * list.length), faces: faces / (repeat * list.length) };
  },
  async verify(url, sha256) {
    try {
      await fetchVerified(url, sha256);
      return 'accepted';
    } catch (error) {
      return error instanceof ModelIntegrityError ? `refused: ${error.message}` : `error: ${error.message}`;
    }
  },
  async loadFails(config) {
    try {
      await FacePipeline.load(config);
      return 'loaded';
    } catch (error) {
      return error instanceof ModelIntegrityError ? 'refused' : `error: ${error.message}`;
    }
  },
};
document.documentElement.dataset.ready = '1';
