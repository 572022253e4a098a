// pasarela customer page: countdown to the expiry, copy button, status polling.
// The page works without this script; it only adds the live parts.
(function () {
  "use strict";
  var root = document.getElementById("pay");
  if (!root) { return; }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  var expires = root.getAttribute("data-expires");
  var out = document.getElementById("countdown");
  if (expires && out) {
    var end = Date.parse(expires);
    out.parentNode.hidden = false;
    var tick = function () {
      var left = Math.max(0, Math.floor((end - Date.now()) / 1000));
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600);
      var m = Math.floor(left % 3600 / 60), s = left % 60;
      out.textContent = (d > 0 ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
      if (left === 0) { check(); return; }
      window.setTimeout(tick, 1000);
    };
    tick();
  }

  var copy = document.querySelector("button[data-copy]");
  if (copy && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      var field = document.getElementById(copy.getAttribute("data-copy"));
      navigator.clipboard.writeText(field.value).then(function () {
        var note = document.querySelector(".copied");
        if (note) { note.textContent = root.getAttribute("data-copied"); }
      });
    });
  }

  var url = root.getAttribute("data-status-url");
  var state = root.getAttribute("data-state");
  function check() {
    if (!url) { return; }
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.state && data.state !== state) { window.location.reload(); }
      })
      .catch(function () { /* try again at the next tick */ });
  }
  // The provider's checkout (checkout.js) says when the customer paid: ask at once.
  document.addEventListener("pasarela:check", function () { check(); });
  if (url) {
    var note = document.getElementById("auto-note");
    if (note) { note.hidden = false; }
    var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 5000;
    window.setInterval(check, every);
  }
})();
