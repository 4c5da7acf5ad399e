/* Emotion colours for charts, read from the CSS variables in site.css (--emo-<label>). */
(function () {
  "use strict";
  const css = getComputedStyle(document.documentElement);
  function color(label, alpha) {
    const c = (css.getPropertyValue(`--emo-${label}`) || "").trim() || "#5b4bdb";
    if (alpha === undefined) return c;
    const n = parseInt(c.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }
  function pct(p) { return p === null || p === undefined ? "–" : `${Math.round(p * 100)}%`; }
  // Line chart (Chart.js) of each emotion's probability over time, shared by the result pages.
  // xs: x-axis labels (seconds); rows: per x a {label: probability} or null (a gap);
  // onPick(index): a click on or between points picks the nearest x.
  function probabilityChart(canvas, { labels, xs, rows, onPick, pointRadius = 2 }) {
    return new Chart(canvas, {
      type: "line",
      data: {
        labels: xs,
        datasets: labels.map((label) => ({
          label,
          data: rows.map((r) => (r ? r[label] : null)),
          borderColor: color(label),
          backgroundColor: color(label, 0.15),
          tension: 0.3,
          pointRadius,
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
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${pct(c.parsed.y)}` } },
        },
        onClick(evt, elements, chart) {
          if (!onPick || !xs.length) return;
          const at = elements.length ? elements[0].index : Math.round(chart.scales.x.getValueForPixel(evt.x));
          onPick(Math.max(0, Math.min(xs.length - 1, at)));
        },
      },
    });
  }
  window.Emotions = { color, pct, probabilityChart };
})();
