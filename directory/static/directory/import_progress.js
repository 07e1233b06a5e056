// Import progress: polls the small JSON status of the run, moves the bar, and reloads the
// page (which then shows the row/column report) once the job has finished.
(function () {
  "use strict";
  var box = document.getElementById("import-live");
  if (!box || box.dataset.finished === "1") return;
  var bar = document.getElementById("import-progress");
  var state = document.getElementById("import-state");
  var phases = { read: "lecture", check: "vérification", write: "écriture" };
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        bar.value = data.percent;
        bar.textContent = data.percent + " %";
        var text = data.status_label;
        if (data.phase && !data.finished) text += " — " + (phases[data.phase] || data.phase);
        if (data.total) text += " : " + data.done + "/" + data.total;
        state.textContent = text;
        if (data.finished) window.location.reload();
        else window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
