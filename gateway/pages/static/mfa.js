/* Monosign Gateway, MFA page: waits for the push approval and keeps a form from being sent twice.
 * The page works without this file: a <noscript> refresh and the "I have approved it" button
 * finish the push, and the forms are plain HTML forms. */
(function () {
  "use strict";

  // A push request or a code is sent once, however often the button is pressed.
  var forms = document.querySelectorAll("form[data-once]");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent") === "1") {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "1");
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.setAttribute("aria-disabled", "true");
      }
    });
  });

  var waiting = document.querySelector("[data-status-url]");
  if (!waiting || !window.fetch) {
    return;
  }
  var statusUrl = waiting.getAttribute("data-status-url");
  var completeUrl = waiting.getAttribute("data-complete-url");
  var message = waiting.querySelector("[data-status-message]");
  var interval = Math.max(100, parseInt(waiting.getAttribute("data-poll-interval"), 10) || 2000);
  var failures = 0;

  // The server decides what an approval, a rejection or an expiry means: the page only goes there.
  function complete() {
    window.location.assign(completeUrl);
  }

  function poll() {
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status >= 400 && response.status < 500) {
          complete(); // the session ended or changed: let the server say what happens next
          return null;
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (data === null) {
          return;
        }
        failures = 0;
        if (data && data.status === "pending") {
          window.setTimeout(poll, interval);
        } else {
          complete();
        }
      })
      .catch(function () {
        failures += 1;
        if (failures === 3 && message) {
          message.textContent = waiting.getAttribute("data-lost-message");
        }
        window.setTimeout(poll, Math.min(interval * Math.pow(2, failures), 7 * interval));
      });
  }

  window.setTimeout(poll, interval);
})();
