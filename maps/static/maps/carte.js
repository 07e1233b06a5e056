/* /carte/: the filter form updates the map's data layers and the download links in place. */
(function () {
  "use strict";
  var form = document.getElementById("carte-filtres");
  var controller = (window.atlasMaps || [])[0];
  if (!form || !controller) return;

  function query() {
    var data = new FormData(form);
    var params = new URLSearchParams();
    var products = data.getAll("products").filter(Boolean);
    if (products.length) params.set("products", products.join(","));
    ["weekday", "accepting", "network"].forEach(function (name) {
      var value = data.get(name);
      if (value) params.set(name, value);
    });
    return params.toString();
  }

  var network = form.querySelector("[name=network]");
  var lastNetwork = network ? network.value : "";

  function apply() {
    var qs = query();
    controller.applyFilters(qs);
    if (network && network.value && network.value !== lastNetwork) controller.fitTerritory(network.value);
    lastNetwork = network ? network.value : "";
    document.querySelectorAll(".carte-downloads a").forEach(function (link) {
      link.href = link.href.split("?")[0] + (qs ? "?" + qs : "");
    });
    history.replaceState(null, "", form.action + (qs ? "?" + qs : ""));
  }

  // A phone shows all of mainland France at once; a link with a network opens on its territory.
  var map = controller.map;
  if (map.getSize().x < 600 && !lastNetwork) map.setView([46.6, 2.4], 5, { animate: false });
  if (lastNetwork) controller.fitTerritory(lastNetwork);

  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
})();
