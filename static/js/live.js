/*
 * Live page: camera frames -> /ws/live/ -> faces with emotions drawn over the video; or, "On this
 * device" (data-mode="device"), camera frames -> static/js/ondevice/pipeline.js in this browser
 * (the served models, checked against their cards' sha256) -> the same drawing, with no socket at
 * all; Stop and save then POSTs the emotion timeline (numbers only) to /api/v1/live-sessions/.
 *
 * Wire format (see recognition/live.py): binary messages are
 *   [kind: uint8][seq: uint32 big-endian][payload]
 * kind 1 = JPEG frame, kind 2 = PCM audio (float32 little-endian, mono, 16 kHz).
 * Text messages are JSON: we send {type: "hello", session} / {type: "stop"}; the server answers
 * ready, result, dropped, voice, error, saved.
 *
 * Flow control: at most MAX_INFLIGHT frames are unanswered at any time and each new frame is the
 * newest video image, so latency cannot build up; the server also drops a waiting frame when a
 * newer one arrives (it answers "dropped"). Labels are smoothed per face with an exponential
 * moving average over recent results so they do not flicker.
 *
 * State for people is the status line; for tests, data-* attributes on #live (see live.html).
 */
(() => {
  "use strict";

  const root = document.getElementById("live");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const video = $("live-video");
  const overlay = $("live-overlay");
  const startButton = $("live-start");
  const stopButton = $("live-stop");
  const micToggle = $("live-mic");

  const KIND_FRAME = 1;
  const KIND_PCM = 2;
  const MAX_INFLIGHT = 2;
  const MAX_FPS = Number(root.dataset.maxFps) || 30;
  const MAX_BYTES = Number(root.dataset.maxBytes) || 512 * 1024;
  const INFLIGHT_TIMEOUT_MS = 4000;
  const EMA_PROBS = 0.35; // weight of the newest result: a label needs ~3 agreeing frames to flip
  const EMA_BOX = 0.6;
  const TRACK_TTL_MS = 700; // a face not seen for this long disappears
  const PCM_RATE = 16000;
  const AUDIO_CHUNK_SECONDS = 2;
  const EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"];
  // On this device: frames analysed at the width the server analyses live frames (data-frame-width,
  // LIVE_INFER_MAX_WIDTH: the same answers as server mode, less the JPEG), kept within what the
  // browser's detector takes (a long side of 241-960 px: 320-640 here); one timeline sample kept
  // per DEVICE_SAMPLE_MS, and the caps of POST /api/v1/live-sessions/ (services.DEVICE_MAX_*):
  // when full, every other sample goes and the interval doubles.
  const DEVICE_WIDTH = Math.min(640, Math.max(320, Number(root.dataset.frameWidth) || 320));
  const DEVICE_SAMPLE_MS = 200;
  const DEVICE_MAX_SAMPLES = 7200;
  const DEVICE_MAX_FACES_PER_SAMPLE = 16;
  const DEVICE_MAX_FACES = 20000;
  const modeInputs = Array.from(document.querySelectorAll('input[name="live-mode"]'));
  const MODE_NOW = {
    server: "Now: on this server. Camera frames are sent to this site while you are live.",
    device:
      "Now: on this device. No picture or sound leaves this browser; Stop and save sends only the emotion timeline (numbers).",
  };

  const state = {
    stream: null,
    ws: null,
    wanted: false, // the person wants to be live (reconnect while true)
    ready: false, // the server answered hello on the current socket
    sessionId: null,
    seq: 0,
    inflight: new Map(), // seq -> time sent
    capturing: false,
    lastSent: 0,
    frameWidth: Number(root.dataset.frameWidth) || 320,
    quality: 0.7,
    tracks: [],
    nextTrack: 1,
    frames: 0,
    resultTimes: [],
    rtt: null,
    server: null,
    attempt: 0,
    reconnectTimer: null,
    everConnected: false,
    stopping: null,
    mic: null,
    noFaceSince: null,
    drawing: false,
    audioSeqs: new Set(), // microphone chunks not answered yet
    noticeUntil: 0,
    mode: "server", // where faces are analysed: "server" (the socket) or "device" (this browser)
    device: null, // on this device: {pipeline, manifest} once loaded (kept for the next start)
    deviceRun: null, // on this device: the running session's timeline
  };

  const capture = document.createElement("canvas");
  const captureCtx = capture.getContext("2d", { alpha: false, willReadFrequently: true });

  // --- helpers ------------------------------------------------------------------------------

  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const colours = {};
  const colour = (label) => (colours[label] ??= cssVar(`--emo-${label}`) || cssVar("--accent") || "#5b4bdb");
  const pct = (p) => `${Math.round(p * 100)}%`;
  const now = () => performance.now();

  /** A keyboard user's focus was on a control that is now disabled (Start camera once started,
   * Stop and save once saved): move it to the control that takes over, not the top of the page. */
  function keepFocus(next) {
    const active = document.activeElement;
    if (!active || active === document.body || active.disabled) next.focus();
  }

  function setState(value) {
    root.dataset.state = value;
  }

  function say(text, { html = false } = {}) {
    const el = $("live-message");
    if (html) el.innerHTML = text;
    else el.textContent = text;
  }

  /** Like say(), but leaves the line alone when it already shows this text (no churn for
   * screen readers at 30 results a second). */
  function sayOnce(text) {
    if (now() < state.noticeUntil) return;
    if ($("live-message").textContent !== text) say(text);
  }

  /** A message that routine status lines do not overwrite for a few seconds. */
  function notice(text, ms = 5000) {
    say(text);
    state.noticeUntil = now() + ms;
  }

  function wsUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${root.dataset.wsPath || "/ws/live/"}`;
  }

  function header(kind, seq, payloadBytes) {
    const out = new Uint8Array(5 + payloadBytes);
    const view = new DataView(out.buffer);
    view.setUint8(0, kind);
    view.setUint32(1, seq >>> 0, false);
    return out;
  }

  function nextSeq() {
    state.seq = (state.seq + 1) % 0xffffffff;
    return state.seq;
  }

  // --- camera -------------------------------------------------------------------------------

  function cameraError(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
      return "Camera access was blocked. Allow the camera for this site (the camera icon in the address bar), then press Start camera again.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
      return "No camera was found. Connect a camera and press Start camera again.";
    }
    if (name === "NotReadableError" || name === "TrackStartError") {
      return "The camera is busy (another application or tab may be using it). Close it and press Start camera again.";
    }
    return `The camera could not be started (${name || err}). Press Start camera to try again.`;
  }

  async function start() {
    if (state.wanted) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setState("error");
      say("This browser cannot use a camera here: the page needs a secure connection (https or localhost) and a current browser.");
      return;
    }
    startButton.disabled = true;
    state.mode = currentMode();
    lockMode(true);
    setState("starting");
    say("Asking for the camera…");
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" },
        audio: false,
      });
    } catch (err) {
      setState("error");
      say(cameraError(err));
      startButton.disabled = false;
      lockMode(false);
      keepFocus(startButton);
      return;
    }
    state.stream.getVideoTracks().forEach((track) => {
      track.addEventListener("ended", () => {
        if (!state.wanted) return;
        say("The camera stopped (unplugged or taken by another app). What was analysed so far is being saved; press Start camera to go on.");
        stop();
      });
    });
    video.srcObject = state.stream;
    try {
      await video.play();
    } catch (err) {
      /* autoplay of a muted stream is allowed; a failure here shows as no frames below */
    }
    $("live-placeholder").hidden = true;
    state.wanted = true;
    state.frames = 0;
    state.everConnected = false;
    state.attempt = 0;
    state.stopping = null;
    root.dataset.saved = "";
    $("live-saved").textContent = "";
    stopButton.disabled = false;
    micToggle.disabled = state.mode === "device"; // the voice model runs on the server only
    keepFocus(stopButton);
    if (state.mode === "device") startDevice();
    else connect();
    if (!state.drawing) {
      state.drawing = true;
      requestAnimationFrame(draw);
    }
  }

  function stopCamera() {
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
    video.srcObject = null;
    $("live-placeholder").hidden = false;
  }

  // --- socket -------------------------------------------------------------------------------

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    state.ready = false;
    state.inflight.clear();
    setState(state.everConnected ? "reconnecting" : "connecting");
    if (!state.everConnected) say("Connecting to the server…");
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (err) {
      scheduleReconnect("The connection could not be opened.");
      return;
    }
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", session: state.sessionId }));
    ws.onmessage = (event) => {
      if (ws !== state.ws) return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      handle(msg);
    };
    ws.onclose = (event) => {
      if (ws !== state.ws) return;
      state.ws = null;
      state.ready = false;
      state.inflight.clear();
      onClosed(event);
    };
  }

  function onClosed(event) {
    if (state.stopping) {
      finishStop(null);
      return;
    }
    if (!state.wanted) return;
    if (event.code === 4401) {
      state.wanted = false;
      stopCamera();
      stopMic();
      setState("error");
      say(`You are signed out. <a href="/accounts/login/?next=/live/">Sign in again</a> to go on.`, { html: true });
      startButton.disabled = false;
      stopButton.disabled = true;
      return;
    }
    if (event.code === 1009) {
      // A frame was larger than the server accepts: send smaller ones from now on.
      state.frameWidth = Math.max(160, Math.round(state.frameWidth * 0.75));
      state.quality = Math.max(0.4, state.quality - 0.1);
    }
    const why =
      event.code === 4429
        ? "The server asked us to slow down."
        : state.everConnected
          ? "The connection to the server was lost (the server may be restarting)."
          : "The server could not be reached.";
    scheduleReconnect(why);
  }

  function scheduleReconnect(why) {
    if (!state.wanted) return;
    const delay = Math.min(10000, 500 * 2 ** state.attempt) * (0.75 + Math.random() * 0.5);
    state.attempt += 1;
    setState("reconnecting");
    const until = now() + delay;
    const tick = () => {
      if (!state.wanted || state.ws) return;
      const left = Math.max(0, Math.ceil((until - now()) / 1000));
      say(`${why} Reconnecting in ${left} s… (attempt ${state.attempt})`);
    };
    tick();
    const countdown = setInterval(() => (state.ws || !state.wanted ? clearInterval(countdown) : tick()), 500);
    state.reconnectTimer = setTimeout(() => {
      clearInterval(countdown);
      if (state.wanted) connect();
    }, delay);
  }

  function handle(msg) {
    switch (msg.type) {
      case "ready": {
        const hadSession = state.sessionId !== null && state.frames > 0;
        state.ready = true;
        state.sessionId = msg.session;
        state.attempt = 0;
        if (state.stopping) {
          state.ws.send(JSON.stringify({ type: "stop" }));
          return;
        }
        setState("live");
        if (state.everConnected) root.dataset.reconnected = msg.resumed ? "resumed" : "restarted";
        if (msg.resumed) notice("Reconnected: the session goes on.");
        else if (hadSession && state.everConnected)
          notice("Reconnected. The server was restarted, so the session starts again from here.");
        else say("Live: looking for faces…");
        state.frames = msg.frames || 0;
        state.everConnected = true;
        pump();
        break;
      }
      case "result":
        onResult(msg);
        break;
      case "dropped":
        state.audioSeqs.delete(msg.seq);
        state.inflight.delete(msg.seq);
        pump();
        break;
      case "voice":
        state.audioSeqs.delete(msg.seq);
        onVoice(msg);
        break;
      case "error":
        if (msg.seq !== undefined && state.audioSeqs.delete(msg.seq)) {
          $("live-voice").textContent = msg.message || "This audio chunk could not be analysed.";
          root.dataset.voice = "error";
          break;
        }
        if (msg.seq !== undefined) state.inflight.delete(msg.seq);
        if (msg.code === "rate_limited") state.lastSent = now() + 250;
        say(msg.message || "The server could not use a message.");
        pump();
        break;
      case "saved":
        finishStop(msg);
        break;
      default:
        break;
    }
  }

  // --- frames -------------------------------------------------------------------------------

  function pump() {
    if (!state.wanted || !state.ready || !state.ws || state.stopping) return;
    if (state.capturing || state.inflight.size >= MAX_INFLIGHT) return;
    if (video.readyState < 2 || !video.videoWidth) return;
    const wait = state.lastSent + 1000 / MAX_FPS - now();
    if (wait > 0) {
      setTimeout(pump, wait);
      return;
    }
    sendFrame();
  }

  function sendFrame() {
    const width = Math.min(state.frameWidth, video.videoWidth);
    const height = Math.round((video.videoHeight * width) / video.videoWidth);
    if (capture.width !== width || capture.height !== height) {
      capture.width = width;
      capture.height = height;
    }
    captureCtx.drawImage(video, 0, 0, width, height);
    state.capturing = true;
    state.lastSent = now();
    capture.toBlob(
      async (blob) => {
        try {
          if (!blob || !state.ws || !state.ready) return;
          const ws = state.ws;
          const bytes = new Uint8Array(await blob.arrayBuffer());
          // The socket may have closed (or the session stopped) while the bytes were read.
          if (ws !== state.ws || !state.ready || state.stopping) return;
          if (bytes.length + 5 > MAX_BYTES) {
            state.quality = Math.max(0.4, state.quality - 0.1);
            return;
          }
          const seq = nextSeq();
          const message = header(KIND_FRAME, seq, bytes.length);
          message.set(bytes, 5);
          state.inflight.set(seq, now());
          ws.send(message);
        } finally {
          state.capturing = false;
          pump();
        }
      },
      "image/jpeg",
      state.quality,
    );
  }

  function onResult(msg) {
    const sentAt = state.inflight.get(msg.seq);
    state.inflight.delete(msg.seq);
    const t = now();
    if (sentAt !== undefined) {
      const rtt = t - sentAt;
      state.rtt = state.rtt === null ? rtt : state.rtt * 0.8 + rtt * 0.2;
    }
    if (msg.server_ms !== undefined) {
      state.server = state.server === null ? msg.server_ms : state.server * 0.8 + msg.server_ms * 0.2;
    }
    state.resultTimes.push(t);
    while (state.resultTimes.length && state.resultTimes[0] < t - 2000) state.resultTimes.shift();
    state.frames += 1;
    updateTracks(msg.faces || [], msg.width, msg.height, t);
    const count = (msg.faces || []).length;
    if (count === 0) {
      state.noFaceSince ??= t;
      if (t - state.noFaceSince > 800) sayOnce("No face in view: face the camera, with light on your face.");
    } else {
      state.noFaceSince = null;
      const where = state.mode === "device" ? " (analysed on this device)" : "";
      sayOnce(`Live: ${count === 1 ? "1 face" : `${count} faces`} in view${where}.`);
    }
    setState("live");
    updateStats();
    pump();
  }

  // --- smoothing ----------------------------------------------------------------------------

  function iou(a, b) {
    const x0 = Math.max(a[0], b[0]);
    const y0 = Math.max(a[1], b[1]);
    const x1 = Math.min(a[0] + a[2], b[0] + b[2]);
    const y1 = Math.min(a[1] + a[3], b[1] + b[3]);
    const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
    const union = a[2] * a[3] + b[2] * b[3] - inter;
    return union > 0 ? inter / union : 0;
  }

  function topLabel(probs) {
    let best = null;
    for (const [label, p] of Object.entries(probs)) if (best === null || p > probs[best]) best = label;
    return best;
  }

  /** Match this result's faces to the faces on screen (by overlap) and blend them in. */
  function updateTracks(faces, width, height, t) {
    const unmatched = new Set(state.tracks);
    for (const face of faces) {
      const box = [face.box[0] / width, face.box[1] / height, face.box[2] / width, face.box[3] / height];
      let best = null;
      let bestScore = 0.15;
      for (const track of unmatched) {
        const score = iou(track.box, box);
        if (score > bestScore) {
          best = track;
          bestScore = score;
        }
      }
      if (best) {
        unmatched.delete(best);
        best.box = best.box.map((v, i) => v * (1 - EMA_BOX) + box[i] * EMA_BOX);
        for (const label of Object.keys(face.probabilities)) {
          const old = best.probs[label] ?? face.probabilities[label];
          best.probs[label] = old * (1 - EMA_PROBS) + face.probabilities[label] * EMA_PROBS;
        }
        best.seen = t;
        best.small = !!face.too_small;
      } else {
        state.tracks.push({ id: state.nextTrack++, box, probs: { ...face.probabilities }, seen: t, small: !!face.too_small });
      }
    }
    state.tracks = state.tracks.filter((track) => t - track.seen <= TRACK_TTL_MS);
    state.tracks.sort((a, b) => a.box[0] - b.box[0]);
    renderFaces();
  }

  function renderFaces() {
    const list = $("live-faces");
    const labels = state.tracks.map((track) => topLabel(track.probs));
    root.dataset.labels = labels.join(",");
    root.dataset.faces = String(state.tracks.length);
    if (!state.tracks.length) {
      list.innerHTML = '<li class="muted small">No face in view.</li>';
      return;
    }
    list.innerHTML = "";
    state.tracks.forEach((track, i) => {
      const item = document.createElement("li");
      const label = labels[i];
      const shown = state.tracks.length > 2 ? 1 : 3; // keep the list short with many faces
      const ordered = Object.entries(track.probs).sort((a, b) => b[1] - a[1]).slice(0, shown);
      item.innerHTML =
        `<div class="row" style="justify-content: space-between"><strong>Face ${i + 1}</strong>` +
        (track.small
          ? '<span class="badge">too small to judge</span></div>'
          : `<span class="badge emo-${label}">${label} ${pct(track.probs[label])}</span></div>`) +
        '<div class="live-bars">' +
        ordered
          .map(
            ([name, p]) =>
              `<span class="muted">${name}</span><div class="bar emo-${name}"><span style="width:${pct(p)}"></span></div><span class="mono">${pct(p)}</span>`,
          )
          .join("") +
        "</div>";
      list.appendChild(item);
    });
  }

  function updateStats() {
    const times = state.resultTimes;
    const fps = times.length > 1 ? ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]) : 0;
    $("live-fps").textContent = `${fps.toFixed(1)} fps`;
    $("live-count").textContent = String(state.frames);
    if (state.mode === "device") {
      const ms = state.deviceRun && state.deviceRun.frameMs;
      $("live-rtt").textContent = ms ? `${Math.round(ms)} ms/frame` : "-- ms";
      $("live-latency").textContent = ms ? `${Math.round(ms)} ms` : "--";
      $("live-server").textContent = "not used";
      root.dataset.frameMs = ms ? String(Math.round(ms)) : "";
    } else {
      $("live-rtt").textContent = state.rtt === null ? "-- ms" : `${Math.round(state.rtt)} ms`;
      $("live-latency").textContent = state.rtt === null ? "--" : `${Math.round(state.rtt)} ms`;
      $("live-server").textContent = state.server === null ? "--" : `${Math.round(state.server)} ms`;
    }
    root.dataset.frames = String(state.frames);
    root.dataset.fps = fps.toFixed(1);
    root.dataset.rtt = state.rtt === null ? "" : String(Math.round(state.rtt));
  }

  // --- drawing ------------------------------------------------------------------------------

  function draw() {
    const t = now();
    // Expire stuck frames so a lost reply can never stall the stream.
    for (const [seq, sentAt] of state.inflight) if (t - sentAt > INFLIGHT_TIMEOUT_MS) state.inflight.delete(seq);
    if (state.tracks.some((track) => t - track.seen > TRACK_TTL_MS)) {
      state.tracks = state.tracks.filter((track) => t - track.seen <= TRACK_TTL_MS);
      renderFaces();
    }
    pump();

    const dpr = window.devicePixelRatio || 1;
    const cw = overlay.clientWidth;
    const ch = overlay.clientHeight;
    if (overlay.width !== Math.round(cw * dpr) || overlay.height !== Math.round(ch * dpr)) {
      overlay.width = Math.round(cw * dpr);
      overlay.height = Math.round(ch * dpr);
    }
    const ctx = overlay.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    if (vw && vh && state.stream) {
      // The video is drawn with object-fit: contain and mirrored; map boxes the same way.
      const scale = Math.min(cw / vw, ch / vh);
      const ox = (cw - vw * scale) / 2;
      const oy = (ch - vh * scale) / 2;
      const W = vw * scale;
      const H = vh * scale;
      for (const track of state.tracks) {
        const [nx, ny, nw, nh] = track.box;
        const x = ox + (1 - nx - nw) * W;
        const y = oy + ny * H;
        const w = nw * W;
        const h = nh * H;
        const label = topLabel(track.probs);
        const c = colour(label);
        ctx.lineWidth = 3;
        ctx.strokeStyle = c;
        ctx.strokeRect(x, y, w, h);
        const text = track.small ? "too small to judge" : `${label} ${pct(track.probs[label])}`;
        ctx.font = "600 15px system-ui, sans-serif";
        const tw = ctx.measureText(text).width + 12;
        const ty = y > 26 ? y - 24 : y + h + 10;
        ctx.fillStyle = c;
        ctx.fillRect(x - 1.5, ty, tw, 22);
        ctx.fillStyle = "#fff";
        ctx.fillText(text, x + 4.5, ty + 16);
        // Probability bar: every emotion's share, in its colour, under the box.
        let bx = x;
        const by = Math.min(y + h + 4, ch - 8);
        const order = EMOTIONS.filter((e) => e in track.probs).concat(
          Object.keys(track.probs).filter((e) => !EMOTIONS.includes(e)),
        );
        const total = order.reduce((s, e) => s + track.probs[e], 0) || 1;
        for (const e of order) {
          const bw = (w * track.probs[e]) / total;
          ctx.fillStyle = colour(e);
          ctx.fillRect(bx, by, bw, 6);
          bx += bw;
        }
      }
    }
    if (state.stream || state.tracks.length) requestAnimationFrame(draw);
    else state.drawing = false;
  }

  // --- microphone ---------------------------------------------------------------------------

  // The audio worklet (static/js/live-tap.js): a static file, as the Content-Security-Policy wants.
  const WORKLET_URL = root.dataset.workletUrl || "/static/js/live-tap.js";

  function resample(samples, from) {
    if (from === PCM_RATE) return samples;
    const out = new Float32Array(Math.floor((samples.length * PCM_RATE) / from));
    const step = from / PCM_RATE;
    for (let i = 0; i < out.length; i++) {
      const pos = i * step;
      const i0 = Math.floor(pos);
      const i1 = Math.min(i0 + 1, samples.length - 1);
      out[i] = samples[i0] + (samples[i1] - samples[i0]) * (pos - i0);
    }
    return out;
  }

  async function startMic() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
      });
    } catch (err) {
      micToggle.checked = false;
      const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      $("live-voice").textContent = denied
        ? "Microphone access was blocked. Allow it for this site and turn the microphone on again."
        : "No microphone could be opened.";
      return;
    }
    let ctx;
    try {
      ctx = new AudioContext({ sampleRate: PCM_RATE });
    } catch (err) {
      ctx = new AudioContext(); // resampled below
    }
    const source = ctx.createMediaStreamSource(stream);
    const mute = ctx.createGain();
    mute.gain.value = 0;
    const chunk = new Float32Array(PCM_RATE * AUDIO_CHUNK_SECONDS);
    const mic = { stream, ctx, source, mute, node: null, chunk, filled: 0 };
    const onSamples = (samples) => {
      const pcm = resample(samples, ctx.sampleRate);
      let offset = 0;
      while (offset < pcm.length) {
        const n = Math.min(pcm.length - offset, chunk.length - mic.filled);
        chunk.set(pcm.subarray(offset, offset + n), mic.filled);
        mic.filled += n;
        offset += n;
        if (mic.filled === chunk.length) {
          sendAudio(chunk);
          mic.filled = 0;
        }
      }
    };
    try {
      await ctx.audioWorklet.addModule(WORKLET_URL);
      mic.node = new AudioWorkletNode(ctx, "live-tap");
      mic.node.port.onmessage = (event) => onSamples(event.data);
    } catch (err) {
      mic.node = ctx.createScriptProcessor(4096, 1, 1); // older browsers
      mic.node.onaudioprocess = (event) => onSamples(event.inputBuffer.getChannelData(0).slice(0));
    }
    source.connect(mic.node);
    mic.node.connect(mute);
    mute.connect(ctx.destination);
    state.mic = mic;
    $("live-voice").textContent = "Listening… (the first result comes after 2 seconds)";
    root.dataset.voice = "listening";
  }

  function stopMic() {
    const mic = state.mic;
    state.mic = null;
    micToggle.checked = false;
    if (!mic) return;
    mic.stream.getTracks().forEach((t) => t.stop());
    try {
      mic.source.disconnect();
      mic.node.disconnect();
      mic.ctx.close();
    } catch (err) {
      /* already closed */
    }
    root.dataset.voice = "";
  }

  function sendAudio(samples) {
    if (!state.ws || !state.ready || state.stopping) return;
    const seq = nextSeq();
    state.audioSeqs.add(seq);
    if (state.audioSeqs.size > 20) state.audioSeqs.delete(state.audioSeqs.values().next().value);
    const message = header(KIND_PCM, seq, samples.length * 4);
    const view = new DataView(message.buffer);
    for (let i = 0; i < samples.length; i++) view.setFloat32(5 + i * 4, samples[i], true);
    state.ws.send(message);
  }

  function onVoice(msg) {
    const el = $("live-voice");
    if (!msg.speech || !msg.emotion) {
      el.innerHTML = '<span class="muted">No speech heard in the last 2 seconds.</span>';
      root.dataset.voice = "silence";
      return;
    }
    const top = Object.entries(msg.probabilities || {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
    el.innerHTML =
      `<span class="live-voice-label" style="color: ${colour(msg.emotion)}">${msg.emotion}</span> ` +
      `<span class="muted">${pct(msg.confidence || 0)}</span><div class="live-bars" style="margin-top: 0.4rem">` +
      top
        .map(
          ([name, p]) =>
            `<span class="muted">${name}</span><div class="bar emo-${name}"><span style="width:${pct(p)}"></span></div><span class="mono">${pct(p)}</span>`,
        )
        .join("") +
      "</div>";
    root.dataset.voice = msg.emotion;
  }

  // --- stop and save ------------------------------------------------------------------------

  function stop() {
    if (!state.wanted || state.stopping) return;
    stopButton.disabled = true;
    micToggle.disabled = true;
    stopMic();
    if (state.mode === "device") {
      stopDevice();
      return;
    }
    state.stopping = { timer: setTimeout(() => finishStop(null), 8000) };
    say("Saving the session…");
    if (state.ws && state.ready) state.ws.send(JSON.stringify({ type: "stop" }));
    else if (!state.ws) connect(); // "ready" on the new socket sends the stop
  }

  function finishStop(msg) {
    if (!state.stopping) return;
    clearTimeout(state.stopping.timer);
    clearTimeout(state.reconnectTimer);
    state.stopping = null;
    state.wanted = false;
    state.ready = false;
    stopCamera();
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close(1000);
    state.sessionId = null;
    state.deviceRun = null;
    state.tracks = [];
    renderFaces();
    startButton.disabled = false;
    stopButton.disabled = true;
    lockMode(false);
    keepFocus(startButton);
    setState("stopped");
    if (msg && msg.id) {
      root.dataset.saved = String(msg.id);
      say(`Saved to your history. <a href="${msg.url}">Open the session</a> or <a href="${root.dataset.historyUrl}">see all analyses</a>.`, { html: true });
      const s = msg.summary || {};
      $("live-saved").textContent = `Saved: ${Math.round(s.duration || 0)} s, ${s.frames || 0} frames${s.emotion ? `, mostly ${s.emotion}` : ""}.`;
    } else if (msg) {
      say(msg.message || "Stopped.");
    } else {
      say("Stopped. The server did not confirm the save; what was analysed is saved to your history automatically within a minute.");
    }
  }


  // --- on this device -----------------------------------------------------------------------

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function currentMode() {
    const checked = modeInputs.find((input) => input.checked);
    return checked ? checked.value : "server";
  }

  /** The mode is chosen before starting: the radios are locked while live. */
  function lockMode(locked) {
    for (const input of modeInputs) input.disabled = locked || input.dataset.unavailable === "1";
  }

  function showMode() {
    const mode = currentMode();
    root.dataset.mode = mode;
    $("live-mode-now").textContent = MODE_NOW[mode];
    $("live-latency-label").textContent = mode === "device" ? "Per frame" : "Round trip";
  }

  function csrfToken() {
    const field = root.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  /** The served files (manifest from data-models-url), each refused unless its bytes have the
   * card's sha256 (pipeline.fetchVerified), then compiled by onnxruntime-web (WebAssembly). */
  async function loadDevice(module) {
    const response = await fetch(root.dataset.modelsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      throw new Error(response.status === 503 ? "This server cannot offer its face models right now." : `The list of models could not be loaded (HTTP ${response.status}).`);
    }
    const manifest = await response.json();
    const pipeline = await module.FacePipeline.load({
      detector: { url: manifest.detector.url, sha256: manifest.detector.sha256 },
      card: { classes: manifest.model.classes, tta: manifest.model.tta, temperature: manifest.model.temperature },
      members: manifest.members.map((m) => ({ url: m.url, sha256: m.sha256, temperature: m.temperature })),
    });
    return { pipeline, manifest };
  }

  /** On this device it cannot go on: say why, release the camera, nothing is sent or saved. */
  function deviceFailed(message, code) {
    state.wanted = false;
    state.deviceRun = null;
    stopCamera();
    state.tracks = [];
    renderFaces();
    setState("error");
    root.dataset.deviceError = code;
    say(message);
    startButton.disabled = false;
    stopButton.disabled = true;
    lockMode(false);
    keepFocus(startButton);
  }

  async function startDevice() {
    setState("loading");
    say("Loading the face models into this browser (downloaded once, then kept by the browser)…");
    root.dataset.deviceError = "";
    let module;
    try {
      module = await import(root.dataset.pipelineUrl);
      if (!state.device) state.device = await loadDevice(module);
    } catch (err) {
      if (module && err instanceof module.ModelIntegrityError) {
        deviceFailed(
          "A downloaded model file is not the one this site's model card describes (its SHA-256 differs), so it was refused and nothing was analysed. Reload the page to try again, or choose On this server.",
          "integrity",
        );
      } else {
        deviceFailed(`The face models could not be loaded on this device (${(err && err.message) || err}). Choose On this server, or reload the page to try again.`, "load");
      }
      return;
    }
    if (!state.wanted || state.stopping) return;
    // one FaceTracks per session: frames are handled as the server handles a live session's
    // (turned detector views where a track needs them, a tilted face refined once per tilt)
    state.deviceRun = { startedAt: new Date(), t0: now(), samples: [], faces: 0, interval: DEVICE_SAMPLE_MS, lastSample: -Infinity, frameMs: null, tracks: new module.FaceTracks() };
    state.everConnected = true;
    setState("live");
    say("Live on this device: looking for faces…");
    deviceLoop(state.deviceRun);
  }

  async function deviceLoop(run) {
    const { pipeline } = state.device;
    while (state.wanted && state.deviceRun === run && !state.stopping) {
      if (video.readyState < 2 || !video.videoWidth) {
        await sleep(50);
        continue;
      }
      const wait = state.lastSent + 1000 / MAX_FPS - now();
      if (wait > 0) await sleep(wait);
      state.lastSent = now();
      const width = Math.min(DEVICE_WIDTH, video.videoWidth);
      const height = Math.round((video.videoHeight * width) / video.videoWidth);
      if (capture.width !== width || capture.height !== height) {
        capture.width = width;
        capture.height = height;
      }
      captureCtx.drawImage(video, 0, 0, width, height);
      const image = captureCtx.getImageData(0, 0, width, height);
      const started = now();
      let faces;
      try {
        faces = await pipeline.run(image, run.tracks);
      } catch (err) {
        deviceFailed(`Analysing on this device failed (${(err && err.message) || err}). Choose On this server to go on.`, "run");
        return;
      }
      if (state.deviceRun !== run || state.stopping) return;
      const ms = now() - started;
      run.frameMs = run.frameMs === null ? ms : run.frameMs * 0.8 + ms * 0.2;
      recordSample(run, faces);
      onResult({ faces, width, height });
      await sleep(0); // let the page draw and answer between frames
    }
  }

  /** Keep one sample of the faces per interval: times, boxes and probabilities, nothing else. */
  function recordSample(run, faces) {
    const t = now() - run.t0;
    if (t - run.lastSample < run.interval) return;
    run.lastSample = t;
    const classes = state.device.manifest.model.classes;
    const kept = faces.slice(0, DEVICE_MAX_FACES_PER_SAMPLE).map((face) => ({
      box: face.box.map((v) => Math.max(0, Math.round(v))),
      probabilities: classes.map((c) => Math.round(face.probabilities[c] * 1e5) / 1e5),
      too_small: Boolean(face.too_small),
    }));
    run.samples.push({ t: Math.round(t) / 1000, faces: kept });
    run.faces += kept.length;
    while (run.samples.length >= DEVICE_MAX_SAMPLES || run.faces > DEVICE_MAX_FACES) {
      run.samples = run.samples.filter((_, i) => i % 2 === 0);
      run.faces = run.samples.reduce((n, sample) => n + sample.faces.length, 0);
      run.interval *= 2;
    }
  }

  /** Stop and save on this device: the timeline, numbers only, to the API (session + CSRF). */
  async function stopDevice() {
    const run = state.deviceRun;
    state.stopping = { timer: null };
    if (!run || !state.device) {
      finishStop({ message: "Stopped before anything was analysed; nothing was saved." });
      return;
    }
    say("Saving the session (only the emotion timeline is sent)…");
    const last = run.samples.length ? run.samples[run.samples.length - 1].t : 0;
    const body = {
      model: { name: state.device.manifest.model.name, version: state.device.manifest.model.version },
      started: run.startedAt.toISOString(),
      duration: Math.max(last, Math.ceil((now() - run.t0) / 10) / 100),
      samples: run.samples,
    };
    let msg;
    try {
      const response = await fetch(root.dataset.saveUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.status === 201) msg = answer;
      else if (response.status === 401 || response.status === 403) msg = { message: "You are signed out, so the session could not be saved. Sign in again and start a new session." };
      else msg = { message: `The session could not be saved: ${(answer.error && answer.error.message) || `HTTP ${response.status}`}` };
    } catch (err) {
      msg = { message: "The session could not be saved: the server could not be reached." };
    }
    finishStop(msg);
  }

  // --- wiring -------------------------------------------------------------------------------

  for (const input of modeInputs) {
    if (input.disabled) input.dataset.unavailable = "1";
    input.addEventListener("change", showMode);
  }
  showMode();
  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", stop);
  micToggle.addEventListener("change", () => (micToggle.checked ? startMic() : stopMic()));
  window.addEventListener("pagehide", () => {
    if (state.ws) state.ws.close(1000);
  });
  if (new URLSearchParams(location.search).has("autostart")) start();
})();
