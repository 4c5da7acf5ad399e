/* History: rows still queued or running reload the page once they finish (websocket, then polling). */
(function () {
  "use strict";
  // A thumbnail that cannot load (file gone) becomes a plain tile instead of a broken image.
  document.querySelectorAll("img.thumb").forEach((img) => {
    const missing = () => {
      const tile = document.createElement("span");
      tile.className = "thumb";
      img.replaceWith(tile);
    };
    if (img.complete && img.naturalWidth === 0) missing();
    else img.addEventListener("error", missing);
  });
  const config = JSON.parse(document.getElementById("history-config").textContent);
  const rows = document.querySelectorAll('tr[data-status="queued"], tr[data-status="running"]');
  const left = new Set([...rows].map((r) => Number(r.dataset.analysisId)));
  if (!left.size) return;
  EmotionStatus.subscribe({
    statusUrl: config.statusUrl,
    ids: [...left],
    onUpdate(msg) {
      if (!left.has(msg.id) || !EmotionStatus.FINAL.has(msg.status)) return;
      left.delete(msg.id);
      if (!left.size) location.reload();
    },
  });
})();
