"""Matchmaking pages: the public board, annonce pages with ranked matches, contact, alerts."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts import permissions
from accounts.form_errors import apply_errors
from directory import contacts
from directory.models import Amap, Farm

from . import services, threads, tours
from .forms import (
    AnnonceForm,
    AnnonceStatusForm,
    BoardFilterForm,
    ContactForm,
    ModerationForm,
    PartnershipForm,
    ReplyForm,
    SavedSearchForm,
)
from .models import Annonce, SavedSearch, Thread
from .selectors import annonces_board, matches_for_annonce
from .threads import thread_title_for

FRANCE_CENTER = (46.6, 2.4)  # (lat, lon)


def _map(*, center, features, zoom):
    """Map parts for a page, or None when the maps app cannot draw (the list stays usable)."""
    from cartography.builders import build_results_map, map_parts

    return map_parts(build_results_map(center=center, features=features, zoom=zoom))


def _feature(*, lon, lat, **properties) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": properties}


def _annonce_feature(annonce: Annonce) -> dict:
    point = annonce.public_location
    owner = annonce.owner
    return _feature(
        lon=point.x,
        lat=point.y,
        name=str(annonce),
        url=annonce.get_absolute_url(),
        commune=annonce.commune.name if annonce.commune else "",
        products=", ".join(p.name for p in annonce.products.all()),
        delivery=f"{annonce.get_kind_display()} — {owner}",
    )


def board(request):
    """Public board: list, map and filters (kind, product, département, network)."""
    form = BoardFilterForm(request.GET or None)
    filters = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {
            "kind": data["type"] or None,
            "product": data["produit"] or None,
            "department": data["departement"] or None,
            "network": data["reseau"] or None,
        }
    annonces = annonces_board(**filters) if not form.is_bound or form.is_valid() else Annonce.objects.none()
    page = Paginator(annonces, 20).get_page(request.GET.get("page"))
    features = {"type": "FeatureCollection", "features": [_annonce_feature(a) for a in page.object_list]}
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "map": _map(center=FRANCE_CENTER, features=features, zoom=6) if page.object_list else None,
    }
    return render(request, "matching/board.html", context)


def _counterpart(kind: str, pk: int):
    model = Amap if kind == "amap" else Farm
    return get_object_or_404(model, pk=pk)


def annonce_detail(request, pk: int):
    annonce = get_object_or_404(Annonce.objects.select_related("farm", "amap", "commune"), pk=pk)
    user = request.user
    can_edit = permissions.can_edit_annonce(user, annonce)
    can_moderate = permissions.can_moderate_annonce(user, annonce)
    matches = []
    match_map = None
    if permissions.can_see_matches(user, annonce):
        wanted = request.GET.get("n", "10")
        limit = min(int(wanted), 50) if wanted.isdigit() and int(wanted) > 0 else 10
        matches = matches_for_annonce(annonce=annonce, limit=limit)
        entries = _counterparts(matches)
        if annonce.farm_id and matches:
            # What each AMAP would add to the farm's delivery tours (from its public point).
            for match, detour in zip(matches, tours.detours_for_matches(annonce=annonce, matches=matches), strict=True):
                match.detour_text = tours.describe_detour(detour) if detour is not None else ""

        for rank, match in enumerate(matches, start=1):
            match.rank = rank
            route = "directory:amap_detail" if match.counterpart_type == "amap" else "directory:farm_detail"
            match.url = reverse(route, args=[match.counterpart_id])
            entry = entries.get((match.counterpart_type, match.counterpart_id))
            # Said before sending: who will receive the message (or that nobody can).
            match.contact_route = contacts.contact_route(entry, exclude_user=user) if entry is not None else None
        features = {
            "type": "FeatureCollection",
            "features": [
                _feature(
                    lon=m.lon,
                    lat=m.lat,
                    name=f"{m.rank}. {m.name}",
                    url=m.url,
                    delivery=" · ".join(m.reasons),
                    distance_m=m.distance_m,
                )
                for m in matches
            ],
        }
        point = annonce.public_location
        match_map = _map(center=(point.y, point.x), features=features, zoom=10)
    elif annonce.effective_status != Annonce.Status.OPEN and not can_moderate:
        # Closed annonces stay reachable for their publisher and moderators only.
        raise Http404
    context = {
        "annonce": annonce,
        "owner": annonce.owner,
        "can_edit": can_edit,
        "can_moderate": can_moderate,
        "matches": matches,
        "map": match_map,
        "status_form": AnnonceStatusForm(initial={"status": annonce.status}),
        "moderation_form": ModerationForm(),
        "owner_route": contacts.contact_route(annonce.owner, exclude_user=user) if user.is_authenticated else None,
        "contact_owner_form": ContactForm(
            initial={"recipient_type": "farm" if annonce.farm_id else "amap", "recipient_id": annonce.owner.pk}
        ),
    }
    return render(request, "matching/annonce_detail.html", context)


def _counterparts(matches) -> dict:
    """The matched farms and AMAPs, loaded in two queries, by (kind, id)."""
    amap_ids = [m.counterpart_id for m in matches if m.counterpart_type == "amap"]
    farm_ids = [m.counterpart_id for m in matches if m.counterpart_type != "amap"]
    entries = {("amap", a.pk): a for a in Amap.objects.filter(pk__in=amap_ids).select_related("commune")}
    entries.update({("farm", f.pk): f for f in Farm.objects.filter(pk__in=farm_ids).select_related("commune")})
    return entries


def _publisher(request):
    """The farm or AMAP named in the query string, managed by the user."""
    farm_id, amap_id = request.GET.get("ferme"), request.GET.get("amap")
    farms = request.user.managed_farms.all()
    amaps = request.user.managed_amaps.all()
    if farm_id and farm_id.isdigit():
        return get_object_or_404(farms, pk=farm_id)
    if amap_id and amap_id.isdigit():
        return get_object_or_404(amaps, pk=amap_id)
    if farms.count() + amaps.count() == 1:
        return farms.first() or amaps.first()
    return None


@login_required
@require_http_methods(["GET", "POST"])
def annonce_create(request):
    publisher = _publisher(request)
    if publisher is None:
        return render(
            request,
            "matching/annonce_choose.html",
            {"farms": request.user.managed_farms.all(), "amaps": request.user.managed_amaps.all()},
        )
    kind = Annonce.Kind.FARM_SEEKS_AMAP if isinstance(publisher, Farm) else Annonce.Kind.AMAP_SEEKS_FARM
    initial = {}
    if isinstance(publisher, Amap):
        initial["delivery_weekdays"] = publisher.delivery_weekdays
    else:
        if publisher.delivery_radius_km:  # unknown (imported farms): the form's own default
            initial["radius_km"] = publisher.delivery_radius_km
        initial["shares"] = publisher.capacity_shares or None
    form = AnnonceForm(request.POST or None, kind=kind, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            annonce = services.annonce_publish(
                user=request.user,
                kind=kind,
                farm=publisher if isinstance(publisher, Farm) else None,
                amap=publisher if isinstance(publisher, Amap) else None,
                **data,
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Annonce publiée. Voici les correspondances les mieux placées."))
            return redirect(annonce)
    return render(request, "matching/annonce_form.html", {"form": form, "publisher": publisher, "kind": kind})


@login_required
@require_http_methods(["GET", "POST"])
def annonce_edit(request, pk: int):
    annonce = get_object_or_404(Annonce, pk=pk)
    if not permissions.can_edit_annonce(request.user, annonce):
        raise PermissionDenied(_("Vous ne pouvez pas modifier cette annonce."))
    initial = {
        "title": annonce.title,
        "products": annonce.products.all(),
        "shares": annonce.shares,
        "delivery_weekdays": annonce.delivery_weekdays,
        "radius_km": annonce.radius_km,
        "delivery_place": annonce.delivery_place,
        "start_date": annonce.start_date,
        "expires_on": annonce.expires_on,
        "description": annonce.description,
    }
    form = AnnonceForm(request.POST or None, kind=annonce.kind, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        products = data.pop("products")
        if not data.get("expires_on"):
            data.pop("expires_on", None)
        try:
            services.annonce_update(user=request.user, annonce=annonce, products=products, **data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Annonce modifiée."))
            return redirect(annonce)
    return render(request, "matching/annonce_form.html", {"form": form, "publisher": annonce.owner, "annonce": annonce})


@login_required
@require_POST
def annonce_status(request, pk: int):
    annonce = get_object_or_404(Annonce, pk=pk)
    form = AnnonceStatusForm(request.POST)
    if form.is_valid():
        try:
            services.annonce_set_status(user=request.user, annonce=annonce, status=form.cleaned_data["status"])
            messages.success(request, _("Statut mis à jour."))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    return redirect(annonce)


@login_required
@require_POST
def annonce_moderate(request, pk: int):
    annonce = get_object_or_404(Annonce, pk=pk)
    form = ModerationForm(request.POST)
    if form.is_valid():
        try:
            services.annonce_moderate(
                user=request.user, annonce=annonce, status=form.cleaned_data["status"], note=form.cleaned_data["note"]
            )
            messages.success(request, _("Annonce modérée."))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    return redirect(annonce)


def _allowed_recipient(user, annonce: Annonce, recipient) -> bool:
    """The publisher writes to its matches; anyone else writes to the publisher."""
    if recipient == annonce.owner:
        return not permissions.can_edit_annonce(user, annonce)
    if not permissions.can_edit_annonce(user, annonce):
        return False
    kind = "amap" if isinstance(recipient, Amap) else "farm"
    return any(
        m.counterpart_type == kind and m.counterpart_id == recipient.pk
        for m in matches_for_annonce(annonce=annonce, limit=50, with_drive_times=False)
    )


@login_required
@require_POST
def annonce_contact(request, pk: int):
    annonce = get_object_or_404(Annonce, pk=pk)
    form = ContactForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Écrivez un message."))
        return redirect(annonce)
    recipient = _counterpart(form.cleaned_data["recipient_type"], form.cleaned_data["recipient_id"])
    if not _allowed_recipient(request.user, annonce, recipient):
        raise PermissionDenied(_("Vous ne pouvez pas écrire à ce destinataire depuis cette annonce."))
    try:
        thread = services.thread_start(
            user=request.user, recipient=recipient, body=form.cleaned_data["body"], annonce=annonce
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(annonce)
    first = thread.messages.first()
    messages.success(
        request,
        _("Message envoyé à « %(name)s » (%(delivery)s). Vous serez prévenu·e de la réponse.")
        % {"name": recipient, "delivery": first.delivery_label},
    )
    return redirect(thread)


@login_required
@require_POST
def annonce_partnership(request, pk: int):
    annonce = get_object_or_404(Annonce, pk=pk)
    form = PartnershipForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Indiquez un nombre de parts positif."))
        return redirect(annonce)
    counterpart = _counterpart(form.cleaned_data["counterpart_type"], form.cleaned_data["counterpart_id"])
    try:
        outcome = services.partnership_conclude(
            user=request.user, annonce=annonce, counterpart=counterpart, shares=form.cleaned_data["shares"]
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(annonce)
    if outcome.annonce.status == Annonce.Status.FULFILLED:
        messages.success(request, _("Partenariat enregistré ; l'annonce est pourvue."))
    else:
        messages.success(
            request, _("Partenariat enregistré ; il reste %(n)s parts à pourvoir.") % {"n": outcome.annonce.shares}
        )
    return redirect(annonce)


@login_required
@require_http_methods(["GET", "POST"])
def thread_detail(request, pk: int):
    thread = get_object_or_404(Thread.objects.select_related("annonce"), pk=pk)
    if not permissions.can_read_thread(request.user, thread):
        raise Http404
    form = ReplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.thread_reply(user=request.user, thread=thread, body=form.cleaned_data["body"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Réponse envoyée."))
            return redirect(thread)
    threads.thread_mark_read(thread=thread, user=request.user)
    return render(request, "matching/thread_detail.html", _thread_context(thread, form=form, viewer=request.user))


def _thread_context(thread: Thread, *, form, viewer=None, by_link: bool = False) -> dict:
    """The messages, each with its delivery state shown to the side that wrote it."""
    viewer_is_starter = threads.on_starter_side(viewer, thread) if viewer is not None else False
    thread_messages = list(thread.messages.select_related("author"))
    for message in thread_messages:
        from_starter = message.author is not None and threads.on_starter_side(message.author, thread)
        message.show_delivery = from_starter == viewer_is_starter
    title = thread_title_for(thread=thread, user=viewer) if viewer is not None else None
    return {"thread": thread, "title": title, "thread_messages": thread_messages, "form": form, "by_link": by_link}


@require_http_methods(["GET", "POST"])
def thread_reply_link(request, pk: int, token: str):
    """The entry's contact address answers through the signed link it was e-mailed (no account)."""
    thread = threads.thread_from_reply_token(token)
    if thread is None or thread.pk != pk:
        raise Http404
    form = ReplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.thread_reply_by_link(thread=thread, body=form.cleaned_data["body"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Réponse envoyée."))
            return redirect(request.path)
    threads.thread_mark_read(thread=thread, by_link=True)
    return render(request, "matching/thread_detail.html", _thread_context(thread, form=form, by_link=True))


@login_required
@require_http_methods(["GET", "POST"])
def alerts(request):
    form = SavedSearchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.saved_search_create(
                user=request.user,
                target=data["target"],
                place=data["place"],
                radius_km=data["radius_km"],
                products=data["products"],
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Alerte créée : vous recevrez les nouveautés par e-mail."))
            return redirect("matching:alerts")
    searches = SavedSearch.objects.filter(user=request.user).prefetch_related("products")
    return render(request, "matching/alerts.html", {"form": form, "searches": searches})


@login_required
@require_POST
def alert_delete(request, pk: int):
    search = get_object_or_404(SavedSearch, pk=pk, user=request.user)
    services.saved_search_delete(user=request.user, search=search)
    messages.success(request, _("Alerte supprimée."))
    return redirect("matching:alerts")


@login_required
def farm_tours(request, pk: int):
    """A farm's delivery tours, day by day, on a map: for its managers (and staff) only."""
    farm = get_object_or_404(Farm.objects.exclude(public_location=None), pk=pk)
    if not permissions.can_manage_farm(request.user, farm):
        raise Http404  # not disclosed to others
    result = tours.farm_tours(farm=farm)
    days = [result.tours[day] for day in sorted(result.tours)]
    stops, routes = [], []
    for tour in days:
        routes.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [list(p) for p in tour.points]},
                "properties": {"name": tour.day_name},
            }
        )
        for position, stop in enumerate(tour.stops, start=1):
            stops.append(_feature(lon=stop.lon, lat=stop.lat, name=f"{tour.day_name} {position}. {stop.name}"))
    for stop in result.undated:
        stops.append(_feature(lon=stop.lon, lat=stop.lat, name=stop.name))
    from cartography.builders import build_tour_map, map_parts

    tour_map = map_parts(
        build_tour_map(
            depot=(result.depot[1], result.depot[0]),
            stops={"type": "FeatureCollection", "features": stops},
            routes={"type": "FeatureCollection", "features": routes},
        )
    )
    context = {
        "farm": farm,
        "days": [(tour, tours.describe_tour(tour)) for tour in days],
        "undated": result.undated,
        "map": tour_map,
    }
    return render(request, "matching/farm_tours.html", context)
