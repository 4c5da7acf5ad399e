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
        else if (text) text.textContent = msg.status === "running" ? "Analysing…" : "Waiting for a worker…";
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

  const canvas = document.getElementById("timeline-chart");
  if (canvas && window.Chart && config.windows.length) {
    const labels = Object.keys(config.windows.find((w) => w.probabilities)?.probabilities || {});
    const mid = (w) => ((Number(w.start) + Number(w.end)) / 2).toFixed(1);
    new Chart(canvas, {
      type: "line",
      data: {
        labels: config.windows.map(mid),
        datasets: labels.map((label) => ({
          label,
          data: config.windows.map((w) => (w.probabilities ? w.probabilities[label] : null)),
          borderColor: Emotions.color(label),
          backgroundColor: Emotions.color(label, 0.15),
          tension: 0.3,
          pointRadius: 2,
          spanGaps: false,
        })),
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: { display: true, text: "seconds" } },
          y: { min: 0, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)}%` } },
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${Emotions.pct(c.parsed.y)}` } },
        },
        onClick(evt, elements) {
          if (player && elements.length) {
            player.currentTime = Number(config.windows[elements[0].index].start) || 0;
            player.play().catch(() => {});
          }
        },
      },
    });
  }
})();
