/* Monosign Gateway, MFA page: the waiting push's countdown, and the code field after "Use a code instead".
 * The page works without this file: the server renders the time left (the <noscript> refresh renders
 * it anew), and the code field is a plain form field. */
(function () {
  "use strict";

  // "Use a code instead" comes back to /_gateway/mfa#code: put the cursor in the field.
  if (window.location.hash === "#code") {
    var field = document.getElementById("code");
    if (field) {
      field.focus();
    }
  }

  var countdown = document.querySelector("[data-countdown]");
  if (!countdown) {
    return;
  }
  var seconds = parseInt(countdown.getAttribute("data-countdown"), 10);
  var text = countdown.getAttribute("data-countdown-text") || "";
  if (isNaN(seconds) || text.indexOf("{time}") < 0) {
    return;
  }
  // Counted against the clock, not the ticks: a tab in the background gets its timers slowed.
  var endsAt = Date.now() + seconds * 1000;

  function show() {
    var left = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
    if (left === 0) {
      // The server decides what an expiry means (the page's polling goes on and gets there).
      countdown.textContent = countdown.getAttribute("data-expired-text");
      return;
    }
    var minutes = Math.floor(left / 60);
    var rest = left % 60;
    countdown.textContent = text.replace("{time}", minutes + ":" + (rest < 10 ? "0" : "") + rest);
    window.setTimeout(show, 1000 - ((endsAt - Date.now()) % 1000 + 1000) % 1000 || 1000);
  }

  show();
})();
