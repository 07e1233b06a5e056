/* The coverage dashboard while its figures are being (re)computed by a background job.
 *
 * `#coverage-refresh` carries the status URL (coverage.views.network_coverage_status) and the date of
 * the figures shown. While « mise à jour en cours », the page asks that URL every few seconds: when the
 * first figures are ready it reloads itself; when newer figures replace those shown, it offers a link
 * (a reader is not interrupted). It gives up quietly after a while, saying so.
 */
(function () {
  "use strict";

  var box = document.getElementById("coverage-refresh");
  if (!box || box.getAttribute("data-updating") !== "true") return;
  var url = box.getAttribute("data-status-url");
  var shown = box.getAttribute("data-computed-at") || "";
  var news = document.getElementById("coverage-refresh-news");
  var failed = document.getElementById("coverage-refresh-failed");
  var delay = 2000;
  var waited = 0;
  var MAX_WAIT = 10 * 60 * 1000;

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status && status.ready && status.computed_at !== shown) {
          if (!shown) {
            window.location.reload();
          } else if (news) {
            news.hidden = false;
          }
          box.setAttribute("data-updating", "false");
          return;
        }
        if (status && !status.updating) {  // no job left and nothing new: it failed
          box.setAttribute("data-updating", "false");
          if (failed) failed.hidden = false;
          return;
        }
        schedule();
      })
      .catch(schedule);
  }

  function schedule() {
    waited += delay;
    if (waited > MAX_WAIT) {
      if (failed) failed.hidden = false;
      return;
    }
    delay = Math.min(delay * 1.5, 15000);
    window.setTimeout(poll, delay);
  }

  if (news) {
    var link = news.querySelector("a");
    if (link) link.addEventListener("click", function (event) { event.preventDefault(); window.location.reload(); });
  }
  window.setTimeout(poll, delay);
})();
