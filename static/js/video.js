/* Video result: face boxes drawn over the player at the current time, face / voice / fused
 * strips and a fused-probability chart that seek the video when clicked, a playhead on the
 * strips, and people (tracks) that jump to their first appearance.
 * Data: the analysis result in #video-result (see recognition/inference/video.py). */
(function () {
  "use strict";
  const player = document.getElementById("video-player");
  const unplayable = document.getElementById("video-unplayable");
  if (player && unplayable) {
    player.addEventListener("error", () => { unplayable.hidden = false; });
  }
  const dataNode = document.getElementById("video-result");
  if (!player || !dataNode) return;
  const result = JSON.parse(dataNode.textContent);
  const timeline = Array.isArray(result.timeline) ? result.timeline : [];
  const step = 1 / (Number(result.sample_fps) || 4);
  const duration = Math.max(Number(result.duration) || 0, timeline.length ? timeline[timeline.length - 1].t + step : 0);
  const canvas = document.getElementById("video-overlay");
  const now = document.getElementById("video-now");
  const color = (label, alpha) => (window.Emotions ? Emotions.color(label, alpha) : "#5b4bdb");
  const pct = (p) => `${Math.round((Number(p) || 0) * 100)}%`;

  function seek(t) {
    player.currentTime = Math.max(0, Math.min(Number(t) || 0, duration));
    player.play().catch(() => {});
  }

  // The timeline entry shown at time t: the last sample at or before t (the first before any).
  function pointAt(t) {
    let lo = 0;
    let hi = timeline.length - 1;
    if (hi < 0) return null;
    if (t <= timeline[0].t) return timeline[0];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (timeline[mid].t <= t + 1e-3) lo = mid; else hi = mid - 1;
    }
    return timeline[lo];
  }

  // --- boxes over the player -------------------------------------------------------------
  function drawBoxes() {
    if (!canvas) return;
    const rect = player.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(rect.width * dpr);
    const h = Math.round(rect.height * dpr);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    const point = pointAt(player.currentTime);
    updateNow(point);
    if (!point || !point.faces || !point.faces.length) return;
    const srcW = player.videoWidth || result.width;
    const srcH = player.videoHeight || result.height;
    if (!srcW || !srcH) return;
    // object-fit: contain -> letterboxing; boxes are in the analysed (upright) frame's pixels.
    const scale = Math.min(w / srcW, h / srcH);
    const offX = (w - srcW * scale) / 2;
    const offY = (h - srcH * scale) / 2;
    const k = scale * (srcW / (result.width || srcW));
    const font = Math.max(11, Math.round(12 * dpr));
    ctx.font = `700 ${font}px system-ui, sans-serif`;
    ctx.lineWidth = Math.max(2, 2 * dpr);
    point.faces.forEach((f) => {
      const [x, y, bw, bh] = f.box;
      const X = offX + x * k;
      const Y = offY + y * k;
      const c = color(f.emotion);
      ctx.strokeStyle = c;
      ctx.strokeRect(X, Y, bw * k, bh * k);
      const label = `${f.track} ${f.emotion} ${pct(f.confidence)}`;
      const tw = ctx.measureText(label).width + font * 0.7;
      const th = font * 1.45;
      const ty = Y - th >= 0 ? Y - th : Y + bh * k;
      const tx = Math.max(0, Math.min(X, w - tw)); // labels stay inside the picture
      ctx.fillStyle = c;
      ctx.fillRect(tx, ty, tw, th);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, tx + font * 0.35, ty + th * 0.72);
    });
  }

  function updateNow(point) {
    if (!now) return;
    if (!point) { now.textContent = ""; return; }
    const parts = [`${player.currentTime.toFixed(1)} s`];
    parts.push(point.fused ? `fused: ${point.fused.emotion} ${pct(point.fused.confidence)}` : "no face or speech");
    parts.push(point.voice ? `voice: ${point.voice.emotion} ${pct(point.voice.confidence)}` : "voice: –");
    parts.push(`${point.faces.length} face${point.faces.length === 1 ? "" : "s"}`);
    now.textContent = parts.join(" · ");
  }

  let frameRequest = 0;
  function loop() {
    drawBoxes();
    movePlayhead();
    frameRequest = player.paused || player.ended ? 0 : requestAnimationFrame(loop);
  }
  player.addEventListener("play", () => { if (!frameRequest) frameRequest = requestAnimationFrame(loop); });
  ["seeked", "loadeddata", "timeupdate", "pause"].forEach((e) => player.addEventListener(e, () => { drawBoxes(); movePlayhead(); }));
  window.addEventListener("resize", drawBoxes);

  // --- strips ------------------------------------------------------------------------------
  const strips = document.querySelectorAll("#video-strips .timeline-strip");
  const heads = [];
  function faceLabel(point) {
    if (!point.faces.length) return null;
    const largest = point.faces.reduce((a, b) => (a.box[2] * a.box[3] >= b.box[2] * b.box[3] ? a : b));
    return { emotion: largest.emotion, confidence: largest.confidence };
  }
  const pick = {
    face: faceLabel,
    voice: (p) => p.voice,
    fused: (p) => p.fused,
  };
  strips.forEach((strip) => {
    const source = strip.dataset.source;
    if (!duration) return;
    timeline.forEach((point) => {
      const found = pick[source](point);
      const seg = document.createElement("button");
      seg.type = "button";
      seg.className = `timeline-seg emo-${found ? found.emotion : "none"}`;
      seg.style.left = `${(100 * point.t) / duration}%`;
      seg.style.width = `${(100 * step) / duration}%`;
      const text = `${point.t.toFixed(1)} s: ${found ? `${found.emotion} ${pct(found.confidence)}` : source === "voice" ? "no speech" : "nothing"}`;
      seg.title = text;
      seg.setAttribute("aria-label", `${source} ${text}`);
      seg.addEventListener("click", () => seek(point.t));
      strip.appendChild(seg);
    });
    const head = document.createElement("span");
    head.className = "playhead";
    strip.appendChild(head);
    heads.push(head);
  });
  function movePlayhead() {
    if (!duration) return;
    const left = `${Math.min(100, (100 * player.currentTime) / duration)}%`;
    heads.forEach((h) => { h.style.left = left; });
  }

  document.querySelectorAll("[data-seek]").forEach((b) => b.addEventListener("click", () => seek(b.dataset.seek)));

  // --- chart -------------------------------------------------------------------------------
  function drawChart() {
    const chartCanvas = document.getElementById("video-chart");
    if (!chartCanvas || !window.Chart || !window.Emotions || !timeline.length) return;
    const labels = (result.fusion && result.fusion.labels) || Object.keys((timeline.find((p) => p.fused) || {}).fused?.probabilities || {});
    Emotions.probabilityChart(chartCanvas, {
      labels,
      xs: timeline.map((p) => p.t.toFixed(1)),
      rows: timeline.map((p) => (p.fused ? p.fused.probabilities : null)),
      pointRadius: 1.5,
      onPick: (i) => seek(timeline[i].t),
    });
  }
  drawChart();
  drawBoxes();
  movePlayhead();
})();
