"""Coverage dashboard of a network (`/reseau/<slug>/couverture/`), its downloads, and the
creation of emerging networks (staff only)."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import parse_etags
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET

from cartography.builders import inlined_assets, map_parts
from directory.models import Network
from directory.selectors.network import is_coordinator, network_counts
from directory.services_networks import network_create

from . import charts, exports, layers, snapshots, tasks
from .cache import CACHE_TIMEOUT
from .forms import CoverageForm, NetworkCreateForm
from .maps import build_coverage_map, default_mode
from .territory import TerritoryError, network_territory

TABLE_LIMIT = 20


def _fr_number(value, decimals: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{decimals}f}".replace(",", "\u202f").replace(".", ",")


def _percent(share) -> str:
    return "—" if share is None else f"{_fr_number(share * 100, 1)} %"


def coverage_sections(result: dict) -> dict:
    """Everything the dashboard and the report show besides the map: figures, charts, tables."""
    radius = result["params"]["radius_km"]
    radius_text = _fr_number(radius, 1).replace(",0", "")
    figures = result["figures"]
    reference = result["reference_point"]
    area = result["area_weighted"]
    key_figures = [
        {"label": _("Habitants du territoire"), "value": _fr_number(figures["population"]), "id": "population"},
        {"label": _("Communes"), "value": _fr_number(figures["communes"]), "id": "communes"},
        {"label": _("AMAP actives"), "value": _fr_number(figures["amaps"]), "id": "amaps"},
        {
            "label": _("AMAP pour 100 000 habitants"),
            "value": _fr_number(figures["amaps_per_100k"], 1),
            "id": "amaps-per-100k",
        },
        {"label": _("Fermes"), "value": _fr_number(figures["farms"]), "id": "farms"},
        {
            "label": _("Fermes pour 100 000 habitants"),
            "value": _fr_number(figures["farms_per_100k"], 1),
            "id": "farms-per-100k",
        },
        {
            "label": _("Population à moins de %(r)s km d'une AMAP") % {"r": radius_text},
            "value": _percent(reference["share"]),
            "detail": _("%(n)s habitants — méthode : %(method)s")
            % {"n": _fr_number(reference["covered_population"]), "method": reference["method_label"]},
            "id": "share-reference",
        },
    ]
    if area:
        key_figures.append(
            {
                "label": _("Population à moins de %(r)s km d'une AMAP") % {"r": radius_text},
                "value": _percent(area["share"]),
                "detail": _("%(n)s habitants — méthode : %(method)s")
                % {"n": _fr_number(area["covered_population"]), "method": area["method_label"]},
                "id": "share-area",
            }
        )
    selected = result.get("selected_product")
    if selected:
        key_figures.append(
            {
                "label": _("Population à moins de %(r)s km d'une AMAP proposant : %(p)s")
                % {"r": radius_text, "p": selected["name"]},
                "value": _percent(selected["share"]),
                "detail": _("méthode : %(method)s") % {"method": reference["method_label"]},
                "id": "share-product",
            }
        )
    curve = charts.coverage_curve_svg(
        curve=result["curve"],
        radius_km=radius,
        title=_("Part de la population à moins de X km d'une AMAP"),
        description=_("Courbe de 1 à 30 km (méthode : %(method)s) ; à %(r)s km : %(share)s.")
        % {"method": reference["method_label"], "r": radius_text, "share": _percent(reference["share"])},
    )
    departments = sorted(result["departments"], key=lambda d: (-d["amaps"], d["code"]))
    bars = [(f"{d['code']} {d['name']}", d["amaps"]) for d in departments[:30]]
    department_chart = charts.horizontal_bars_svg(
        bars=bars,
        chart_id="chart-departments",
        title=_("AMAP par département"),
        description=_("Nombre d'AMAP actives dans chaque département du territoire."),
    )
    years_chart = charts.years_svg(
        years=result["history"]["years"],
        title=_("AMAP créées chaque année"),
        description=_("Créations par année et AMAP ouvertes au 31 décembre (%(n)s AMAP datées).")
        % {"n": result["history"]["dated_amaps"]},
    )
    regions_table = (
        result["regions"] if (result["network"]["level"] == "national" or len(result["regions"]) > 1) else []
    )
    return {
        "result": result,
        "radius_text": radius_text,
        "key_figures": key_figures,
        "charts": {"curve": curve, "departments": department_chart, "years": years_chart},
        "curve_rows": [r for r in result["curve"] if r["radius_km"] in (1, 2, 5, 10, 15, 20, 25, 30)],
        "department_rows": result["departments"],
        "region_rows": sorted(regions_table, key=lambda r: -(r["amaps_per_100k"] or 0)),
        "white_zone_communes": result["white_zones"]["communes"][:TABLE_LIMIT],
        "white_zone_groups": result["white_zones"]["groups"][:TABLE_LIMIT],
        "product_rows": sorted(result["product_gaps"], key=lambda p: (-p["share"], p["name"])),
        "products_known": any(row["amaps"] for row in result["product_gaps"]),
        "history_rows": result["history"]["years"],
        "opportunities": result["opportunities"],
    }


def _build_map(result: dict, mode: str | None):
    return build_coverage_map(result=result, mode=mode)


def _figures_state(network: Network, params: dict) -> dict:
    """The stored figures for these parameters, without computing any: when they are missing or
    stale a refresh job is queued (once), and the page says so."""
    params = snapshots.params_normalise(**params)
    snapshot = snapshots.snapshot_get(network=network, params=params)
    fresh = snapshot is not None and snapshots.snapshot_is_fresh(snapshot)
    if not fresh:
        tasks.coverage_refresh_enqueue(network_id=network.pk, params=params)
    if snapshot is not None:
        snapshots.snapshot_touch(snapshot)
    return {"snapshot": snapshot, "fresh": fresh, "params": params}


def _status_query(params: dict) -> str:
    query = {"radius_km": f"{params['radius_km']:g}", "min_population": params["min_population"]}
    if params["product"]:
        query["product"] = params["product"]
    return urlencode(query)


@require_GET
def network_coverage(request, slug: str):
    """The coverage dashboard of one network; radius, product and threshold from the query string.

    The figures come from the last snapshot (coverage/snapshots.py) and are never computed here."""
    network = get_object_or_404(Network, slug=slug)
    form = CoverageForm(request.GET or None)
    context = {
        "network": network,
        "form": form,
        # Members vs territory, from the one selector the network page and its space use too.
        "counts": network_counts(network=network),
        "can_coordinate": is_coordinator(request.user, network),
    }
    if form.is_bound and not form.is_valid():
        return render(request, "coverage/dashboard.html", context, status=400)
    if not form.is_bound:
        defaults = CoverageForm(data={})
        defaults.is_valid()
        params = defaults.params()
    else:
        params = form.params()
    mode = params.pop("mode")
    try:
        network_territory(network=network)  # cheap: a network without any territory is said at once
    except TerritoryError as error:
        context["territory_error"] = str(error)
        return render(request, "coverage/dashboard.html", context)
    state = _figures_state(network, params)
    snapshot = state["snapshot"]
    context["refresh"] = {
        "status_url": reverse("coverage:network_coverage_status", args=[slug]) + "?" + _status_query(state["params"]),
        "computed_at": snapshot.computed_at.isoformat(timespec="seconds") if snapshot else "",
        "updating": not state["fresh"],
    }
    if snapshot is None:
        return render(request, "coverage/dashboard.html", context)
    context["computed_at"] = snapshot.computed_at
    if snapshot.error:
        context["territory_error"] = snapshot.error
        return render(request, "coverage/dashboard.html", context)
    result = snapshots.snapshot_result(snapshot)
    context.update(coverage_sections(result))
    # The map's geometry is fetched by the page (coverage/static/coverage/dashboard.js), per zoom.
    layer_query = {
        "radius_km": f"{result['params']['radius_km']:g}",
        "product": result["params"]["product"] or "",
        "min_population": result["white_zones"]["min_population"],
    }
    layer_url = reverse("coverage:network_coverage_layer", args=[slug, "__layer__"])
    context["map_config"] = layers.map_config(result, mode=mode, layer_url=layer_url, query=layer_query)
    if not form.is_bound:
        form.initial["carte"] = mode or default_mode(result)
    query = urlencode({k: v for k, v in request.GET.items() if k in form.fields and v})
    context["downloads"] = [
        (_("Communes (CSV)"), reverse("coverage:network_coverage_download", args=[slug, "communes.csv"]), query),
        (
            _("Communes (GeoJSON)"),
            reverse("coverage:network_coverage_download", args=[slug, "communes.geojson"]),
            query,
        ),
        (
            _("Zones blanches (GeoJSON)"),
            reverse("coverage:network_coverage_download", args=[slug, "zones-blanches.geojson"]),
            query,
        ),
        (
            _("Rapport autonome (HTML)"),
            reverse("coverage:network_coverage_download", args=[slug, "rapport.html"]),
            query,
        ),
    ]
    return render(request, "coverage/dashboard.html", context)


@require_GET
def network_coverage_status(request, slug: str):
    """Whether the figures for these parameters are stored, since when, and whether a job is
    (re)computing them: the dashboard polls it while « mise à jour en cours »."""
    network = get_object_or_404(Network, slug=slug)
    form = CoverageForm(request.GET or {})
    if not form.is_valid():
        return JsonResponse({name: list(messages) for name, messages in form.errors.items()}, status=400)
    params = form.params()
    params.pop("mode")
    params = snapshots.params_normalise(**params)
    snapshot = snapshots.snapshot_get(network=network, params=params)
    fresh = snapshot is not None and snapshots.snapshot_is_fresh(snapshot)
    pending = tasks.coverage_refresh_pending(
        network_id=network.pk, params=params, stale=snapshot is not None and snapshot.stale
    )
    response = JsonResponse(
        {
            "ready": snapshot is not None,
            "fresh": fresh,
            "updating": pending,
            "computed_at": snapshot.computed_at.isoformat(timespec="seconds") if snapshot else None,
        }
    )
    response["Cache-Control"] = "no-store"
    return response


def _pending(message_for: str):
    """A JSON or plain-text 503 while the figures are being computed (the client retries)."""
    text = _("Les chiffres de ce réseau sont en cours de calcul : réessayez dans une minute.")
    if message_for == "json":
        response = JsonResponse({"status": [text]}, status=503)
    else:
        response = HttpResponse(text, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = "30"
    return response


def _stored_result(network: Network, params: dict) -> dict | None:
    """The last stored figures (even stale: a refresh is then queued), or None (queued as well)."""
    snapshot = _figures_state(network, params)["snapshot"]
    if snapshot is None:
        return None
    if snapshot.error:
        raise TerritoryError(snapshot.error)
    return snapshots.snapshot_result(snapshot)


MAX_ZOOM = 22


@require_GET
@gzip_page  # GeoJSON shrinks about fivefold
def network_coverage_layer(request, slug: str, layer: str):
    """One layer of the dashboard map as GeoJSON, simplified for the zoom `z` (same parameters and
    same audience as the dashboard); cacheable: an ETag, and a long max-age when versioned (`v`)."""
    network = get_object_or_404(Network, slug=slug)
    if layer not in layers.LAYERS:
        raise Http404(layer)
    form = CoverageForm(request.GET or {})
    errors = {} if form.is_valid() else {name: list(messages) for name, messages in form.errors.items()}
    zoom = request.GET.get("z", "")
    if zoom and not (zoom.isdigit() and int(zoom) <= MAX_ZOOM):
        errors["z"] = [_("Le niveau de zoom doit être un entier de 0 à %(max)s.") % {"max": MAX_ZOOM}]
    if errors:
        return JsonResponse(errors, status=400)
    params = form.params()
    mode = params.pop("mode")
    level = layers.level_for(int(zoom) if zoom else None)
    snapshot = snapshots.snapshot_get(network=network, params=snapshots.params_normalise(**params))
    if snapshot is None or snapshot.error:
        try:
            _stored_result(network, params)
        except TerritoryError as error:
            return JsonResponse({"territory": [str(error)]}, status=400)
        return _pending("json")
    coverage_key = snapshots.snapshot_cache_key(snapshot)
    # A layer already built is served without loading the figures (a national network's weigh megabytes).
    body = cache.get(layers.layer_cache_key(coverage_key, layer=layer, mode=mode, level=level)) if mode else None
    if body is None:
        result = snapshots.snapshot_result(snapshot)
        mode = mode or default_mode(result)
    version = layers.layer_version(coverage_key)
    tag = f"{version}|{layer}|{mode}|{level}|{get_language()}"
    etag = '"' + hashlib.sha256(tag.encode()).hexdigest()[:24] + '"'
    # A versioned URL never changes meaning while the figures stand; others are revalidated soon.
    cache_control = f"public, max-age={CACHE_TIMEOUT if request.GET.get('v') == version else 60}"
    if etag in parse_etags(request.headers.get("If-None-Match", "")):
        response = HttpResponseNotModified()
    else:
        if body is None:
            body = layers.layer_json(result, layer=layer, mode=mode, level=level)
        response = HttpResponse(body, content_type="application/geo+json; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response


DOWNLOADS = {"communes.csv", "communes.geojson", "zones-blanches.geojson", "rapport.html"}


@require_GET
def network_coverage_download(request, slug: str, filename: str):
    network = get_object_or_404(Network, slug=slug)
    if filename not in DOWNLOADS:
        raise Http404(filename)
    form = CoverageForm(request.GET or {})
    if not form.is_valid():
        errors = "; ".join(f"{name} : {' '.join(messages)}" for name, messages in form.errors.items())
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    params = form.params()
    mode = params.pop("mode")
    try:
        result = _stored_result(network, params)
    except TerritoryError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    if result is None:
        return _pending("text")
    stem = f"couverture-{network.slug}-{result['params']['radius_km']:g}km"
    if filename == "communes.csv":
        response = HttpResponse(exports.communes_csv(result), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stem}-communes.csv"'
        return response
    if filename == "communes.geojson":
        response = HttpResponse(exports.communes_geojson(result), content_type="application/geo+json")
        response["Content-Disposition"] = f'attachment; filename="{stem}-communes.geojson"'
        return response
    if filename == "zones-blanches.geojson":
        response = HttpResponse(exports.white_zones_geojson(result), content_type="application/geo+json")
        response["Content-Disposition"] = f'attachment; filename="{stem}-zones-blanches.geojson"'
        return response
    response = HttpResponse(standalone_report(result, mode=mode), content_type="text/html; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{stem}-rapport.html"'
    return response


def standalone_report(result: dict, *, mode: str | None = None) -> str:
    """One self-contained HTML file (map, charts and figures inlined; works offline)."""
    m = _build_map(result, mode)
    parts = map_parts(m)
    # Replace the page's <link>/<script src> tags by the files themselves.
    own_header = re.sub(r"<link [^>]*>|<script src=[^>]*></script>", "", parts["header"])
    context = coverage_sections(result)
    context.update(
        {
            "map_assets": inlined_assets(m) + "\n" + own_header,
            "map_html": parts["html"],
            "map_script": parts["script"].replace("</script", "<\\/script"),
            "network_name": result["network"]["name"],
        }
    )
    return render_to_string("coverage/report.html", context)


@staff_member_required
def network_new(request):
    """Create a network (typically an emerging one) with its territory, then open its dashboard."""
    form = NetworkCreateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            network = network_create(
                name=form.cleaned_data["name"],
                level=form.cleaned_data["level"],
                status=form.cleaned_data["status"],
                department_codes=[d.code for d in form.cleaned_data["departments"]],
                region_codes=[r.code for r in form.cleaned_data["regions"]],
                territory_geojson=form.territory_text(),
                description=form.cleaned_data["description"],
                admin=request.user,
            )
        except ValidationError as error:
            for field, field_messages in error.message_dict.items():
                target = field if field in form.fields else None
                if field == "territory":
                    if request.FILES.get("territory_file"):
                        target = "territory_file"
                    elif form.cleaned_data.get("territory_geojson"):
                        target = "territory_geojson"
                for message in field_messages:
                    form.add_error(target, message)
        else:
            messages.success(
                request,
                _("Réseau « %(name)s » créé : voici son espace de coordination.") % {"name": network.name},
            )
            return redirect("directory:network_space", slug=network.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "coverage/network_new.html", {"form": form}, status=status)
