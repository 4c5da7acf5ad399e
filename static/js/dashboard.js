/* Dashboard charts (vendored Chart.js): distribution, by modality, emotions over time. */
(function () {
  "use strict";
  const stats = JSON.parse(document.getElementById("dashboard-stats").textContent);
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.datasets.bar.maxBarThickness = 56;
  const labels = Object.keys(stats.emotions);
  const legendBottom = { position: "bottom", labels: { boxWidth: 12 } };
  const KIND_NAMES = { image: "Photos", audio: "Recordings", video: "Videos", live: "Live" };

  new Chart(document.getElementById("chart-distribution"), {
    type: "doughnut",
    data: {
      labels,
      datasets: [{ data: labels.map((l) => stats.emotions[l]), backgroundColor: labels.map((l) => Emotions.color(l)) }],
    },
    options: { plugins: { legend: { position: "right", labels: { boxWidth: 12 } } }, cutout: "55%" },
  });

  const kinds = Object.keys(stats.by_modality);
  new Chart(document.getElementById("chart-modality"), {
    type: "bar",
    data: {
      labels: kinds.map((k) => KIND_NAMES[k] || k),
      datasets: labels.map((l) => ({
        label: l,
        data: kinds.map((k) => stats.by_modality[k][l] || 0),
        backgroundColor: Emotions.color(l),
      })),
    },
    options: {
      indexAxis: "y",
      scales: { x: { stacked: true, ticks: { precision: 0 } }, y: { stacked: true } },
      plugins: { legend: legendBottom },
    },
  });

  new Chart(document.getElementById("chart-time"), {
    type: "bar",
    data: {
      labels: stats.over_time.map((d) => d.date),
      datasets: labels.map((l) => ({
        label: l,
        data: stats.over_time.map((d) => d.emotions[l] || 0),
        backgroundColor: Emotions.color(l),
      })),
    },
    options: {
      scales: { x: { stacked: true }, y: { stacked: true, ticks: { precision: 0 }, title: { display: true, text: "analyses" } } },
      plugins: { legend: legendBottom },
    },
  });
})();
