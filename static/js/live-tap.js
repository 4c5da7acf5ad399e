/* Audio worklet of the live page's microphone (static/js/live.js loads it with
 * audioWorklet.addModule): passes 4096-sample blocks of the input to the page. A static file,
 * not a blob: URL, so the Content-Security-Policy's script-src 'self' allows it. */
class LiveTap extends AudioWorkletProcessor {
  constructor() { super(); this.buf = new Float32Array(4096); this.n = 0; }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) {
      for (let i = 0; i < ch.length; i++) {
        this.buf[this.n++] = ch[i];
        if (this.n === this.buf.length) { this.port.postMessage(this.buf.slice(0)); this.n = 0; }
      }
    }
    return true;
  }
}
registerProcessor("live-tap", LiveTap);
