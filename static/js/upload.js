/* Upload page: drag-and-drop or choose, one XHR per file with a progress bar, then the
 * analysis status live (websocket, polling fallback) until the result is ready. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("upload-config").textContent);
  const form = document.getElementById("upload-form");
  const input = document.getElementById("id_files");
  const list = document.getElementById("upload-list");
  const empty = document.getElementById("upload-empty");
  const summary = document.getElementById("upload-summary");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const rows = new Map(); // analysis id -> row element
  const queue = [];
  let active = 0;
  const PARALLEL = 2;
  const STATUS_TEXT = { queued: "Queued", running: "Analysing…", done: "Done", failed: "Failed" };

  const status = EmotionStatus.subscribe({ statusUrl: config.statusUrl, onUpdate: showStatus });

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function humanSize(n) {
    return n < 1024 * 1024 ? `${Math.max(1, Math.round(n / 1024))} KB` : `${(n / 1048576).toFixed(1)} MB`;
  }

  function addRow(file) {
    empty.hidden = true;
    const li = el("li", "upload-item");
    const head = el("div", "upload-head");
    const name = el("span", "upload-name", file.name);
    const size = el("span", "muted small", humanSize(file.size));
    const badge = el("span", "badge badge-muted", "Waiting");
    head.append(name, size, badge);
    const bar = el("div", "bar upload-bar");
    const fill = el("span");
    fill.style.width = "0%";
    bar.append(fill);
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-label", `Upload progress of ${file.name}`);
    const detail = el("div", "upload-detail small muted");
    li.append(head, bar, detail);
    list.prepend(li);
    return { li, badge, fill, bar, detail };
  }

  function setBadge(row, text, cls) {
    row.badge.className = `badge ${cls}`;
    row.badge.textContent = text;
  }

  function setProgress(row, fraction) {
    const p = Math.round(fraction * 100);
    row.fill.style.width = `${p}%`;
    row.bar.setAttribute("aria-valuenow", String(p));
  }

  function fail(row, message) {
    setBadge(row, "Refused", "badge-error");
    row.li.classList.add("is-error");
    row.bar.hidden = true;
    row.detail.textContent = message;
    row.detail.classList.remove("muted");
    row.detail.classList.add("error-text");
    updateSummary();
  }

  function enqueue(files) {
    for (const file of files) {
      const row = addRow(file);
      if (file.size === 0) { fail(row, "The file is empty."); continue; }
      if (file.size > config.maxBytes) {
        fail(row, `The file is too large (${humanSize(file.size)}); the limit is ${humanSize(config.maxBytes)}. ` +
          "Upload a smaller file: a shorter recording or video, or a photo saved at a lower resolution.");
        continue;
      }
      queue.push({ file, row });
    }
    pump();
  }

  function pump() {
    while (active < PARALLEL && queue.length) {
      const job = queue.shift();
      active++;
      send(job).finally(() => { active--; pump(); });
    }
    updateSummary();
  }

  function send({ file, row }) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      const data = new FormData();
      data.append("file", file, file.name);
      xhr.open("POST", config.uploadUrl);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      setBadge(row, "Uploading", "badge-info");
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) setProgress(row, e.loaded / e.total); };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 201 && body.analysis) {
          setProgress(row, 1);
          row.li.dataset.analysisId = body.analysis.id;
          rows.set(body.analysis.id, row);
          showStatus(body.analysis); // on the embedded default it is often already done
          if (!EmotionStatus.FINAL.has(body.analysis.status)) status.watch(body.analysis.id);
        } else if (xhr.status === 403) {
          fail(row, "Your session has expired. Reload the page and sign in again.");
        } else {
          fail(row, body.error || `The upload failed (HTTP ${xhr.status}).`);
        }
        resolve();
      };
      xhr.onerror = () => { fail(row, "The upload was interrupted. Check your connection and try again."); resolve(); };
      xhr.send(data);
    });
  }

  function showStatus(msg) {
    const row = rows.get(msg.id);
    if (!row) return;
    const cls = { queued: "badge-muted", running: "badge-info", done: "badge-success", failed: "badge-error" }[msg.status];
    setBadge(row, STATUS_TEXT[msg.status] || msg.status, cls || "badge-muted");
    row.li.dataset.status = msg.status;
    row.detail.replaceChildren();
    row.detail.classList.remove("error-text");
    if (msg.status === "done") {
      row.bar.hidden = true;
      const link = el("a", "", "See the result →");
      link.href = msg.url;
      if (msg.emotion) {
        const emo = el("span", `badge emo-${msg.emotion}`, msg.emotion);
        const conf = el("span", "muted", ` ${Emotions.pct(msg.confidence)}`);
        const faces = msg.kind === "image" ? el("span", "muted", ` · ${msg.face_count} face${msg.face_count === 1 ? "" : "s"} · `) : el("span", "muted", " · ");
        row.detail.append(emo, conf, faces, link);
      } else {
        const none = el("span", "", {
          image: "No face found: try a well-lit photo with faces turned to the camera · ",
          audio: "No speech heard: record again close to the microphone · ",
        }[msg.kind] || "Nothing to show · ");
        row.detail.append(none, link);
      }
    } else if (msg.status === "failed") {
      row.bar.hidden = true;
      row.li.classList.add("is-error");
      row.detail.classList.add("error-text");
      row.detail.textContent = msg.error || "The analysis failed.";
    } else {
      row.detail.textContent = msg.status === "running"
        ? `Looking for emotions… ${msg.progress > 10 ? `${msg.progress}%` : ""}`
        : "Waiting for a worker…";
    }
    updateSummary();
  }

  function updateSummary() {
    const items = list.querySelectorAll(".upload-item");
    const done = list.querySelectorAll('.upload-item[data-status="done"]').length;
    summary.textContent = items.length ? `${done} of ${items.length} analysed` : "";
  }

  input.addEventListener("change", () => { enqueue([...input.files]); input.value = ""; });
  form.addEventListener("submit", (e) => { e.preventDefault(); enqueue([...input.files]); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => form.addEventListener(t, (e) => {
    e.preventDefault();
    form.classList.add("is-dragover");
  }));
  ["dragleave", "drop"].forEach((t) => form.addEventListener(t, (e) => {
    e.preventDefault();
    if (t === "dragleave" && form.contains(e.relatedTarget)) return;
    form.classList.remove("is-dragover");
  }));
  form.addEventListener("drop", (e) => { if (e.dataTransfer && e.dataTransfer.files.length) enqueue([...e.dataTransfer.files]); });
  // A click anywhere on the drop zone opens the file chooser (the label covers the link text).
  form.addEventListener("click", (e) => { if (e.target === form || e.target.classList.contains("dropzone-inner")) input.click(); });
})();
