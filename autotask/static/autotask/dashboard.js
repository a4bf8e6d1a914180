/* autotask's dashboard: fetch the figures every few seconds and swap in the server-drawn body.
 * Paused while the tab is hidden (Page Visibility API), refreshed at once when shown again;
 * the hour/day switch fetches without a reload.  No dependencies. */
"use strict";
(function () {
  var root = document.getElementById("autotask-dashboard");
  if (!root) { return; }
  var body = document.getElementById("autotask-dashboard-body");
  var status = document.getElementById("autotask-dashboard-status");
  var windowName = root.dataset.window;
  var timer = null;
  var pending = null;

  function seconds() {
    return Number(root.dataset[windowName === "day" ? "refreshDay" : "refreshHour"]) || 5;
  }

  function schedule() {
    clearTimeout(timer);
    timer = document.hidden ? null : setTimeout(refresh, seconds() * 1000);
  }

  function say(text, bad) {
    status.textContent = text;
    status.classList.toggle("autotask-bad", !!bad);
  }

  function refresh() {
    if (pending) { pending.abort(); }
    var controller = pending = new AbortController();
    var url = root.dataset.url + "?window=" + encodeURIComponent(windowName);
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}, signal: controller.signal})
      .then(function (response) {
        // The admin sends a logged-out user to its login page, and refuses one without permission.
        if (response.redirected || response.status === 403) { throw new Error(root.dataset.textRefused); }
        if (!response.ok || !(response.headers.get("Content-Type") || "").startsWith("application/json")) {
          throw new Error(response.status + " " + response.statusText);
        }
        return response.json();
      })
      .then(function (answer) {
        if (answer.figures.window !== windowName) { return; }  // the window changed meanwhile
        body.innerHTML = answer.html;
        root.dataset.updated = answer.figures.now;
        say(root.dataset.textUpdated + " " + answer.updated, false);
      })
      .catch(function (error) {
        if (error.name !== "AbortError") { say(root.dataset.textFailed + " " + error.message, true); }
      })
      .finally(function () {
        if (pending === controller) { pending = null; schedule(); }
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
      say(root.dataset.textPaused, false);
    } else {
      refresh();
    }
  });

  root.querySelectorAll(".autotask-windows a[data-window]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      windowName = link.dataset.window;
      root.dataset.window = windowName;
      root.querySelectorAll(".autotask-windows a").forEach(function (other) {
        if (other === link) { other.setAttribute("aria-current", "page"); } else { other.removeAttribute("aria-current"); }
      });
      history.replaceState(null, "", "?window=" + encodeURIComponent(windowName));
      document.getElementById("autotask-refresh-seconds").textContent = seconds();
      refresh();
    });
  });

  schedule();
})();
