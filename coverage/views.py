"""Coverage dashboard of a network (`/reseau/<slug>/couverture/`), its downloads, and the
creation of emerging networks (staff only)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from cartography.builders import inlined_assets, map_parts
from directory.models import Network
from directory.selectors.network import is_coordinator, network_counts
from directory.services_networks import network_create

from . import charts, exports, figures
from .cache import CACHE_TIMEOUT
from .forms import CoverageForm, NetworkCreateForm
from .maps import build_coverage_map, default_mode
from .territory import TerritoryError

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


def _map_parts(result: dict, mode: str | None) -> dict:
    """The map's header/html/script, cached with the figures (rendering a large GeoJSON costs)."""
    mode = mode or default_mode(result)
    key = f"{result['cache_key']}:map:{mode}:{get_language()}"
    parts = cache.get(key)
    if parts is None:
        parts = map_parts(_build_map(result, mode))
        cache.set(key, parts, CACHE_TIMEOUT)
    return parts


@require_GET
def network_coverage(request, slug: str):
    """The coverage dashboard of one network; radius, product and threshold from the query string."""
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
        result = figures.coverage_for_network(network=network, **params)
    except TerritoryError as error:
        context["territory_error"] = str(error)
        return render(request, "coverage/dashboard.html", context)
    context.update(coverage_sections(result))
    context["map"] = _map_parts(result, mode)
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
        result = figures.coverage_for_network(network=network, **params)
    except TerritoryError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
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
