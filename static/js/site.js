/* Every page (templates/base.html): close the account menu on Escape or a click outside it
 * (<details> alone stays open). A static file: the Content-Security-Policy runs no inline script. */
(function () {
  "use strict";
  document.addEventListener("click", (e) => {
    document.querySelectorAll("details.menu[open]").forEach((m) => { if (!m.contains(e.target)) m.open = false; });
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") document.querySelectorAll("details.menu[open]").forEach((m) => { m.open = false; });
  });
})();
