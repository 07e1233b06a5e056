"""Map builders: pure functions of data returning `folium.Map` objects, and how to render them.

Every map loads Leaflet and its plugins from the app's own static files (installed by
`scripts/assets.sh` into `static/vendor/`), never from a CDN; tiles come from
`settings.MAP_TILE_URL` (the only third-party request a map makes; points render without it).

Data comes in two shapes (see `directory.map_data` for the functions that build them in PostGIS):
- a GeoJSON FeatureCollection dict, drawn with client-side clustering (a few thousand points);
- a vector-tile URL template (`/carte/tuiles/amaps/{z}/{x}/{y}.pbf?...`), grid-clustered by the
  server, for the whole directory (100k points): the page never holds one marker per AMAP.

Feature properties understood by the popups: `name`, `url` (or `id`, with the layer's URL
template), `commune`, `delivery` (text), `products` (text), `accepting` (text), `distance_m`.

Signatures (all keyword-only; `center` is `(lat, lon)`):
- `build_results_map(*, center, features, zoom=12) -> folium.Map`: search results around a place.
- `build_place_map(*, center, features, zoom=14) -> folium.Map`: one AMAP or farm page.
- `build_tour_map(*, depot, stops, routes, zoom=10) -> folium.Map`: a farm's delivery tours.
- `build_network_map(*, territory=None, amaps=None, farms=None, amap_tiles=None, farm_tiles=None,
  center=None, zoom=None) -> folium.Map`: a network's territory, AMAPs and farms
  (`directory.map_data.network_map_data(network=...)` returns these keyword arguments).
- `build_directory_map(*, center, zoom, amap_tiles, farm_tiles, territories_url, ...) -> folium.Map`:
  the map of the movement (`/carte/`) and its embeds.
- `map_parts(m) -> {"header", "html", "script"}`: strings for a page; render them with
  `{% include "maps/_map.html" with map=parts %}` (header = CSS/JS links, html = the map div,
  script = the JavaScript that draws it).
- `standalone_html(m) -> str`: one HTML file with Leaflet inlined (for `export_map`).
- `inlined_assets(m) -> str`: the map's CSS and JS as inline elements (for other offline files).
- `embed_snippet(*, network_slug, base_url) -> str`: the `<iframe>` a network pastes in its site.
"""

from __future__ import annotations

import functools
import html as html_lib
import json
import string
from pathlib import Path
from urllib.parse import urlencode

import folium
import xyzservices
from branca.element import Element, MacroElement
from django.conf import settings
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from folium.template import Template

# Static files each map needs, in load order (paths under STATIC_URL / static/).
_CSS_CORE = ["vendor/leaflet/leaflet.css", "maps/atlas-map.css"]
_CSS_CLUSTER = [
    "vendor/leaflet.markercluster/MarkerCluster.css",
    "vendor/leaflet.markercluster/MarkerCluster.Default.css",
]
_JS_CORE = ["vendor/leaflet/leaflet.js"]
_JS_CLUSTER = ["vendor/leaflet.markercluster/leaflet.markercluster.js"]
_JS_TILES = ["vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"]
_JS_ATLAS = ["maps/atlas-map.js"]

AMAP_COLOR = "#2f6b2f"
FARM_COLOR = "#b5541c"
TERRITORY_COLOR = "#5a4fa3"


class _VerbatimMacros(MacroElement):
    """Renders like branca's MacroElement, the macros' output placed in the figure as written.

    branca hands each macro's output to a new Element, which compiles it as a Jinja template: data
    written into a macro (an AMAP's name in the layers' JSON, a network's name in the map's label)
    would be run as template code on the server (an AMAP named « {{ 7*7 }} » showed « 49 »). This
    also skips compiling the whole layers' JSON once more (~2 ms of a search page's map).
    """

    def render(self, **kwargs):
        figure = self.get_root()
        macros = self._template.module.__dict__
        for part in ("header", "html", "script"):
            if (macro := macros.get(part)) is not None:
                getattr(figure, part).add_child(_Verbatim(macro(self, kwargs)), name=self.get_name())
        for element in self._children.values():
            element.render(**kwargs)


class AtlasMap(_VerbatimMacros, folium.Map):
    """A folium Map whose template only styles its own div (folium's default one restyles
    `html, body`) and that loads nothing from a CDN: assets are listed in `atlas_assets`.

    Rendered by `_VerbatimMacros` (folium's own steps for a map add nothing here: no default
    CSS/JS links, no class includes).
    """

    default_js: list = []
    default_css: list = []

    _template = Template(
        """
        {% macro header(this, kwargs) %}
            <style>
                #{{ this.get_name() }} { position: relative; width: 100%; height: {{ this.atlas_height }}; }
            </style>
        {% endmacro %}

        {% macro html(this, kwargs) %}
            <div class="folium-map atlas-map" id={{ this.get_name()|tojson }}
                 role="region" aria-label="{{ this.atlas_label|e }}"></div>
        {% endmacro %}

        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.map(
                {{ this.get_name()|tojson }},
                {
                    center: {{ this.location|tojson }},
                    crs: L.CRS.{{ this.crs }},
                    ...{{ this.options|tojavascript }}
                }
            );
        {% endmacro %}
        """
    )

    def __init__(self, *, center, zoom: int, height: str = "100%", label: str = "", **kwargs):
        super().__init__(location=list(center), zoom_start=zoom, tiles=None, **kwargs)
        self.atlas_height = height
        self.atlas_label = label or _("Carte")
        self.atlas_assets: dict[str, list[str]] = {"css": list(_CSS_CORE), "js": list(_JS_CORE)}

    def needs(self, *, cluster: bool = False, tiles: bool = False) -> None:
        """Record which plugins the page must load (Leaflet itself always)."""
        if cluster:
            _add_unique(self.atlas_assets["css"], _CSS_CLUSTER)
            _add_unique(self.atlas_assets["js"], _JS_CLUSTER)
        if tiles:
            _add_unique(self.atlas_assets["js"], _JS_TILES)


class AtlasLayers(_VerbatimMacros):
    """Draws the data layers, legend and controls through `static/maps/atlas-map.js`."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            AtlasMap.setup({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, config: dict):
        super().__init__()
        self._name = "AtlasLayers"
        self.config = config


class _Verbatim(Element):
    """Text placed in a figure as it is, never read as a template."""

    def __init__(self, text: str):
        super().__init__()
        self._text = text

    def render(self, **kwargs) -> str:
        return self._text


def _add_unique(target: list[str], items: list[str]) -> None:
    for item in items:
        if item not in target:
            target.append(item)


def _tile_layer() -> folium.TileLayer:
    # The background is the only thing fetched from another host; points render without it.
    return folium.TileLayer(
        tiles=_tile_source(settings.MAP_TILE_URL, settings.MAP_TILE_ATTRIBUTION),
        attr=settings.MAP_TILE_ATTRIBUTION,
        name=_("Fond de carte"),
        control=False,
        max_zoom=19,
    )


@functools.lru_cache(maxsize=8)
def _tile_source(url: str, attribution: str) -> str | xyzservices.TileProvider:
    """The background's URL as folium takes it without searching xyzservices' catalogue.

    Given a string, folium first looks it up among xyzservices' thousand named providers (~2 ms
    for every map drawn); a provider holding the URL skips that search and gives the same URL
    back, as long as it has only the usual placeholders ({x} {y} {z} {s} {r}).
    """
    fields = {name for _, name, _, _ in string.Formatter().parse(url) if name is not None}
    if not fields <= {"x", "y", "z", "s", "r"}:
        return url
    return xyzservices.TileProvider(name="atlas-background", url=url, attribution=attribution)


def _texts() -> dict:
    """Interface strings for the map script, translated on the server."""
    return {
        "amaps": _("AMAP"),
        "farms": _("Fermes (emplacement approximatif)"),
        "territory": _("Territoire du réseau"),
        "territories": _("Territoires des réseaux"),
        "cluster": _("Groupe de points (nombre)"),
        "clusterPopup": _("%(count)s lieux ici : zoomez pour les voir.") % {"count": "{count}"},
        "here": _("Lieu recherché"),
        "open": _("Voir la fiche"),
        "delivery": _("Livraison"),
        "products": _("Produits"),
        "distance": _("Distance"),
        "legend": _("Légende"),
        "farmNote": _("Les fermes sont placées à un emplacement approximatif."),
        "loading": _("Chargement…"),
        "weekdays": [_("lundi"), _("mardi"), _("mercredi"), _("jeudi"), _("vendredi"), _("samedi"), _("dimanche")],
    }


def _layer(
    *,
    key: str,
    label: str,
    color: str,
    features: dict | None = None,
    tiles: str | None = None,
    detail_url: str = "",
    visible: bool = True,
) -> dict:
    return {
        "id": key,
        "label": label,
        "color": color,
        "data": features,
        "tiles": tiles,
        "detailUrl": detail_url,
        "visible": visible,
    }


def _new_map(*, center, zoom: int, height: str, label: str, config: dict) -> AtlasMap:
    m = AtlasMap(center=center, zoom=zoom, height=height, label=label, control_scale=True)
    _tile_layer().add_to(m)
    uses_inline = any(layer["data"] is not None for layer in config["layers"])
    uses_tiles = any(layer["tiles"] for layer in config["layers"])
    m.needs(cluster=uses_inline, tiles=uses_tiles)
    _add_unique(m.atlas_assets["js"], _JS_ATLAS)
    config.setdefault("texts", _texts())
    config.setdefault("outline", _outline_url())
    AtlasLayers(config).add_to(m)
    return m


def _outline_url() -> str | None:
    """Where the départements' outline is served (drawn when no background tile loads), if it is."""
    try:
        return reverse("maps:departments_outline")
    except NoReverseMatch:  # a project without the map pages' URLs
        return None


def build_results_map(*, center: tuple[float, float], features: dict, zoom: int = 12) -> folium.Map:
    """Search results (a FeatureCollection of AMAPs) around the searched place, fitted to them."""
    config = {
        "layers": [_layer(key="amaps", label=_("AMAP"), color=AMAP_COLOR, features=features)],
        "here": {"lat": center[0], "lon": center[1]},
        "fit": True,
        "legend": False,
        "layerControl": False,
    }
    return _new_map(center=center, zoom=zoom, height="24rem", label=_("Carte des résultats"), config=config)


def build_place_map(*, center: tuple[float, float], features: dict, zoom: int = 14) -> folium.Map:
    """One AMAP's delivery place or one farm's public (masked) location, with its neighbours if given.

    Features with `"kind": "farm"` in their properties are drawn as farms, others as AMAPs.
    """
    amaps, farms = _split_by_kind(features)
    layers = [_layer(key="amaps", label=_("AMAP"), color=AMAP_COLOR, features=amaps)]
    if farms["features"]:
        layers.append(_layer(key="farms", label=_("Fermes"), color=FARM_COLOR, features=farms))
    config = {"layers": layers, "fit": False, "legend": False, "layerControl": False, "cluster": False}
    return _new_map(center=center, zoom=zoom, height="18rem", label=_("Carte du lieu"), config=config)


def build_tour_map(*, depot: tuple[float, float], stops: dict, routes: dict, zoom: int = 10) -> folium.Map:
    """A farm's delivery tours: its (public) depot, the AMAPs it serves, one line per day's route.

    `depot` is (lat, lon); `stops` a FeatureCollection of points; `routes` one of LineStrings
    (with a `name` property, e.g. the day). Fitted to everything drawn.
    """
    depot_feature = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [depot[1], depot[0]]},
                "properties": {"name": _("La ferme (emplacement approximatif)"), "kind": "farm"},
            }
        ],
    }
    layers = [
        _layer(key="routes", label=_("Tournées"), color=FARM_COLOR, features=routes),
        _layer(key="amaps", label=_("AMAP livrées"), color=AMAP_COLOR, features=stops),
        _layer(key="farms", label=_("La ferme"), color=FARM_COLOR, features=depot_feature),
    ]
    config = {"layers": layers, "fit": True, "legend": False, "layerControl": True, "cluster": False}
    return _new_map(center=depot, zoom=zoom, height="24rem", label=_("Carte des tournées"), config=config)


def build_network_map(
    *,
    territory: dict | None = None,
    amaps: dict | None = None,
    farms: dict | None = None,
    amap_tiles: str | None = None,
    farm_tiles: str | None = None,
    center: tuple[float, float] | None = None,
    zoom: int | None = None,
    amap_url: str = "",
    farm_url: str = "",
) -> folium.Map:
    """A network's territory with its AMAPs and farms (inline GeoJSON, or tile URLs when large)."""
    layers = [
        _layer(key="amaps", label=_("AMAP"), color=AMAP_COLOR, features=amaps, tiles=amap_tiles, detail_url=amap_url),
        _layer(key="farms", label=_("Fermes"), color=FARM_COLOR, features=farms, tiles=farm_tiles, detail_url=farm_url),
    ]
    layers = [layer for layer in layers if layer["data"] is not None or layer["tiles"]]
    config = {
        "layers": layers,
        "territory": {"data": territory, "label": _("Territoire du réseau"), "visible": True} if territory else None,
        "fit": center is None,
        "legend": True,
        "layerControl": True,
    }
    return _new_map(
        center=center or (46.6, 2.4), zoom=zoom or 6, height="28rem", label=_("Carte du réseau"), config=config
    )


def build_directory_map(
    *,
    amap_tiles: str,
    farm_tiles: str | None,
    territories_url: str | None = None,
    center: tuple[float, float] = (46.6, 2.4),
    zoom: int = 6,
    amap_url: str = "",
    farm_url: str = "",
    height: str = "100%",
    show_farms: bool = True,
) -> folium.Map:
    """The map of the movement: AMAP and farm layers as grid-clustered vector tiles, territories on demand."""
    layers = [_layer(key="amaps", label=_("AMAP"), color=AMAP_COLOR, tiles=amap_tiles, detail_url=amap_url)]
    if farm_tiles:
        layers.append(
            _layer(
                key="farms",
                label=_("Fermes"),
                color=FARM_COLOR,
                tiles=farm_tiles,
                detail_url=farm_url,
                visible=show_farms,
            )
        )
    config = {
        "layers": layers,
        "territory": {"url": territories_url, "label": _("Territoires des réseaux"), "visible": False}
        if territories_url
        else None,
        "fit": False,
        "legend": True,
        "layerControl": True,
    }
    return _new_map(center=center, zoom=zoom, height=height, label=_("Carte des AMAP et des fermes"), config=config)


def _split_by_kind(features: dict) -> tuple[dict, dict]:
    amaps = [f for f in features.get("features", []) if (f.get("properties") or {}).get("kind") != "farm"]
    farms = [f for f in features.get("features", []) if (f.get("properties") or {}).get("kind") == "farm"]
    return ({"type": "FeatureCollection", "features": amaps}, {"type": "FeatureCollection", "features": farms})


# --- rendering -------------------------------------------------------------------------------


def map_parts(m: folium.Map) -> dict[str, str]:
    """The strings a page template needs: header (asset links + style), html (div), script (JS)."""
    figure = m.get_root()
    figure.render()  # fills figure.header / html / script from the map's children
    assets = getattr(m, "atlas_assets", {"css": _CSS_CORE, "js": _JS_CORE + _JS_ATLAS})
    links = [f'<link rel="stylesheet" href="{html_lib.escape(static(path))}">' for path in assets["css"]]
    links += [f'<script src="{html_lib.escape(static(path))}"></script>' for path in assets["js"]]
    return {
        "header": "\n".join(links) + _own_header(figure),
        "html": figure.html.render(),
        "script": figure.script.render(),
    }


def _own_header(figure) -> str:
    # Only the elements our maps add (their style); folium's figure meta tags are left out.
    return "\n".join(child.render() for name, child in figure.header._children.items() if name not in {"meta_http"})


def standalone_html(m: folium.Map, *, title: str = "AMAP Atlas") -> str:
    """A self-contained HTML page: Leaflet, plugins and styles inlined, works from a file."""
    figure = m.get_root()
    figure.render()
    return (
        '<!doctype html>\n<html lang="fr">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html_lib.escape(title)}</title>\n{inlined_assets(m)}\n{_own_header(figure)}\n"
        "<style>html, body { height: 100%; margin: 0; }</style>\n"
        f"</head>\n<body>\n{figure.html.render()}\n<script>\n{figure.script.render()}\n</script>\n"
        "</body>\n</html>\n"
    )


def inlined_assets(m: folium.Map) -> str:
    """The map's stylesheets and scripts (Leaflet, plugins, ours) inlined as `<style>`/`<script>`
    elements, for files that must open offline (`standalone_html`, a standalone report)."""
    assets = getattr(m, "atlas_assets", {"css": _CSS_CORE, "js": _JS_CORE + _JS_ATLAS})
    styles = "\n".join(f"<style>\n{inline_css(path)}\n</style>" for path in assets["css"])
    scripts = "\n".join(f"<script>\n{read_static(path)}\n</script>" for path in assets["js"])
    return styles + "\n" + scripts


def _static_path(path: str) -> Path:
    from django.contrib.staticfiles import finders

    found = finders.find(path)
    if not found:
        raise FileNotFoundError(f"static file {path} is missing: run `make assets`")
    return Path(found)


def read_static(path: str) -> str:
    # `</script>` inside inlined code would end the script element early.
    return _static_path(path).read_text(encoding="utf-8").replace("</script", "<\\/script")


def inline_css(path: str) -> str:
    """CSS with its small images (Leaflet's layer icons) turned into data: URLs."""
    import base64
    import re

    source = _static_path(path)
    text = source.read_text(encoding="utf-8")

    def replace(match: re.Match) -> str:
        target = (source.parent / match.group(1)).resolve()
        if not target.is_file():
            return match.group(0)
        data = base64.b64encode(target.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    return re.sub(r"url\((?!data:)([^)\"']+\.png)\)", replace, text)


def embed_snippet(*, network_slug: str, base_url: str, products: list[str] | None = None) -> str:
    """The copy-paste `<iframe>` that shows a network's map on its own website."""
    query = {"network": network_slug}
    if products:
        query["products"] = ",".join(products)
    src = f"{base_url.rstrip('/')}/carte/embed/?{urlencode(query)}"
    title = _("Carte des AMAP du réseau")
    return (
        f'<iframe src="{html_lib.escape(src)}" title="{html_lib.escape(title)}" width="100%" height="480" '
        'style="border:0" loading="lazy" referrerpolicy="no-referrer-when-downgrade"></iframe>'
    )


def config_json(m: folium.Map) -> str:
    """The layers configuration of a map as JSON (for tests and debugging)."""
    for child in m._children.values():
        if isinstance(child, AtlasLayers):
            return json.dumps(child.config)
    return "{}"


__all__ = [
    "AtlasMap",
    "build_directory_map",
    "build_network_map",
    "build_place_map",
    "build_results_map",
    "embed_snippet",
    "inlined_assets",
    "map_parts",
    "standalone_html",
]
