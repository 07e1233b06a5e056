"""The coverage map of a network: a choropleth of its communes, white zones, product gaps, AMAPs.

Built on `cartography.builders` (Leaflet served by the app, never a CDN): the AMAP points go through
the shared map script, the polygons are folium GeoJSON layers with their own legend.
"""

from __future__ import annotations

import html
import json
import math

import folium
from branca.element import MacroElement
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from folium.template import Template

from cartography.builders import build_network_map

from . import exports, figures, selectors

# AMAP markers drawn inline up to this many; beyond, the choropleth speaks for itself.
MARKER_LIMIT = 3000

NO_DATA = "#bdbdbd"
DISTANCE_COLORS = ("#1a7f37", "#52a447", "#a6d96a", "#fdae61", "#d7301f")
DENSITY_COLORS = ("#f1eef6", "#bdc9e1", "#74a9cf", "#2b8cbe", "#045a8d")
WHITE_ZONE_COLOR = "#7b1fa2"
PRODUCT_GAP_COLOR = "#e65100"


def _fmt(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def distance_classes(radius_km: float) -> list[tuple[float, str, str]]:
    """(upper bound in km, colour, label) of the distance choropleth, relative to the radius."""
    r = radius_km
    bounds = [r / 3, 2 * r / 3, r, 2 * r, math.inf]
    labels = [
        _("moins de %(b)s km") % {"b": _fmt(round(r / 3, 1))},
        _("%(a)s à %(b)s km") % {"a": _fmt(round(r / 3, 1)), "b": _fmt(round(2 * r / 3, 1))},
        _("%(a)s à %(b)s km (couvert)") % {"a": _fmt(round(2 * r / 3, 1)), "b": _fmt(r)},
        _("%(a)s à %(b)s km (non couvert)") % {"a": _fmt(r), "b": _fmt(2 * r)},
        _("plus de %(b)s km, ou aucune AMAP") % {"b": _fmt(2 * r)},
    ]
    return list(zip(bounds, DISTANCE_COLORS, labels, strict=True))


DENSITY_BOUNDS = (0.0, 2.0, 5.0, 10.0, math.inf)
# Share of the population covered (départements, national scale), highest first: compared as 1 - share.
SHARE_BOUNDS = (0.10, 0.25, 0.50, 0.75, math.inf)


def share_classes() -> list[tuple[float, str, str]]:
    labels = [
        _("90 % ou plus de la population couverte"),
        _("75 à 90 %"),
        _("50 à 75 %"),
        _("25 à 50 %"),
        _("moins de 25 %"),
    ]
    return list(zip(SHARE_BOUNDS, DISTANCE_COLORS, labels, strict=True))


def density_classes() -> list[tuple[float, str, str]]:
    labels = [
        _("aucune AMAP"),
        _("jusqu'à 2 AMAP pour 100 000 hab."),
        _("2 à 5"),
        _("5 à 10"),
        _("plus de 10"),
    ]
    return list(zip(DENSITY_BOUNDS, DENSITY_COLORS, labels, strict=True))


def _class_color(value, classes) -> str:
    if value is None:
        return classes[-1][1]
    for bound, color, _label in classes:
        if value <= bound:
            return color
    return classes[-1][1]


class Legend(MacroElement):
    """A Leaflet control listing coloured swatches (server-side HTML, escaped)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            (function () {
                var legend = L.control({position: "bottomright"});
                legend.onAdd = function () {
                    var div = L.DomUtil.create("div", "atlas-legend coverage-legend");
                    div.innerHTML = {{ this.body|tojson }};
                    L.DomEvent.disableClickPropagation(div);
                    return div;
                };
                legend.addTo({{ this._parent.get_name() }});
            })();
        {% endmacro %}
        """
    )

    SWATCHES = {
        "fill": "background:{c}",
        "outline": "background:transparent;border:2px dashed {c}",
        "hatched": "background:{c}40;border:1px solid {c}",
        "pin": "background:{c};border:2px solid #fff;border-radius:50%;box-shadow:0 0 0 1px rgba(0,0,0,.45)",
    }

    def __init__(self, *, title: str, items: list[tuple[str, str]], extra: list[tuple[str, str, str]] = ()):
        """`items`: (colour, label) of the choropleth; `extra`: (kind, colour, label) of the other layers."""
        super().__init__()
        self._name = "CoverageLegend"
        entries = [("fill", color, label) for color, label in items] + list(extra)
        rows = "".join(
            f'<li><span class="coverage-swatch" style="{self.SWATCHES[kind].format(c=html.escape(color))}"></span>'
            f"{html.escape(label)}</li>"
            for kind, color, label in entries
        )
        self.body = f"<strong>{html.escape(title)}</strong><ul>{rows}</ul>"


def _amap_features(result: dict) -> dict:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
                "properties": {"id": p["id"], "name": p["name"], "commune": p["commune"]},
            }
            for p in result["amap_points"]
        ],
    }


def _amap_url() -> str:
    try:
        return reverse("directory:amap_detail", args=[0]).replace("/0/", "/{id}/")
    except NoReverseMatch:
        return ""


def _bounds(result: dict) -> list[list[float]] | None:
    """South-west / north-east of the territory's communes (their reference points)."""
    from django.contrib.gis.db.models import Extent

    from geo.models import Commune

    codes = result["communes"]["code"]
    if not codes:
        return None
    if len(codes) > 2000:
        # Large territories: the départements' extents are enough and much cheaper.
        from geo.models import Department

        departments = sorted(set(result["communes"]["department"]))
        extent = Department.objects.filter(code__in=departments).aggregate(e=Extent("geom"))["e"]
    else:
        extent = Commune.objects.filter(code__in=codes).aggregate(e=Extent("geom"))["e"]
    if not extent:
        return None
    west, south, east, north = extent
    return [[south, west], [north, east]]


POPULATION_BOUNDS = (500, 2_000, 10_000, 50_000, math.inf)
MODES = ("distance", "density", "population")


def population_classes() -> list[tuple[float, str, str]]:
    labels = [
        _("moins de 500 habitants"),
        _("500 à 2 000"),
        _("2 000 à 10 000"),
        _("10 000 à 50 000"),
        _("plus de 50 000"),
    ]
    return list(zip(POPULATION_BOUNDS, DENSITY_COLORS, labels, strict=True))


def choropleth_legend(result: dict, mode: str) -> tuple[str, list[tuple[float, str, str]]]:
    """(layer name, classes) of the choropleth for this mode and territory size."""
    radius = result["params"]["radius_km"]
    by_commune = len(result["communes"]["code"]) <= figures.COMMUNE_CHOROPLETH_MAX
    if mode == "density":
        return _("AMAP pour 100 000 habitants"), density_classes()
    if mode == "population":
        if by_commune:
            return _("Habitants par commune"), population_classes()
        return _("AMAP pour 100 000 habitants"), density_classes()
    if by_commune:
        return _("Distance à l'AMAP la plus proche"), distance_classes(radius)
    return _("Part de la population à moins de %(r)s km d'une AMAP") % {"r": _fmt(radius)}, share_classes()


def choropleth_features(result: dict, *, mode: str) -> dict:
    """The choropleth as a FeatureCollection dict (communes, or départements when too many)."""
    _name, classes = choropleth_legend(result, mode)
    if len(result["communes"]["code"]) <= figures.COMMUNE_CHOROPLETH_MAX:
        features = []
        for row, geometry in _commune_shapes(result):
            if mode == "distance":
                value = row["nearest_km"]
            elif mode == "population":
                value = row["population"]
            else:
                value = row["amaps_per_100k"] or 0.0
            properties = {
                "name": row["name"],
                "population": row["population"],
                "nearest_label": "—" if row["nearest_km"] is None else f"{_fmt(row['nearest_km'])} km",
                "amaps": row["amaps"],
                "fill": _class_color(value, classes),
            }
            features.append({"type": "Feature", "geometry": geometry, "properties": properties})
        return {"type": "FeatureCollection", "features": features}
    # National scale: one polygon per département.
    geometries = selectors.department_geometries([d["code"] for d in result["departments"]])
    features = []
    for row in result["departments"]:
        if row["code"] not in geometries:
            continue
        value = 1.0 - row["share"] if mode == "distance" else (row["amaps_per_100k"] or 0.0)
        features.append(
            {
                "type": "Feature",
                "geometry": json.loads(geometries[row["code"]]),
                "properties": {
                    "name": f"{row['name']} ({row['code']})",
                    "population": row["population"],
                    "amaps": row["amaps"],
                    "nearest_label": f"{round(row['share'] * 100)} %",
                    "fill": _class_color(value, classes),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def default_mode(result: dict) -> str:
    """Distances when there are AMAPs; where people live when there is none yet."""
    return "distance" if result["figures"]["amaps"] else "population"


def build_coverage_map(*, result: dict, mode: str | None = None, height: str = "34rem") -> folium.Map:
    """The dashboard map: choropleth, white zones, missing product, AMAP delivery places."""
    mode = mode or default_mode(result)
    radius = result["params"]["radius_km"]
    amaps = _amap_features(result) if len(result["amap_points"]) <= MARKER_LIMIT else None
    m = build_network_map(amaps=amaps, center=(46.6, 2.4), zoom=6, amap_url=_amap_url())
    m.atlas_height = height
    m.atlas_label = _("Carte de couverture du réseau %(name)s") % {"name": result["network"]["name"]}
    for child in m._children.values():
        config = getattr(child, "config", None)
        if isinstance(config, dict) and "layers" in config:
            config["layerControl"] = False
            config["legend"] = False
    bounds = _bounds(result)
    if bounds:
        m.fit_bounds(bounds)

    by_commune = len(result["communes"]["code"]) <= figures.COMMUNE_CHOROPLETH_MAX
    layer_name, classes = choropleth_legend(result, mode)
    choropleth = folium.GeoJson(
        choropleth_features(result, mode=mode),
        name=layer_name,
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            "fillOpacity": 0.65,
            "color": "#ffffff",
            "weight": 0.5,
        },
        highlight_function=lambda f: {"weight": 2, "color": "#333333"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "population", "nearest_label", "amaps"],
            aliases=[
                _("Commune") if by_commune else _("Département"),
                _("Habitants"),
                _("AMAP la plus proche") if by_commune else _("Population couverte"),
                _("AMAP"),
            ],
            localize=True,
        ),
        smooth_factor=0.5,
    )
    choropleth.add_to(m)

    extra = []
    zones = json.loads(exports.white_zones_geojson(result))
    if not result["figures"]["amaps"]:
        # Without any AMAP the whole territory is one group: outline the largest communes only.
        zones["features"] = [f for f in zones["features"] if f["properties"]["kind"] == "commune"]
    if zones["features"]:
        label = _("Zones blanches (plus de %(r)s km, %(p)s hab. et plus)") % {
            "r": _fmt(radius),
            "p": f"{result['white_zones']['min_population']:,}".replace(",", "\u202f"),
        }
        for feature in zones["features"]:
            props = feature["properties"]
            props["label"] = ", ".join(props["names"][:5]) + ("…" if len(props["names"]) > 5 else "")
            props["nearest_label"] = "—" if props["nearest_km"] is None else f"{_fmt(props['nearest_km'])} km"
        folium.GeoJson(
            zones,
            name=label,
            style_function=lambda f: {
                "fillOpacity": 0.0,
                "color": WHITE_ZONE_COLOR,
                "weight": 3 if f["properties"]["kind"] == "group" else 2,
                "dashArray": "6 4" if f["properties"]["kind"] == "group" else None,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["label", "population", "nearest_label"],
                aliases=[_("Zone blanche"), _("Habitants"), _("AMAP la plus proche")],
                localize=True,
            ),
        ).add_to(m)
        extra.append(("outline", WHITE_ZONE_COLOR, _("Zone blanche")))

    selected = result.get("selected_product")
    if selected and by_commune:
        missing = product_gap_features(result)
        if missing["features"]:
            label = _("Sans %(product)s à moins de %(r)s km") % {"product": selected["name"].lower(), "r": _fmt(radius)}
            folium.GeoJson(
                missing,
                name=label,
                style_function=lambda f: {
                    "fillColor": PRODUCT_GAP_COLOR,
                    "fillOpacity": 0.25,
                    "color": PRODUCT_GAP_COLOR,
                    "weight": 1,
                },
                tooltip=folium.GeoJsonTooltip(
                    fields=["name", "population", "product_label"],
                    aliases=[_("Commune"), _("Habitants"), selected["name"]],
                    localize=True,
                ),
                show=True,
            ).add_to(m)
            extra.append(("hatched", PRODUCT_GAP_COLOR, label))

    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    legend_items = [(color, label) for _bound, color, label in classes]
    if amaps is not None and amaps["features"]:
        extra.append(("pin", "#2f6b2f", _("Lieu de livraison d'une AMAP")))
    Legend(title=layer_name, items=legend_items, extra=extra).add_to(m)
    return m


def _commune_shapes(result: dict):
    """(commune row, GeoJSON geometry dict) for each commune of the territory with an outline."""
    rows = exports.commune_rows(result)
    geometries = exports.cached_commune_geometries(result, [r["code"] for r in rows])
    for row in rows:
        if row["code"] in geometries:
            yield row, json.loads(geometries[row["code"]])


def product_gap_features(result: dict) -> dict:
    """Communes of the territory farther than the radius from an AMAP offering the chosen product."""
    radius = result["params"]["radius_km"]
    features = []
    for row, geometry in _commune_shapes(result):
        distance = row.get("product_nearest_km")
        if distance is None or distance > radius:
            properties = {
                "name": row["name"],
                "population": row["population"],
                "product_label": _("aucune AMAP") if distance is None else f"{_fmt(distance)} km",
            }
            features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return {"type": "FeatureCollection", "features": features}
