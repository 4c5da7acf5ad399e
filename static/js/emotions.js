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
  // Step chart of each emotion's probability over spans of time on a linear axis from the
  // first span's start to the last one's end (e.g. 0 to the end of a recording); spans:
  // [{start, end, probabilities: {label: p} (empty: no value)}]; onPick(index of the span).
  function spanChart(canvas, { labels, spans, onPick }) {
    const first = Number(spans[0].start);
    const last = Number(spans[spans.length - 1].end);
    const has = (s) => s.probabilities && Object.keys(s.probabilities).length && s.emotion !== null;
    return new Chart(canvas, {
      type: "line",
      data: {
        datasets: labels.map((label) => ({
          label,
          data: spans.flatMap((s) => {
            const y = has(s) ? s.probabilities[label] : null;
            return [{ x: Number(s.start), y }, { x: Number(s.end), y }];
          }),
          borderColor: color(label),
          backgroundColor: color(label, 0.15),
          tension: 0,
          pointRadius: 0,
          spanGaps: false,
        })),
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { type: "linear", min: first, max: last, title: { display: true, text: "seconds" },
               ticks: { callback: (v) => `${Number(v).toFixed(1)}` } },
          y: { min: 0, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)}%` } },
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              title: (items) => {
                const s = spans[Math.floor(items[0].dataIndex / 2)];
                return `${Number(s.start).toFixed(1)}–${Number(s.end).toFixed(1)} s`;
              },
              label: (c) => `${c.dataset.label}: ${pct(c.parsed.y)}`,
            },
          },
        },
        onClick(evt, elements, chart) {
          if (!onPick) return;
          const t = chart.scales.x.getValueForPixel(evt.x);
          const i = spans.findIndex((s) => t < Number(s.end));
          onPick(i < 0 ? spans.length - 1 : i);
        },
      },
    });
  }
  window.Emotions = { color, pct, probabilityChart, spanChart };
})();
