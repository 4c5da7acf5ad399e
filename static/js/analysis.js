/* Result page: follow a pending analysis until it finishes (then reload), highlight a face on
 * hover/focus, and draw the voice timeline chart (Chart.js) with click-to-seek. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("analysis-config").textContent);

  if (config.status === "queued" || config.status === "running") {
    const text = document.getElementById("pending-text");
    EmotionStatus.subscribe({
      statusUrl: config.statusUrl,
      ids: [config.id],
      onUpdate(msg) {
        if (msg.id !== config.id) return;
        if (msg.status === "done" || msg.status === "failed") location.reload();
        else if (text) text.textContent = msg.status === "running" ? `Analysing… ${msg.progress || 0}%` : "Waiting for a worker…";
      },
    });
  }

  // Faces: highlighting a card highlights its box and the other way round.
  function highlight(n, on) {
    document.querySelectorAll(`[data-face="${n}"]`).forEach((e) => e.classList.toggle("is-active", on));
  }
  document.querySelectorAll("[data-face]").forEach((e) => {
    const n = e.dataset.face;
    ["mouseenter", "focus"].forEach((t) => e.addEventListener(t, () => highlight(n, true)));
    ["mouseleave", "blur"].forEach((t) => e.addEventListener(t, () => highlight(n, false)));
  });

  // Voice: timeline segments seek the player; the chart shows each emotion's probability.
  const player = document.getElementById("player");
  document.querySelectorAll(".timeline-seg").forEach((seg) => seg.addEventListener("click", () => {
    if (!player) return;
    player.currentTime = Number(seg.dataset.start) || 0;
    player.play().catch(() => {});
  }));

  // The chart runs from 0 to the end of the recording, one flat span per window.
  const canvas = document.getElementById("timeline-chart");
  if (canvas && window.Chart && config.spans.length) {
    const labels = Object.keys(config.spans.find((s) => Object.keys(s.probabilities || {}).length)?.probabilities || {});
    Emotions.spanChart(canvas, {
      labels,
      spans: config.spans,
      onPick(i) {
        if (!player) return;
        player.currentTime = Number(config.spans[i].start) || 0;
        player.play().catch(() => {});
      },
    });
  }
})();
