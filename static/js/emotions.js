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
  window.Emotions = { color, pct };
})();
