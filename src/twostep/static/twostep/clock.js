// twostep — time on the pages: the browser's time zone, told once, and the wait after too many
// attempts. Every page works without this file: times are then in UTC (and say so), and a
// button pressed too early gets the same "try again in" answer from the server.
(function () {
  "use strict";

  var body = document.body;

  // The browser's zone, sent once as a cookie; the server remembers it for a signed-in user.
  var detect = body.getAttribute("data-detect-time-zone");
  if (detect !== null && window.Intl && Intl.DateTimeFormat) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) {
      // The name's characters need no escaping in a cookie (and the server reads it as written).
      document.cookie = "twostep_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
      // Times on this page were written in UTC: show them again, local — once, and only a page
      // a GET can repeat. If the server still does not take the zone, nothing loops.
      var stored = document.cookie.split("; ").indexOf("twostep_tz=" + zone) !== -1;
      var again = false;
      try {
        again = window.sessionStorage.getItem("twostep_tz_reloaded") === zone;
        window.sessionStorage.setItem("twostep_tz_reloaded", zone);
      } catch (e) { again = true; }
      if (stored && !again && detect === "GET" && document.querySelector("time") && zone !== "UTC") {
        window.location.reload();
      }
    }
  }

  // After "too many attempts": the buttons that would try again wait, counting down, for the time
  // the server named; then they come back as they were.
  var wait = parseInt(body.getAttribute("data-retry-after") || "", 10);
  if (wait > 0) {
    var held = [];
    document.querySelectorAll("main form").forEach(function (form) {
      if (!form.querySelector("input[type=password], input.code-input, input[autocomplete=one-time-code]")) {
        return;
      }
      form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (button) {
        // The countdown is shown, not read out: the alert above already says how long to wait.
        var count = document.createElement("span");
        count.className = "countdown";
        count.setAttribute("aria-hidden", "true");
        button.appendChild(count);
        held.push({ button: button, count: count });
      });
    });
    var until = Date.now() + wait * 1000;
    var tick = function () {
      var left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      held.forEach(function (item) {
        item.button.disabled = left > 0;
        item.count.textContent = left > 0 ? " " + Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2) : "";
      });
      if (left > 0) {
        window.setTimeout(tick, 250);
      }
    };
    tick();
  }
})();
