/* Live status of analyses: websocket /ws/analyses/ pushes, with polling as the fallback.
 *
 *   const sub = EmotionStatus.subscribe({statusUrl, ids: [1, 2], onUpdate(msg) {...}});
 *   sub.watch(3);   // follow one more analysis (e.g. just uploaded)
 *
 * onUpdate gets the payload of services.analysis_message (id, status, progress, emotion, ...).
 * Polling runs only while there are unfinished analyses: every pollMs while the socket is
 * closed, every 8 x pollMs while it is open, and right away for each newly watched id.
 */
(function () {
  "use strict";
  const FINAL = new Set(["done", "failed"]);

  function subscribe({ statusUrl, ids = [], onUpdate, pollMs = 2500 }) {
    const pending = new Set(ids.map(Number));
    let socket = null;
    let socketOpen = false;
    let retry = 0;
    let timer = null;
    let closed = false;

    function deliver(msg) {
      if (!msg || typeof msg.id !== "number") return;
      if (FINAL.has(msg.status)) pending.delete(msg.id);
      onUpdate(msg);
    }

    async function poll() {
      timer = null;
      if (closed || pending.size === 0) return;
      try {
        const r = await fetch(`${statusUrl}?ids=${[...pending].join(",")}`, {
          headers: { Accept: "application/json" }, credentials: "same-origin",
        });
        if (r.ok) (await r.json()).analyses.forEach(deliver);
      } catch (e) { /* offline for a moment: try again later */ }
      schedule();
    }

    function schedule() {
      if (closed || timer || pending.size === 0) return;
      timer = setTimeout(poll, socketOpen ? pollMs * 8 : pollMs);
    }

    function connect() {
      if (closed || !("WebSocket" in window)) return;
      const proto = location.protocol === "https:" ? "wss" : "ws";
      try { socket = new WebSocket(`${proto}://${location.host}/ws/analyses/`); } catch (e) { return; }
      socket.onopen = () => { socketOpen = true; retry = 0; poll(); };
      socket.onmessage = (ev) => {
        try {
          const data = JSON.parse(ev.data);
          if (data.type === "analysis.update") deliver(data.analysis);
        } catch (e) { /* ignore malformed frames */ }
      };
      socket.onclose = () => {
        socketOpen = false;
        schedule();
        if (!closed) setTimeout(connect, Math.min(30000, 1000 * 2 ** retry++));
      };
    }

    connect();
    schedule();
    return {
      // A pushed update may have gone out before this page watched the id (it finished while
      // its upload was answered): ask once now, then wait for pushes or the slow poll.
      watch(id) {
        pending.add(Number(id));
        if (closed) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(poll, 0);
      },
      close() { closed = true; if (socket) socket.close(); if (timer) clearTimeout(timer); },
    };
  }

  window.EmotionStatus = { subscribe, FINAL };
})();
