"""Map pages (`/carte/`, the embed) and the data endpoints they load: tiles, GeoJSON, CSV, territories.

Everything is read from the database at each request (tiles are cached under a data version
that changes with the directory), so the map follows the directory with no export step.
"""

from __future__ import annotations

import hashlib

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from cartography.builders import build_directory_map, build_network_map, map_parts
from directory.csv_export import CsvDictWriter
from directory.models import Network, ProductCategory, Weekday

from . import selectors
from .selectors import MapFilterError, MapFilters, parse_map_filters

LAYERS = ("amaps", "farms")
DOWNLOAD_NAMES = {"amaps": "amap", "farms": "fermes"}


def _query_with_joined_products(request) -> dict[str, str]:
    """A form sends `products=a&products=b`; links and the API write `products=a,b`. Accept both."""
    query = {key: request.GET.get(key, "") for key in selectors.FILTER_NAMES}
    products = [p for value in request.GET.getlist("products") for p in value.split(",") if p.strip()]
    query["products"] = ",".join(products)
    return query


# The filters as people see them on the page (the API names them by parameter).
FILTER_LABELS = {
    "products": _lazy("produits"),
    "weekday": _lazy("jour de livraison"),
    "accepting": _lazy("accepte de nouveaux membres"),
    "network": _lazy("réseau"),
}


def errors_for_people(request, errors: dict[str, list[str]], *, embedded: bool = False) -> list[str]:
    """Filter errors as sentences for a visitor: what went wrong and what to do (not `network : …`)."""
    sentences = []
    for name, messages in errors.items():
        value = request.GET.get(name, "")
        if name == "network" and value:
            if embedded:
                sentence = _(
                    "Le réseau « %(slug)s » n'est pas dans l'annuaire : le lien de cette carte est sans doute "
                    "mal recopié ; le site qui l'affiche peut reprendre le code d'intégration depuis la page du réseau."
                )
            else:
                sentence = _(
                    "Le réseau « %(slug)s » n'est pas dans l'annuaire : vérifiez le lien, "
                    "ou choisissez un réseau dans la liste des filtres."
                )
            sentences.append(sentence % {"slug": value})
            continue
        label = FILTER_LABELS.get(name, name)
        reason = "; ".join(str(m) for m in messages).rstrip(".")
        sentences.append(
            _("Le filtre « %(label)s » n'a pas pu être appliqué (%(reason)s) : corrigez-le ou retirez-le.")
            % {"label": label, "reason": reason}
        )
    return sentences


def _filters_or_errors(request) -> tuple[MapFilters, dict[str, list[str]]]:
    try:
        return parse_map_filters(_query_with_joined_products(request)), {}
    except MapFilterError as error:
        return MapFilters(), error.errors


def _directory_map(filters: MapFilters, *, height: str = "100%", show_farms: bool = True):
    version = selectors.data_version()
    return build_directory_map(
        amap_tiles=selectors.tile_url_template(layer="amaps", filters=filters, version=version),
        farm_tiles=selectors.tile_url_template(layer="farms", filters=filters, version=version),
        territories_url=reverse("maps:territories"),
        amap_url=selectors.detail_url_template("directory:amap_detail"),
        farm_url=selectors.detail_url_template("directory:farm_detail"),
        height=height,
        show_farms=show_farms,
    )


def _download_links(filters: MapFilters) -> list[dict]:
    query = urlencode(filters.query())
    suffix = f"?{query}" if query else ""
    return [
        {
            "label": _("AMAP (GeoJSON)"),
            "url": reverse("maps:geojson", args=["amaps"]) + suffix,
            "id": "dl-amaps-geojson",
        },
        {"label": _("AMAP (CSV)"), "url": reverse("maps:csv", args=["amaps"]) + suffix, "id": "dl-amaps-csv"},
        {
            "label": _("Fermes (GeoJSON)"),
            "url": reverse("maps:geojson", args=["farms"]) + suffix,
            "id": "dl-farms-geojson",
        },
        {"label": _("Fermes (CSV)"), "url": reverse("maps:csv", args=["farms"]) + suffix, "id": "dl-farms-csv"},
    ]


@require_GET
def carte(request):
    """The map of the movement: AMAPs and farms of all France, with filters and downloads."""
    filters, errors = _filters_or_errors(request)
    context = {
        "map": map_parts(_directory_map(filters)),
        "filters": filters,
        "errors": errors_for_people(request, errors),
        "products": ProductCategory.objects.order_by("position", "name"),
        "weekdays": Weekday.choices,
        "networks": Network.objects.order_by("name").only("name", "slug"),
        "downloads": _download_links(filters),
        "embed_url": request.build_absolute_uri(reverse("maps:embed")),
    }
    return render(request, "maps/carte.html", context, status=400 if errors else 200)


@require_GET
@xframe_options_exempt  # made to be framed by networks' websites; every other page stays DENY
def embed(request):
    """A bare map for an `<iframe>`: `?network=<slug>&products=…&weekday=…&accepting=true`."""
    filters, errors = _filters_or_errors(request)
    if errors:
        context = {"errors": errors_for_people(request, errors, embedded=True), "full_map_url": reverse("maps:embed")}
        return render(request, "maps/embed.html", context, status=400)
    ancestors = ["*"]  # the whole directory's map may be framed by anyone
    if filters.network:
        network = Network.objects.get(slug=filters.network)
        m = build_network_map(**selectors.network_map_data(network=network, filters=filters))
        m.atlas_height = "100%"
        title = network.name
        ancestors = network.embed_frame_ancestors()
    else:
        m = _directory_map(filters)
        title = _("Carte des AMAP")
    response = render(request, "maps/embed.html", {"map": map_parts(m), "title": title})
    # django-csp reads this: only the sites the network declared may frame its map.
    response._csp_replace = {"frame-ancestors": ancestors}
    return response


def _layer_or_404(layer: str) -> str:
    if layer not in LAYERS:
        raise Http404(_("Couche inconnue."))
    return layer


def _bad_filters(errors: dict[str, list[str]]) -> JsonResponse:
    return JsonResponse(errors, status=400)


@require_GET
def tile(request, layer: str, z: int, x: int, y: int):
    """A Mapbox Vector Tile of AMAPs or farms (farms at their masked public point), grid-clustered."""
    _layer_or_404(layer)
    if z > selectors.MAX_TILE_ZOOM or x >= 2**z or y >= 2**z:
        raise Http404(_("Tuile hors de la carte."))
    filters, errors = _filters_or_errors(request)
    if errors:
        return _bad_filters(errors)
    version = request.GET.get("v") or None
    data = selectors.cached_tile(layer=layer, z=z, x=x, y=y, filters=filters, version=version)
    # A strong validator from the bytes themselves: a browser or a CDN revalidating an expired tile
    # (If-None-Match) gets a bodiless 304 while the directory has not changed it.
    etag = f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'
    # A versioned URL never changes meaning: the browser may keep it; unversioned ones briefly.
    cache_control = f"public, max-age={selectors.TILE_CACHE_SECONDS if version else 60}"
    response = get_conditional_response(request, etag=etag)
    if response is None:
        response = HttpResponse(data, content_type="application/vnd.mapbox-vector-tile")
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response


@require_GET
def geojson(request, layer: str):
    """What the map shows, as GeoJSON (same filters as the map)."""
    _layer_or_404(layer)
    filters, errors = _filters_or_errors(request)
    if errors:
        return _bad_filters(errors)
    body = selectors.feature_collection_json(layer=layer, filters=filters)
    response = HttpResponse(body, content_type="application/geo+json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{DOWNLOAD_NAMES[layer]}.geojson"'
    return response


@require_GET
def csv_download(request, layer: str):
    """What the map shows, as CSV (semicolon-separated, UTF-8 with BOM: opens as is in a spreadsheet)."""
    _layer_or_404(layer)
    filters, errors = _filters_or_errors(request)
    if errors:
        return _bad_filters(errors)
    rows = selectors.csv_rows(layer=layer, filters=filters)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{DOWNLOAD_NAMES[layer]}.csv"'
    response.write("\ufeff")
    columns = ["id", "nom", "commune", "longitude", "latitude", "produits"]
    if layer == "amaps":
        columns += ["livraison", "nouveaux_membres"]
    columns.append("fiche")
    writer = CsvDictWriter(response, fieldnames=columns, delimiter=";")  # neutralises formula-like names
    writer.writeheader()
    base = request.build_absolute_uri("/").rstrip("/")
    for row in rows:
        row["fiche"] = base + row["fiche"]
        writer.writerow(row)
    return response


@require_GET
def territories(request):
    """Networks' territories as simplified GeoJSON (`?network=<slug>` for one)."""
    network = request.GET.get("network") or None
    if network and not Network.objects.filter(slug=network).exists():
        return _bad_filters({"network": [_("réseau inconnu : %(slug)s") % {"slug": network}]})
    body = selectors.territories_json(network=network)
    response = HttpResponse(body, content_type="application/geo+json; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def departments_outline(request):
    """France's départements as light lines, drawn when no background tile loads (cached a day)."""
    response = HttpResponse(selectors.departments_outline_json(), content_type="application/geo+json; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={selectors.OUTLINE_CACHE_SECONDS}"
    return response


__all__ = ["carte", "csv_download", "departments_outline", "embed", "geojson", "territories", "tile"]
