// Amparo desk: a little progressive JavaScript. Every page works without it;
// with it, the language menu applies at once, the print button prints, and
// the sync page shows live progress. Served from the desk itself (the
// Content-Security-Policy allows no other script, and no inline script).
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var csrf = document.body.getAttribute("data-csrf") || "";

  document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });

  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });

  var box = document.getElementById("sync-progress");
  if (!box) { return; }
  var line = document.getElementById("sync-line");
  var form = document.getElementById("sync-form");
  var button = document.getElementById("sync-button");
  var waiting = document.getElementById("waiting");
  var say = function (k) { return box.getAttribute("data-" + k) || ""; };

  function render(p) {
    var parts = [];
    if (p.running) { parts.push(say("running")); }
    else if (p.error) { parts.push(say("failed") + ": " + p.error); }
    else if (p.ended_ago !== null) { parts.push(say("done")); }
    if (p.to_send > 0 || p.sent > 0) { parts.push(p.sent + " " + say("sent")); }
    if (p.running || p.ended_ago !== null) {
      parts.push(p.fetched + " " + say("fetched"));
      parts.push(p.new_cases + " " + say("new"));
      if (p.messages > 0) { parts.push(p.messages + " " + say("messages")); }
      if (p.unreadable > 0) { parts.push(p.unreadable + " " + say("unreadable")); }
      if (p.postponed > 0) { parts.push(p.postponed + " " + say("postponed")); }
    }
    if (p.more) { parts.push(say("more")); }
    if (p.not_listed && !p.running) { parts.push(say("not-listed")); }
    if (parts.length > 0) { line.textContent = parts.join(" · "); }
    button.disabled = !!p.running;
    if (waiting && typeof p.waiting === "number") { waiting.textContent = String(p.waiting); }
  }

  var timer = null;
  function poll() {
    fetch("/sync/status", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) { return; }
        render(p);
        if (p.running) { timer = setTimeout(poll, 700); } else { timer = null; }
      })
      .catch(function () { timer = null; });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    button.disabled = true;
    line.textContent = say("running");
    fetch("/sync", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    }).then(function () { if (!timer) { poll(); } });
  });

  poll();
});
