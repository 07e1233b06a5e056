/* The coverage dashboard (`/reseau/<slug>/couverture/`): folds the sections on a phone, and draws the
 * map from GeoJSON layers fetched on demand (the page itself carries no geometry).
 *
 * The configuration comes from `<script type="application/json" id="coverage-map-config">` (see
 * coverage/layers.py `map_config`): layer URLs, the zoom levels the server simplifies for, legend and
 * texts. Each polygon layer is fetched for the level of the current zoom, and again when the zoom
 * crosses a level; the AMAP points go through the shared map script (maps/static/maps/atlas-map.js).
 * `window.coverageMap` tells tests and benchmarks when the first view is drawn (`drawn`, `drawnAt`).
 */
(function () {
  "use strict";

  var PHONE = window.matchMedia("(max-width: 40rem)").matches;

  // Phones get the map near the top: the other sections fold (desktop keeps them open).
  if (PHONE) {
    var folds = document.querySelectorAll("details.coverage-fold[data-phone-fold]");
    for (var i = 0; i < folds.length; i++) folds[i].open = false;
  }

  var configNode = document.getElementById("coverage-map-config");
  var container = document.getElementById("coverage-map-canvas");
  if (!configNode || !container || !window.L) return;
  var config = JSON.parse(configNode.textContent);
  var texts = config.texts;
  var status = document.getElementById("coverage-map-status");
  var state = { drawn: false, drawnAt: null, level: null, layers: {}, requests: 0 };
  window.coverageMap = state;

  var SWATCHES = {
    fill: function (s, c) { s.background = c; },
    outline: function (s, c) { s.background = "transparent"; s.border = "2px dashed " + c; },
    hatched: function (s, c) { s.background = c + "40"; s.border = "1px solid " + c; },
    pin: function (s, c) {
      s.background = c; s.border = "2px solid #fff"; s.borderRadius = "50%"; s.boxShadow = "0 0 0 1px rgba(0,0,0,.45)";
    },
  };

  function el(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  // Leaflet's layer control writes names as HTML: the labels go in as text.
  function escapeHtml(value) {
    var node = document.createElement("span");
    node.textContent = value;
    return node.innerHTML;
  }

  function levelFor(zoom, maxLevel) {
    var chosen = config.levels[0];
    config.levels.forEach(function (level) { if (zoom >= level && level <= maxLevel) chosen = level; });
    return chosen;
  }

  function withLevel(url, level) {
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "z=" + level;
  }

  function formatValue(value) {
    return typeof value === "number" ? value.toLocaleString("fr-FR") : value === null || value === undefined ? "" : String(value);
  }

  function tooltipContent(fields, props) {
    var table = el("table", "coverage-tooltip");
    fields.forEach(function (field) {
      var row = el("tr");
      row.appendChild(el("th", null, field[1]));
      row.appendChild(el("td", null, formatValue(props[field[0]])));
      table.appendChild(row);
    });
    return table;
  }

  var STYLES = {
    choropleth: function (feature) {
      return { fillColor: feature.properties.fill, fillOpacity: 0.65, color: "#ffffff", weight: 0.5 };
    },
    zones: function (feature, layerConfig) {
      var group = feature.properties.kind === "group";
      return { fill: false, fillOpacity: 0, color: layerConfig.color, weight: group ? 3 : 2, dashArray: group ? "6 4" : null };
    },
    product: function (feature, layerConfig) {
      return { fillColor: layerConfig.color, fillOpacity: 0.25, color: layerConfig.color, weight: 1 };
    },
  };

  function polygonLayer(layerConfig) {
    var style = function (feature) { return STYLES[layerConfig.id](feature, layerConfig); };
    var layer = L.geoJSON(null, {
      style: style,
      onEachFeature: function (feature, path) {
        path.bindTooltip(function () { return tooltipContent(layerConfig.tooltip, feature.properties || {}); }, { sticky: true });
        if (layerConfig.id === "choropleth") {
          path.on("mouseover", function () { path.setStyle({ weight: 2, color: "#333333" }); });
          path.on("mouseout", function () { layer.resetStyle(path); });
        }
      },
    });
    layer.atlasLevel = null;
    return layer;
  }

  function fetchJson(url) {
    state.requests += 1;
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error(response.status + " " + url);
      return response.json();
    });
  }

  var map = L.map(container, { center: [46.6, 2.4], zoom: 6, zoomSnap: 1, scrollWheelZoom: !PHONE, tap: true });
  L.tileLayer(config.background.url, { attribution: config.background.attribution, maxZoom: 19 }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  if (config.bounds) map.fitBounds(config.bounds, { animate: false });

  var overlays = {};
  config.layers.forEach(function (layerConfig) {
    var layer = polygonLayer(layerConfig);
    state.layers[layerConfig.id] = layer;
    layer.addTo(map);
    overlays[escapeHtml(layerConfig.label)] = layer;
  });
  if (state.layers.zones) state.layers.zones.bringToFront();

  // Draws every polygon layer at the level of the current zoom; resolves once all are on the map.
  function loadLevel() {
    var zoom = map.getZoom();
    var pending = config.layers.map(function (layerConfig) {
      var layer = state.layers[layerConfig.id];
      var level = levelFor(zoom, layerConfig.maxLevel);
      if (layer.atlasLevel === level) return Promise.resolve();
      layer.atlasLevel = level;
      return fetchJson(withLevel(layerConfig.url, level)).then(function (data) {
        if (layer.atlasLevel !== level) return;  // the zoom moved on while this was loading
        layer.clearLayers();
        layer.addData(data);
      });
    });
    state.level = levelFor(zoom, Infinity);
    return Promise.all(pending);
  }

  var pending = [loadLevel()];

  if (config.points) {
    var controller = window.AtlasMap.setup(map, {
      layers: [{ id: "amaps", label: config.points.label, color: "#2f6b2f", data: null, detailUrl: config.points.detailUrl }],
      legend: false, layerControl: false, fit: false, texts: texts,
    });
    var points = controller.layers.amaps;
    overlays['<span class="atlas-legend__pin atlas-pin--amaps"></span> ' + escapeHtml(config.points.label)] = points;
    pending.push(fetchJson(config.points.url).then(function (data) { points.atlasSetData(data); }));
  }

  L.control.layers(null, overlays, { collapsed: PHONE, position: "topright" }).addTo(map);

  // The legend: inside the map on a wide screen, under it on a phone (where it would hide the map).
  var legend = el("div", "atlas-legend coverage-legend");
  legend.appendChild(el("strong", null, config.legend.title));
  var list = el("ul");
  config.legend.items.forEach(function (item) {
    var row = el("li");
    var swatch = el("span", "coverage-swatch");
    SWATCHES[item[0]](swatch.style, item[1]);
    row.appendChild(swatch);
    row.appendChild(document.createTextNode(item[2]));
    list.appendChild(row);
  });
  legend.appendChild(list);
  if (PHONE) {
    document.getElementById("coverage-legend-slot").appendChild(legend);
  } else {
    var control = L.control({ position: "bottomright" });
    control.onAdd = function () { L.DomEvent.disableClickPropagation(legend); return legend; };
    control.addTo(map);
  }

  if (status) status.textContent = texts.loading;
  Promise.all(pending).then(function () {
    container.setAttribute("aria-busy", "false");
    if (status) status.textContent = "";
    requestAnimationFrame(function () {
      state.drawn = true;
      state.drawnAt = performance.now();
      container.setAttribute("data-drawn", "true");
    });
  }, function () {
    container.setAttribute("aria-busy", "false");
    if (status) status.textContent = texts.failed;
  });

  map.on("zoomend", function () { loadLevel().catch(function () { if (status) status.textContent = texts.failed; }); });
  state.map = map;
})();
