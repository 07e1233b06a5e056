"""Public pages: home, search results, and the AMAP, farm and network pages."""

import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from accounts import permissions
from cartography.builders import build_network_map, build_place_map, build_results_map, embed_snippet, map_parts
from geo.coordinates import geodesic_distance_m
from geo.formatting import format_distance
from geo.geocoding import Candidate, GeocodingError, geocode

from . import selectors
from .forms import SearchForm
from .map_data import network_map_data
from .models import Amap, Farm, LocationPrecision, Network
from .page_cache import anonymous_page_cache
from .selectors.network import is_coordinator, network_counts
from .templatetags.directory_pages import delivery_hours, weekdays

RESULTS_PER_PAGE = 10
NETWORK_LIST_PAGE_SIZE = 50
# When is a typed place ambiguous? See _rivals(): candidates scored within SCORE_MARGIN of the
# best one, with at least this share of its population and this far from it.
SCORE_MARGIN = 0.05
AMBIGUITY_POPULATION_RATIO = 0.25
AMBIGUITY_MIN_KM = 20
# Beyond this, filtered results are "far": the list says so and offers to drop a filter.
FAR_KM = 20
# Street words that say a text is an address (the gazetteer alone finds only its commune).
_STREET_WORDS = (
    r"rue|avenue|av|bd|boulevard|chemin|ch|place|pl|allée|allee|impasse|imp|route|rte|quai|cours|"
    r"square|passage|sentier|lieu-dit|lieu dit|voie|résidence|residence|hameau|cité|cite|rond-point|faubourg"
)
_ADDRESS_RE = re.compile(rf"(^\s*\d+\s*(bis|ter|b|t)?\b)|(\b({_STREET_WORDS})\b\.?\s+\S)", re.IGNORECASE)


@dataclass(frozen=True)
class Place:
    point: Point
    label: str
    # Set when an address was asked and only its town was found: the page says so.
    town_only_for: str = ""


@anonymous_page_cache
def home(request):
    """The front page: one search box, and what the directory holds."""
    context = {
        "form": SearchForm(),
        "amap_count": Amap.objects.active().count(),
        "farm_count": Farm.objects.active().count(),
        "network_count": Network.objects.count(),
    }
    return render(request, "directory/home.html", context)


@anonymous_page_cache
def search(request):
    """Nearest AMAPs to a typed place, with filters; candidate places when the text is ambiguous."""
    if not request.GET:
        form = SearchForm()
        return render(request, "directory/search.html", {"form": form, **_filter_choices_cache(request, form)})
    form = SearchForm(request.GET)
    if not form.is_valid():
        context = {"form": form, **_filter_choices_cache(request, form)}
        return render(request, "directory/search.html", context, status=400)

    place, candidates, message = _place_from_form(form)
    choices = [{"candidate": c, "url": _candidate_url(request, c)} for c in candidates]
    context = {"form": form, "message": message, **_filter_choices_cache(request, form)}
    if place is None:
        context["candidates"] = choices
        return render(request, "directory/search.html", context)
    context["other_places"] = choices

    page = form.cleaned_data.get("page") or 1
    amaps = selectors.amaps_near(
        point=place.point,
        limit=RESULTS_PER_PAGE + 1,  # one more tells whether a next page exists
        offset=(page - 1) * RESULTS_PER_PAGE,
        **form.filter_kwargs(),
    )
    has_next = len(amaps) > RESULTS_PER_PAGE
    amaps = list(amaps[:RESULTS_PER_PAGE])
    context.update(
        place=place,
        amaps=amaps,
        first_rank=(page - 1) * RESULTS_PER_PAGE + 1,
        page=page,
        next_url=_page_url(request, page + 1) if has_next and page < form.fields["page"].max_value else None,
        previous_url=_page_url(request, page - 1) if page > 1 else None,
        map=map_parts(build_results_map(center=(place.point.y, place.point.x), features=_amap_features(amaps))),
        active_filters=_active_filters(request, form),
        far=_far_notice(amaps) if page == 1 else None,
    )
    if form.cleaned_data.get("products"):
        radius_km = form.cleaned_data.get("radius_km") or FAR_KM
        unstated = selectors.amaps_without_products_count(point=place.point, radius_km=radius_km)
        if unstated:
            context["unstated_products"] = {
                "count": unstated,
                "radius": format_distance(radius_km * 1000),
                "url": _drop_url(request, "products", None),
            }
    return render(request, "directory/search.html", context)


@anonymous_page_cache
def amap_detail(request, pk: int):
    amap = selectors.amap_detail(pk=pk)
    if amap is None:
        raise Http404(_("Cette AMAP n'existe pas."))
    partners: dict[int, dict] = {}
    for partnership in amap.active_partnerships:
        entry = partners.setdefault(partnership.farm_id, {"farm": partnership.farm, "products": []})
        entry["products"].append(partnership.product)
    context = {
        "amap": amap,
        "entry_care": _entry_care(request.user, amap),
        "partners": list(partners.values()),
        "map": map_parts(build_place_map(center=(amap.location.y, amap.location.x), features=_amap_features([amap]))),
    }
    return render(request, "directory/amap_detail.html", context)


@anonymous_page_cache
def farm_detail(request, pk: int):
    farm = selectors.farm_detail(pk=pk)
    if farm is None:
        raise Http404(_("Cette ferme n'existe pas."))
    # Only the masked public point is loaded (see the selector): the exact one never reaches the page.
    supplied: dict[int, dict] = {}
    for partnership in farm.active_partnerships:
        entry = supplied.setdefault(partnership.amap_id, {"amap": partnership.amap, "products": []})
        entry["products"].append(partnership.product)
    point = farm.public_location
    context = {
        "farm": farm,
        "entry_care": _entry_care(request.user, farm),
        "supplied": list(supplied.values()),
        "map": map_parts(build_place_map(center=(point.y, point.x), features=_farm_features([farm]), zoom=12))
        if point is not None
        else None,
    }
    return render(request, "directory/farm_detail.html", context)


@anonymous_page_cache
def network_detail(request, slug: str):
    network = selectors.network_detail(slug=slug)
    if network is None:
        raise Http404(_("Ce réseau n'existe pas."))
    amaps = selectors.network_amaps(network=network)
    farms = selectors.network_farms(network=network)
    amap_page = Paginator(amaps, NETWORK_LIST_PAGE_SIZE).get_page(request.GET.get("amaps"))
    farm_page = Paginator(farms, NETWORK_LIST_PAGE_SIZE).get_page(request.GET.get("fermes"))
    base_url = request.build_absolute_uri("/").rstrip("/")
    context = {
        "network": network,
        "amap_page": amap_page,
        "farm_page": farm_page,
        "map": map_parts(build_network_map(**network_map_data(network=network))),
        "embed_snippet": embed_snippet(network_slug=network.slug, base_url=base_url),
        "counts": network_counts(network=network),
        "can_coordinate": is_coordinator(request.user, network),
    }
    return render(request, "directory/network_detail.html", context)


# --- helpers -------------------------------------------------------------------------------


def _filter_choices_cache(request, form: SearchForm) -> dict:
    """How long the filters' drawn choices are kept, and under which key (the template's `{% cache %}`).

    Drawing the product checkboxes and the lists through Django's widgets is a quarter of a search
    page's cost, and most searches ask for the same filters (none). The key: the public data's
    version (products and networks are listed), the language and the filters as typed; nothing is
    kept while a filter is in error (its message is drawn inside) or pages are not kept at all.
    """
    seconds = settings.PAGE_CACHE_SECONDS
    if not seconds or form.errors:
        return {"filter_cache_seconds": 0, "filter_choices_key": "not-kept"}
    typed = [(name, request.GET.getlist(name)) for name in ("products", "weekday", "radius_km", "network", "accepting")]
    key = repr((selectors.public_version(), translation.get_language(), typed))
    return {"filter_cache_seconds": seconds, "filter_choices_key": key}


def _entry_care(user, entry) -> dict:
    """Which of « Modifier », « C'est mon AMAP », « Historique » the visitor is offered."""
    if not user.is_authenticated:
        return {"can_edit": False, "can_see_history": False}
    can_edit = permissions.can_edit_entry(user, entry)
    return {"can_edit": can_edit, "can_see_history": can_edit}


def _place_from_form(form: SearchForm) -> tuple[Place | None, list[Candidate], str]:
    """The place to search around (with other plausible places), or the places to choose from, or a message."""
    data = form.cleaned_data
    text = data.get("q", "").strip()
    point, label = data.get("point"), data.get("lieu", "").strip()
    # A picked candidate carries its point; typing another text in the box searches that text.
    if point is not None and (not text or text == label):
        return Place(point=point, label=label or f"{point.y:.5f}, {point.x:.5f}"), [], ""
    try:
        candidates = geocode(text, limit=10)
    except GeocodingError as error:
        form.add_error("q", str(error))
        return None, [], ""
    if not candidates:
        message = _("Aucun lieu ne correspond à « %(text)s ». Essayez un nom de commune ou un code postal.") % {
            "text": text
        }
        return None, [], message
    close, ask = _rivals(candidates)
    if ask:
        return None, close, _("Plusieurs lieux correspondent à « %(text)s » : lequel cherchez-vous ?") % {"text": text}
    best = candidates[0]
    town_only = best.precision in (LocationPrecision.COMMUNE, LocationPrecision.POSTAL_CODE)
    town_only_for = text if town_only and looks_like_address(text) else ""
    return Place(point=best.point, label=best.label, town_only_for=town_only_for), close[1:], ""


def looks_like_address(text: str) -> bool:
    """'12 rue Sainte-Catherine, Bordeaux' is an address; 'Bordeaux', '33000', 'Lyon 7e' are not."""
    text = text.strip()
    if re.fullmatch(r"\d{5}", text) or re.fullmatch(r"[-+]?\d+([.,]\d+)?\s*[,; ]\s*[-+]?\d+([.,]\d+)?", text):
        return False  # a postal code, coordinates
    return bool(_ADDRESS_RE.search(text))


def _rivals(candidates: list[Candidate]) -> tuple[list[Candidate], bool]:
    """The candidates about as likely as the best one, in other communes, and whether to ask.

    Equal scores are common (every "Mérignac" matches exactly): the geocoder ranks them by
    population. The page asks only when another place is comparably populated and far away
    (the two Saint-Denis); small homonyms or neighbours sharing a postal code are offered as
    "other places" next to the results instead.
    """
    best = candidates[0]
    seen = {_commune_key(best)}
    close, ask = [best], False
    for candidate in candidates[1:]:
        key = _commune_key(candidate)
        if candidate.score < best.score - SCORE_MARGIN or key in seen:
            continue
        seen.add(key)
        close.append(candidate)
        if _comparable(candidate, best) and geodesic_distance_m(candidate.point, best.point) > AMBIGUITY_MIN_KM * 1000:
            ask = True
    return close, ask


def _commune_key(candidate: Candidate) -> str:
    return candidate.commune.code if candidate.commune is not None else candidate.label


def _comparable(candidate: Candidate, best: Candidate) -> bool:
    if candidate.commune is None or best.commune is None:
        return True  # no population to compare (street addresses): let the visitor choose
    return candidate.commune.population >= AMBIGUITY_POPULATION_RATIO * best.commune.population


def _candidate_url(request, candidate: Candidate) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    query["q"] = candidate.label
    query["lieu"] = candidate.label
    query["lon"] = f"{candidate.point.x:.6f}"
    query["lat"] = f"{candidate.point.y:.6f}"
    return f"{reverse('directory:search')}?{query.urlencode()}"


def _far_notice(amaps: list) -> dict | None:
    """Whether the results go beyond FAR_KM, and from which distance (the list then says so)."""
    far = [a for a in amaps if a.distance_m is not None and a.distance_m > FAR_KM * 1000]
    if not far:
        return None
    return {
        "near_count": len(amaps) - len(far),
        "from": format_distance(far[0].distance_m),
        "limit": format_distance(FAR_KM * 1000),
    }


def _drop_url(request, name: str, value: str | None) -> str:
    """This search without one filter (`value`: one of several products; None: the whole filter)."""
    query = request.GET.copy()
    query.pop("page", None)
    if value is None:
        query.pop(name, None)
    else:
        query.setlist(name, [v for v in query.getlist(name) if v != value])
    return f"{reverse('directory:search')}?{query.urlencode()}"


def _active_filters(request, form: SearchForm) -> list[dict]:
    """The filters in force, each with a link that drops it: « Pain ✕ », « jeudi ✕ »."""
    data = form.cleaned_data
    found = [{"label": p.name, "url": _drop_url(request, "products", p.slug)} for p in data.get("products") or ()]
    if data.get("weekday"):
        label = _("livraison le %(day)s") % {"day": weekdays([data["weekday"]])}
        found.append({"label": label, "url": _drop_url(request, "weekday", None)})
    if data.get("accepting"):
        found.append({"label": _("accepte de nouveaux membres"), "url": _drop_url(request, "accepting", None)})
    if data.get("radius_km"):
        label = _("à moins de %(d)s") % {"d": format_distance(data["radius_km"] * 1000)}
        found.append({"label": label, "url": _drop_url(request, "radius_km", None)})
    if data.get("network"):
        found.append({"label": data["network"].name, "url": _drop_url(request, "network", None)})
    return found


def _page_url(request, page: int) -> str:
    query = request.GET.copy()
    query["page"] = str(page)
    return f"{reverse('directory:search')}?{query.urlencode()}"


def _amap_features(amaps) -> dict:
    """AMAPs as a GeoJSON FeatureCollection for the map builders (public fields only)."""
    features = []
    for amap in amaps:
        days = weekdays(amap.delivery_weekdays)
        hours = delivery_hours(amap)
        properties = {
            "kind": "amap",
            "name": amap.name,
            "url": reverse("directory:amap_detail", args=[amap.pk]),
            "commune": amap.commune.name,
            "delivery": ", ".join(part for part in (days, hours) if part),
            # Search results carry `product_list` (one query for the page, see amaps_near).
            "products": ", ".join(
                str(p) for p in (amap.product_list if hasattr(amap, "product_list") else amap.products.all())
            ),
            "accepting": str(amap.get_accepting_members_display()),
        }
        distance = getattr(amap, "distance_m", None)
        if distance is not None:
            properties["distance_m"] = round(float(distance), 1)
            # The list's own text: the popup shows exactly what the card shows.
            properties["distance"] = format_distance(distance)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [amap.location.x, amap.location.y]},
                "properties": properties,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _farm_features(farms) -> dict:
    """Farms at their masked public point only."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [farm.public_location.x, farm.public_location.y]},
            "properties": {
                "kind": "farm",
                "name": farm.name,
                "url": reverse("directory:farm_detail", args=[farm.pk]),
                "commune": farm.commune.name if farm.commune_id else "",
            },
        }
        for farm in farms
        if farm.public_location is not None
    ]
    return {"type": "FeatureCollection", "features": features}
