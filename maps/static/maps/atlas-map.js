/* AMAP Atlas maps: data layers, clustering, popups, legend and controls on a Leaflet map.
 *
 * Called by the page as `AtlasMap.setup(map, config)` (see maps/builders.py for `config`).
 * Two kinds of data layers:
 *  - inline GeoJSON (a few thousand points at most): clustered in the browser (markercluster);
 *  - vector tiles (`tiles` URL template): the server already grid-clusters points per tile,
 *    each tile's features become a handful of markers, dropped when the tile leaves the view.
 * The controller is kept as `map.atlas` and in `window.atlasMaps` (filters, tests).
 */
(function () {
  "use strict";

  function text(value) {
    return value === null || value === undefined ? "" : String(value);
  }

  function el(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  // The site's one distance rule (geo/formatting.py, same float arithmetic): 190 m, 1,2 km, 12 km,
  // rounded half up, never cut. Pages send the text as `distance`; this is for raw `distance_m`.
  function halfUp(value) { return Math.floor(value + 0.5); }
  function formatDistance(metres) {
    if (metres < 10) return "moins de 10 m";
    var tens = halfUp(metres / 10);
    if (tens < 100) return tens * 10 + " m";
    var tenths = halfUp(metres / 100);
    if (tenths < 100) return Math.floor(tenths / 10) + "," + (tenths % 10) + " km";
    return String(halfUp(metres / 1000)).replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f") + " km";
  }

  function weekdaysText(props, texts) {
    if (props.delivery) return text(props.delivery);
    var days = props.weekdays;
    if (typeof days === "string") days = days ? days.split(",") : [];
    if (!days || !days.length) return "";
    return days.map(function (d) { return texts.weekdays[Number(d) - 1] || ""; }).join(", ");
  }

  function detailUrl(layerConfig, props) {
    if (props.url) return props.url;
    if (layerConfig.detailUrl && props.id !== undefined && props.id !== null) {
      return layerConfig.detailUrl.replace("{id}", encodeURIComponent(props.id));
    }
    return "";
  }

  function popupContent(layerConfig, props, texts) {
    var box = el("div", "atlas-popup atlas-popup--" + layerConfig.id);
    box.appendChild(el("strong", "atlas-popup__name", text(props.name)));
    if (props.commune) box.appendChild(el("div", "atlas-popup__commune", text(props.commune)));
    var delivery = weekdaysText(props, texts);
    if (delivery) box.appendChild(el("div", "atlas-popup__delivery", texts.delivery + " : " + delivery));
    if (props.products) box.appendChild(el("div", "atlas-popup__products", texts.products + " : " + text(props.products)));
    if (props.accepting) box.appendChild(el("div", "atlas-popup__accepting", text(props.accepting)));
    if (props.distance) {
      box.appendChild(el("div", "atlas-popup__distance", texts.distance + " : " + text(props.distance)));
    } else if (props.distance_m !== undefined && props.distance_m !== null) {
      box.appendChild(el("div", "atlas-popup__distance", texts.distance + " : " + formatDistance(Number(props.distance_m))));
    }
    var url = detailUrl(layerConfig, props);
    if (url) {
      var link = el("a", "atlas-popup__link", texts.open);
      link.href = url;
      // Inside an embed, the page opens in the visitor's tab, not in the small frame.
      if (window.top !== window.self) link.target = "_top";
      box.appendChild(link);
    }
    return box;
  }

  function pinIcon(layerConfig) {
    return L.divIcon({
      className: "atlas-pin atlas-pin--" + layerConfig.id,
      html: "<span></span>",
      iconSize: [16, 16],
      iconAnchor: [8, 8],
      popupAnchor: [0, -6],
    });
  }

  // AMAP and farm groups of the same place sit side by side (AMAPs to the left, farms to the
  // right, 30 px apart): their counts never cover each other.
  var CLUSTER_SHIFT = { amaps: 15, farms: -15 };

  function clusterIcon(layerId, count, shifted) {
    var size = count < 10 ? "small" : count < 100 ? "medium" : "large";
    var label = count >= 10000 ? Math.round(count / 1000) + "k" : String(count);
    return L.divIcon({
      className: "marker-cluster marker-cluster-" + size + " atlas-cluster atlas-cluster--" + layerId,
      html: "<div><span>" + label + "</span></div>",
      iconSize: [40, 40],
      iconAnchor: [20 + (shifted ? CLUSTER_SHIFT[layerId] || 0 : 0), 20],
    });
  }

  function pointMarker(latlng, layerConfig, props, texts) {
    var marker = L.marker(latlng, {
      icon: pinIcon(layerConfig),
      title: text(props.name),
      alt: text(props.name),
      keyboard: true,
    });
    marker.feature = { properties: props };
    marker.bindPopup(function () { return popupContent(layerConfig, props, texts); });
    return marker;
  }

  /* --- inline GeoJSON, clustered in the browser ---------------------------------------- */

  function inlineLayer(layerConfig, texts, cluster) {
    var group = cluster && L.markerClusterGroup
      ? L.markerClusterGroup({
          showCoverageOnHover: false,
          chunkedLoading: true,
          maxClusterRadius: 50,
          iconCreateFunction: function (c) { return clusterIcon(layerConfig.id, c.getChildCount(), layerConfig.shifted); },
        })
      : L.featureGroup();
    var geojson = L.geoJSON(null, {
      pointToLayer: function (feature, latlng) {
        return pointMarker(latlng, layerConfig, feature.properties || {}, texts);
      },
    });
    group.atlasSetData = function (data) {
      group.clearLayers();
      geojson.clearLayers();
      geojson.addData(data || { type: "FeatureCollection", features: [] });
      group.addLayers ? group.addLayers(geojson.getLayers()) : geojson.getLayers().forEach(function (l) { group.addLayer(l); });
    };
    group.atlasSetData(layerConfig.data);
    group.atlasCount = function () { return geojson.getLayers().length; };
    return group;
  }

  /* --- vector tiles, grid-clustered on the server ------------------------------------- */

  // Tiles are drawn 512 px wide: the server's tile of zoom z - 1 covers the view's tile of zoom z.
  var PointTiles = L.GridLayer.extend({
    options: {
      subdomains: "abc",
      fetchOptions: { credentials: "same-origin" },
      updateWhenZooming: false,
      tileSize: 512,
      minZoom: 1,
    },

    initialize: function (url, layerConfig, texts, options) {
      L.GridLayer.prototype.initialize.call(this, options);
      this._url = url;
      this._config = layerConfig;
      this._texts = texts;
      this._markers = {};
      this._group = L.layerGroup();
      this._everLoaded = false;
      this.on("tileunload", this._dropTile, this);
      this.on("load", function () { this._everLoaded = true; }, this);
    },

    // Fetch + protobuf decoding come from Leaflet.VectorGrid (pinned version, see assets.sh).
    _getSubdomain: L.TileLayer.prototype._getSubdomain,
    _decode: L.VectorGrid && L.VectorGrid.Protobuf ? L.VectorGrid.Protobuf.prototype._getVectorTilePromise : null,

    setUrl: function (url) {
      this._url = url;
      if (this._map) this.redraw();
      return this;
    },

    onAdd: function (map) {
      L.GridLayer.prototype.onAdd.call(this, map);
      this._group.addTo(map);
      map.on("zoomend", this._dropOtherZooms, this);
    },

    onRemove: function (map) {
      map.off("zoomend", this._dropOtherZooms, this);
      L.GridLayer.prototype.onRemove.call(this, map);
      this._group.remove();
      this._group.clearLayers();
      this._markers = {};
    },

    createTile: function (coords, done) {
      var tile = document.createElement("div");
      var key = this._tileCoordsToKey(coords);
      var self = this;
      this._decode({ x: coords.x, y: coords.y, z: coords.z - 1 }).then(function (vt) {
        // The tile may have left the view (or the filters changed) while it was loading.
        var current = self._tiles[key];
        if (!self._map || !current || current.el !== tile) { done(null, tile); return; }
        self._addMarkers(key, coords, vt);
        done(null, tile);
      }, function (err) { done(err, tile); });
      return tile;
    },

    _addMarkers: function (key, coords, vt) {
      var markers = [];
      var tileSize = this.getTileSize();
      for (var name in vt.layers) {
        var layer = vt.layers[name];
        var scale = tileSize.x / layer.extent;
        for (var i = 0; i < layer.features.length; i++) {
          var feature = layer.features[i];
          var p = feature.geometry[0][0];
          var pixel = L.point(coords.x * tileSize.x + p.x * scale, coords.y * tileSize.y + p.y * scale);
          var latlng = this._map.unproject(pixel, coords.z);
          markers.push(this._marker(latlng, feature.properties, coords.z));
        }
      }
      this._markers[key] = markers;
      for (var j = 0; j < markers.length; j++) this._group.addLayer(markers[j]);
    },

    _marker: function (latlng, props, z) {
      var count = Number(props.count || 1);
      if (count <= 1) return pointMarker(latlng, this._config, props, this._texts);
      var map = this._map;
      var cluster = L.marker(latlng, { icon: clusterIcon(this._config.id, count, this._config.shifted), title: String(count), keyboard: true });
      cluster.atlasCount = count;
      cluster.on("click", function () {
        if (map.getZoom() < map.getMaxZoom()) map.setView(latlng, Math.min(map.getZoom() + 2, map.getMaxZoom()));
      });
      return cluster;
    },

    _dropTile: function (e) {
      var key = this._tileCoordsToKey(e.coords);
      var markers = this._markers[key];
      if (!markers) return;
      for (var i = 0; i < markers.length; i++) this._group.removeLayer(markers[i]);
      delete this._markers[key];
    },

    _dropOtherZooms: function () {
      // Leaflet keeps the previous zoom's tiles until the new ones arrive; their markers would
      // be counted twice, so they go at once.
      var zoom = this._tileZoom;
      for (var key in this._markers) {
        if (Number(key.split(":")[2]) !== zoom) {
          this._dropTile({ coords: this._keyToTileCoords(key) });
        }
      }
    },

    atlasCount: function () {
      var total = 0;
      for (var key in this._markers) {
        for (var i = 0; i < this._markers[key].length; i++) total += this._markers[key][i].atlasCount || 1;
      }
      return total;
    },
  });

  /* --- territories ---------------------------------------------------------------------- */

  function territoryLayer(config) {
    var layer = L.geoJSON(null, {
      interactive: true,
      style: function () {
        return { color: "#5a4fa3", weight: 2, dashArray: "6 4", fillColor: "#5a4fa3", fillOpacity: 0.06 };
      },
      onEachFeature: function (feature, l) {
        if (feature.properties && feature.properties.name) {
          l.bindTooltip(text(feature.properties.name), { sticky: true });
        }
      },
    });
    var loadedUrl = null;
    layer.atlasLoad = function (url) {
      if (!url || url === loadedUrl) return;
      loadedUrl = url;
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { type: "FeatureCollection", features: [] }; })
        .then(function (data) { if (loadedUrl === url) { layer.clearLayers(); layer.addData(data); } });
    };
    layer.atlasUrl = config.url || null;
    if (config.data) layer.addData(config.data);
    layer.on("add", function () { if (layer.atlasUrl) layer.atlasLoad(layer.atlasUrl); });
    return layer;
  }

  /* --- legend ------------------------------------------------------------------------- */

  function legendControl(config) {
    var texts = config.texts;
    // Bottom left: clear of Corsica and of the overseas départements drawn near the bottom right.
    var control = L.control({ position: "bottomleft" });
    control.onAdd = function (map) {
      // A <details>: folded on a small map (a phone), open on a large one.
      var box = el("details", "atlas-legend leaflet-control");
      if (map.getSize().x >= 600) box.open = true;
      box.appendChild(el("summary", null, texts.legend));
      var list = el("ul");
      config.layers.forEach(function (layer) {
        var item = el("li");
        item.appendChild(el("span", "atlas-legend__pin atlas-pin--" + layer.id));
        item.appendChild(document.createTextNode(layer.id === "farms" ? texts.farms : texts.amaps));
        list.appendChild(item);
      });
      var clusterItem = el("li");
      config.layers.forEach(function (layer) {
        clusterItem.appendChild(el("span", "atlas-legend__cluster atlas-legend__cluster--" + layer.id, "12"));
      });
      clusterItem.appendChild(document.createTextNode(texts.cluster));
      list.appendChild(clusterItem);
      if (config.territory) {
        var territoryItem = el("li");
        territoryItem.appendChild(el("span", "atlas-legend__territory"));
        territoryItem.appendChild(document.createTextNode(config.territory.label));
        list.appendChild(territoryItem);
      }
      box.appendChild(list);
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    return control;
  }

  /* --- outline of France when no background tile loads ------------------------------------ */

  function outlineWhenTilesFail(map, url) {
    if (!url) return;
    var drawn = false;
    function draw() {
      if (drawn) return;
      drawn = true;
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          var outline = L.geoJSON(data, {
            interactive: false,
            style: function () { return { color: "#7d8478", weight: 1, opacity: 0.9, fill: false, className: "atlas-outline" }; },
          });
          outline.addTo(map);
          outline.bringToBack();
          if (map.atlas) map.atlas.layers.outline = outline;
        })
        .catch(function () { drawn = false; });
    }
    map.eachLayer(function (layer) {
      if (layer instanceof L.TileLayer) layer.on("tileerror", draw);
    });
  }

  /* --- setup ---------------------------------------------------------------------------- */

  function withQuery(url, query) {
    if (!url) return url;
    var base = url.split("?")[0];
    var params = new URLSearchParams(url.split("?")[1] || "");
    // Filters replace the previous ones; other parameters (the data version) stay.
    ["products", "weekday", "accepting", "network"].forEach(function (k) { params.delete(k); });
    new URLSearchParams(query || "").forEach(function (value, key) { if (value) params.set(key, value); });
    var qs = params.toString();
    return qs ? base + "?" + qs : base;
  }

  function setup(map, config) {
    var texts = config.texts;
    var controller = { map: map, layers: {}, config: config };
    var overlays = {};
    var bounds = L.latLngBounds([]);

    var severalLayers = config.layers.length > 1;
    config.layers.forEach(function (layerConfig) {
      layerConfig.shifted = severalLayers;  // only beside another layer's groups
      var layer;
      if (layerConfig.tiles) {
        layer = new PointTiles(layerConfig.tiles, layerConfig, texts, { maxZoom: 20 });
      } else {
        layer = inlineLayer(layerConfig, texts, config.cluster !== false);
        if (layer.getBounds && layer.getLayers().length) bounds.extend(layer.getBounds());
      }
      controller.layers[layerConfig.id] = layer;
      if (layerConfig.visible !== false) layer.addTo(map);
      var swatch = '<span class="atlas-legend__pin atlas-pin--' + layerConfig.id + '"></span> ';
      overlays[swatch + L.Util.template("{label}", { label: layerConfig.label })] = layer;
    });

    if (config.territory) {
      var territory = territoryLayer(config.territory);
      controller.layers.territory = territory;
      if (config.territory.visible) {
        territory.addTo(map);
        if (territory.getLayers().length) bounds.extend(territory.getBounds());
      }
      overlays['<span class="atlas-legend__territory"></span> ' + config.territory.label] = territory;
    }

    if (config.here) {
      var here = L.circleMarker([config.here.lat, config.here.lon], {
        radius: 7, color: "#fff", weight: 2, fillColor: "#1d5fd1", fillOpacity: 1, className: "atlas-here",
      }).bindTooltip(texts.here);
      here.addTo(map);
      bounds.extend(here.getLatLng());
    }

    if (config.fit && bounds.isValid()) {
      map.fitBounds(bounds, { padding: [24, 24], maxZoom: 14, animate: false });
    }
    if (config.layerControl) {
      // Folded into its button on a small map (a phone), where it would cover the points.
      L.control.layers(null, overlays, { collapsed: map.getSize().x < 600, position: "topright" }).addTo(map);
    }
    if (config.legend) legendControl(config).addTo(map);

    controller.applyFilters = function (query) {
      config.layers.forEach(function (layerConfig) {
        var layer = controller.layers[layerConfig.id];
        if (layerConfig.tiles) {
          layerConfig.tiles = withQuery(layerConfig.tiles, query);
          layer.setUrl(layerConfig.tiles);
        } else if (layerConfig.url) {
          layerConfig.url = withQuery(layerConfig.url, query);
          fetch(layerConfig.url, { credentials: "same-origin" })
            .then(function (r) { return r.json(); })
            .then(function (data) { layer.atlasSetData(data); });
        }
      });
      var territory = controller.layers.territory;
      if (territory && territory.atlasUrl) {
        territory.atlasUrl = withQuery(territory.atlasUrl, query);
        if (map.hasLayer(territory)) territory.atlasLoad(territory.atlasUrl);
      }
    };
    // True once every tiled layer on the map has drawn the tiles in view (benchmarks, tests).
    controller.loaded = function () {
      return config.layers.every(function (layerConfig) {
        var layer = controller.layers[layerConfig.id];
        if (!layerConfig.tiles || !map.hasLayer(layer)) return true;
        return layer._everLoaded && !layer.isLoading();
      });
    };
    controller.count = function (id) {
      var layer = controller.layers[id];
      return layer && map.hasLayer(layer) && layer.atlasCount ? layer.atlasCount() : 0;
    };

    outlineWhenTilesFail(map, config.outline);
    // Zoom to a network's territory (the /carte/ network filter).
    controller.fitTerritory = function (slug) {
      var url = config.territory && config.territory.url;
      if (!slug || !url) return;
      fetch(withQuery(url, "network=" + encodeURIComponent(slug)), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data || !data.features || !data.features.length) return;
          map.fitBounds(L.geoJSON(data).getBounds(), { padding: [16, 16], animate: false });
        });
    };

    map.atlas = controller;
    window.atlasMaps = window.atlasMaps || [];
    window.atlasMaps.push(controller);
    return controller;
  }

  window.AtlasMap = { setup: setup, withQuery: withQuery, formatDistance: formatDistance };
})();
