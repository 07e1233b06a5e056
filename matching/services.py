"""Writes for matchmaking: annonces, partnerships concluded, contact threads, alerts and digests.

Every service checks the acting user's right on the object itself (`accounts.permissions`)
and raises `PermissionDenied`; bad values raise `ValidationError` naming the field.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.gis.measure import D
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from directory.models import Amap, Farm, Partnership, ProductCategory
from geo.geocoding import place_geocode

from .models import Annonce, Match, SavedSearch

logger = logging.getLogger(__name__)

MAX_PRODUCTS = 10


def _site_url(path: str) -> str:
    base = getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")
    return f"{base}{path}"


def _clean_products(products: Sequence[ProductCategory]) -> list[ProductCategory]:
    products = list(dict.fromkeys(products))
    if not products:
        raise ValidationError({"products": [_("Choisissez au moins un produit.")]})
    if len(products) > MAX_PRODUCTS:
        raise ValidationError({"products": [_("%(max)s produits au plus.") % {"max": MAX_PRODUCTS}]})
    return products


def _clean_weekdays(weekdays: Sequence[int] | None) -> list[int]:
    days = sorted({int(day) for day in weekdays or []})
    if any(day < 1 or day > 7 for day in days):
        raise ValidationError({"delivery_weekdays": [_("Les jours vont de 1 (lundi) à 7 (dimanche).")]})
    return days


def _clean_dates(start_date, expires_on):
    today = timezone.localdate()
    if expires_on is not None and expires_on < today:
        raise ValidationError({"expires_on": [_("La date d'expiration est déjà passée.")]})
    if expires_on is not None and expires_on > today + datetime.timedelta(days=366):
        raise ValidationError({"expires_on": [_("Une annonce dure un an au plus.")]})
    if start_date is not None and expires_on is not None and start_date > expires_on:
        raise ValidationError({"start_date": [_("Le début est après la date d'expiration.")]})


# --------------------------------------------------------------------------- annonces


@transaction.atomic
def annonce_publish(
    *,
    user,
    kind: str,
    products: Sequence[ProductCategory],
    farm: Farm | None = None,
    amap: Amap | None = None,
    radius_km: int = 30,
    shares: int | None = None,
    delivery_weekdays: Sequence[int] | None = None,
    delivery_place: str = "",
    start_date: datetime.date | None = None,
    expires_on: datetime.date | None = None,
    title: str = "",
    description: str = "",
) -> Annonce:
    """Publish an annonce for a farm ("Paysan cherche AMAP") or an AMAP ("AMAP cherche paysan")."""
    annonce = Annonce(kind=kind, created_by=user)
    if kind == Annonce.Kind.FARM_SEEKS_AMAP:
        if farm is None:
            raise ValidationError({"farm": [_("Choisissez la ferme qui publie l'annonce.")]})
        if not permissions.can_manage_farm(user, farm):
            raise PermissionDenied(_("Vous ne gérez pas cette ferme."))
        if farm.location is None:
            raise ValidationError({"farm": [_("Indiquez d'abord l'adresse de la ferme (page « Ma ferme »).")]})
        annonce.farm = farm
    elif kind == Annonce.Kind.AMAP_SEEKS_FARM:
        if amap is None:
            raise ValidationError({"amap": [_("Choisissez l'AMAP qui publie l'annonce.")]})
        if not permissions.can_act_for_amap(user, amap):
            raise PermissionDenied(_("Vous ne gérez pas cette AMAP."))
        annonce.amap = amap
    else:
        raise ValidationError({"kind": [_("Type d'annonce inconnu.")]})
    _fill(
        annonce,
        radius_km=radius_km,
        shares=shares,
        delivery_weekdays=delivery_weekdays,
        delivery_place=delivery_place,
        start_date=start_date,
        expires_on=expires_on,
        title=title,
        description=description,
    )
    annonce.full_clean(exclude=["products"])
    annonce.save()
    annonce.products.set(_clean_products(products))
    return annonce


def _fill(annonce: Annonce, **values) -> None:
    """Set the editable fields and the annonce's place (farm: its point; AMAP: place or its own)."""
    expires_on = values.get("expires_on") or annonce.expires_on or None
    _clean_dates(values.get("start_date"), expires_on)
    annonce.radius_km = values["radius_km"]
    annonce.shares = values.get("shares")
    annonce.start_date = values.get("start_date")
    if values.get("expires_on"):
        annonce.expires_on = values["expires_on"]
    annonce.title = (values.get("title") or "").strip()
    annonce.description = (values.get("description") or "").strip()
    days = _clean_weekdays(values.get("delivery_weekdays"))
    if annonce.kind == Annonce.Kind.FARM_SEEKS_AMAP:
        farm = annonce.farm
        annonce.delivery_weekdays = days
        annonce.location = farm.location
        annonce.public_location = farm.public_location
        annonce.commune = farm.commune
        annonce.delivery_place = ""
    else:
        amap = annonce.amap
        annonce.delivery_weekdays = days or list(amap.delivery_weekdays or [])
        place = (values.get("delivery_place") or "").strip()
        if place and place != (amap.address or "").strip():
            candidate = place_geocode(text=place, field="delivery_place")
            annonce.location = candidate.point
            annonce.public_location = candidate.point
            annonce.commune = candidate.commune or amap.commune
            annonce.delivery_place = place
        else:
            annonce.location = amap.location
            annonce.public_location = amap.location
            annonce.commune = amap.commune
            annonce.delivery_place = amap.address or ""


def annonces_follow_farms(*, farm_ids: Sequence[int]) -> int:
    """Farm annonces take their farm's current points (its address moved, or the mask's key turned).

    Otherwise an annonce would keep showing a public point masked with a retired key, or the
    farm's former place.
    """
    farms = Farm.objects.filter(pk=OuterRef("farm_id"))
    return (
        Annonce.objects.filter(kind=Annonce.Kind.FARM_SEEKS_AMAP, farm_id__in=list(farm_ids))
        .filter(farm__location__isnull=False)
        .update(
            location=Subquery(farms.values("location")[:1]),
            public_location=Subquery(farms.values("public_location")[:1]),
        )
    )


def _farm_saved(sender, instance: Farm, raw: bool = False, **kwargs) -> None:
    if not raw:
        annonces_follow_farms(farm_ids=[instance.pk])


def _farm_points_changed(sender, farm_ids: Sequence[int], **kwargs) -> None:
    annonces_follow_farms(farm_ids=farm_ids)


def connect_signals() -> None:
    """Called from `MatchingConfig.ready()`: farm annonces move with their farm."""
    from django.db.models.signals import post_save

    from directory.signals import farm_points_changed

    post_save.connect(_farm_saved, sender=Farm, dispatch_uid="matching-annonces-follow-farm")
    farm_points_changed.connect(_farm_points_changed, dispatch_uid="matching-annonces-follow-farms")


@transaction.atomic
def annonce_update(*, user, annonce: Annonce, products: Sequence[ProductCategory] | None = None, **values) -> Annonce:
    """Change an annonce's content (its publisher only)."""
    if not permissions.can_edit_annonce(user, annonce):
        raise PermissionDenied(_("Vous ne pouvez pas modifier cette annonce."))
    current = {
        "radius_km": annonce.radius_km,
        "shares": annonce.shares,
        "delivery_weekdays": annonce.delivery_weekdays,
        "delivery_place": annonce.delivery_place,
        "start_date": annonce.start_date,
        "expires_on": annonce.expires_on,
        "title": annonce.title,
        "description": annonce.description,
    }
    unknown = set(values) - set(current) - {"status"}
    if unknown:
        raise ValidationError({name: [_("Champ non modifiable.")] for name in sorted(unknown)})
    status = values.pop("status", None)
    current.update(values)
    if "expires_on" in values and values["expires_on"] != annonce.expires_on:
        _clean_dates(current["start_date"], values["expires_on"])
    _fill(annonce, **{**current, "expires_on": values.get("expires_on")})
    if status is not None:
        _set_status(annonce, status)
    annonce.full_clean(exclude=["products"])
    annonce.save()
    if products is not None:
        annonce.products.set(_clean_products(products))
    return annonce


def _set_status(annonce: Annonce, status: str) -> None:
    allowed = {Annonce.Status.OPEN, Annonce.Status.PAUSED, Annonce.Status.FULFILLED}
    if status not in allowed:
        raise ValidationError({"status": [_("Statut non autorisé : %(status)s.") % {"status": status}]})
    if status == Annonce.Status.OPEN and annonce.expires_on < timezone.localdate():
        raise ValidationError({"status": [_("L'annonce a expiré : repoussez d'abord sa date d'expiration.")]})
    annonce.status = status


@transaction.atomic
def annonce_set_status(*, user, annonce: Annonce, status: str) -> Annonce:
    """Pause, reopen or close an annonce (its publisher)."""
    if not permissions.can_edit_annonce(user, annonce):
        raise PermissionDenied(_("Vous ne pouvez pas modifier cette annonce."))
    _set_status(annonce, status)
    annonce.save(update_fields=["status", "updated_at"])
    return annonce


@transaction.atomic
def annonce_moderate(*, user, annonce: Annonce, status: str, note: str = "") -> Annonce:
    """A network admin pauses (or reopens) an annonce in their territory, saying why."""
    if not permissions.can_moderate_annonce(user, annonce):
        raise PermissionDenied(_("Cette annonce n'est pas dans le territoire de vos réseaux."))
    if status not in {Annonce.Status.OPEN, Annonce.Status.PAUSED}:
        raise ValidationError({"status": [_("La modération met en pause ou rouvre une annonce.")]})
    if status == Annonce.Status.PAUSED and not note.strip():
        raise ValidationError({"note": [_("Expliquez la mise en pause à l'annonceur.")]})
    _set_status(annonce, status)
    annonce.moderated_by = user
    annonce.moderation_note = note.strip()[:300]
    annonce.save(update_fields=["status", "moderated_by", "moderation_note", "updated_at"])
    return annonce


def annonce_expire_due(*, today: datetime.date | None = None) -> int:
    """Mark open annonces past their expiry date as expired; the number changed."""
    today = today or timezone.localdate()
    return Annonce.objects.filter(status=Annonce.Status.OPEN, expires_on__lt=today).update(
        status=Annonce.Status.EXPIRED, updated_at=timezone.now()
    )


# --------------------------------------------------------------------------- partnership concluded


@dataclass(frozen=True)
class PartnershipOutcome:
    partnerships: list[Partnership]
    annonce: Annonce


@transaction.atomic
def partnership_conclude(
    *,
    user,
    annonce: Annonce,
    counterpart: Amap | Farm,
    products: Sequence[ProductCategory] | None = None,
    shares: int | None = None,
) -> PartnershipOutcome:
    """Record the partnership found through an annonce; close the annonce or take the shares off it."""
    annonce = Annonce.objects.select_for_update().get(pk=annonce.pk)
    if not permissions.can_edit_annonce(user, annonce):
        raise PermissionDenied(_("Seul l'annonceur peut conclure un partenariat sur cette annonce."))
    if annonce.effective_status not in {Annonce.Status.OPEN, Annonce.Status.PAUSED}:
        raise ValidationError({"annonce": [_("Cette annonce n'est plus ouverte.")]})
    if annonce.is_farm_annonce:
        if not isinstance(counterpart, Amap):
            raise ValidationError({"counterpart": [_("Le partenaire d'une ferme est une AMAP.")]})
        amap, farm = counterpart, annonce.farm
    else:
        if not isinstance(counterpart, Farm):
            raise ValidationError({"counterpart": [_("Le partenaire d'une AMAP est une ferme.")]})
        amap, farm = annonce.amap, counterpart
    if amap.status == Amap.Status.CLOSED:
        raise ValidationError({"counterpart": [_("Cette AMAP est fermée.")]})
    offered = list(annonce.products.all())
    chosen = list(products) if products else offered
    if not chosen or any(p not in offered for p in chosen):
        raise ValidationError({"products": [_("Choisissez des produits de l'annonce.")]})
    if shares is not None and shares < 1:
        raise ValidationError({"shares": [_("Indiquez un nombre de parts positif.")]})

    created = []
    for product in chosen:
        partnership, _new = Partnership.objects.get_or_create(
            amap=amap,
            farm=farm,
            product=product,
            defaults={"since": timezone.localdate(), "source": "annonce", "is_active": True},
        )
        if not partnership.is_active:
            partnership.is_active = True
            partnership.until = None
            partnership.save(update_fields=["is_active", "until", "updated_at"])
        created.append(partnership)
        if not annonce.is_farm_annonce:
            farm.products.add(product)

    if shares is not None and annonce.shares:
        annonce.shares = max(0, annonce.shares - shares)
        if annonce.shares == 0:
            annonce.status = Annonce.Status.FULFILLED
    else:
        annonce.status = Annonce.Status.FULFILLED
    annonce.save(update_fields=["shares", "status", "updated_at"])
    # The stored match is now a partnership, not a suggestion.
    Match.objects.filter(annonce=annonce, amap=amap if annonce.is_farm_annonce else None).delete()
    Match.objects.filter(annonce=annonce, farm=farm if not annonce.is_farm_annonce else None).delete()
    return PartnershipOutcome(partnerships=created, annonce=annonce)


# --------------------------------------------------------------------------- contact
# Contact threads live in matching.threads (relay through the platform, delivery state, replies).
from .threads import thread_reply, thread_reply_by_link, thread_start  # noqa: E402, F401

# --------------------------------------------------------------------------- alerts


@transaction.atomic
def saved_search_create(
    *, user, target: str, place: str, radius_km: int, products: Sequence[ProductCategory] = ()
) -> SavedSearch:
    """ "Tell me about new AMAPs/annonces for eggs within 20 km of Libourne" (the place is geocoded)."""
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied(_("Connectez-vous pour créer une alerte."))
    if target not in SavedSearch.Target.values:
        raise ValidationError({"target": [_("Type d'alerte inconnu.")]})
    candidate = place_geocode(text=place, field="place")
    search = SavedSearch(
        user=user,
        target=target,
        place=candidate.label or place,
        location=candidate.point,
        radius_km=radius_km,
        notified_until=timezone.now(),
    )
    search.full_clean()
    search.save()
    search.products.set(products)
    return search


def saved_search_delete(*, user, search: SavedSearch) -> None:
    if search.user_id != user.pk:
        raise PermissionDenied(_("Cette alerte n'est pas la vôtre."))
    search.delete()


def saved_search_news(*, search: SavedSearch, since, until) -> list:
    """What appeared in (since, until] for this alert: AMAPs or annonces, nearest first."""
    from django.contrib.gis.db.models.functions import Distance

    product_ids = list(search.products.values_list("pk", flat=True))
    within = D(km=search.radius_km)
    if search.target == SavedSearch.Target.AMAPS:
        items = Amap.objects.active().filter(
            created_at__gt=since, created_at__lte=until, location__dwithin=(search.location, within)
        )
        if product_ids:
            items = items.filter(products__in=product_ids)
        field = "location"
    else:
        kind = (
            Annonce.Kind.AMAP_SEEKS_FARM
            if search.target == SavedSearch.Target.AMAP_ANNONCES
            else Annonce.Kind.FARM_SEEKS_AMAP
        )
        # The public point only: a farm's exact place never decides what a stranger is told.
        items = Annonce.objects.live().filter(
            kind=kind,
            created_at__gt=since,
            created_at__lte=until,
            public_location__dwithin=(search.location, within),
        )
        if product_ids:
            items = items.filter(products__in=product_ids)
        field = "public_location"
    return list(items.distinct().annotate(distance=Distance(field, search.location)).order_by("distance", "pk")[:50])


@dataclass
class DigestReport:
    emails: int = 0
    alerts: int = 0  # alert items sent
    matches: int = 0  # matches sent


def _item_url(item) -> str:
    if isinstance(item, Amap):
        return _site_url(reverse("directory:amap_detail", args=[item.pk]))
    return _site_url(item.get_absolute_url())


def _digest_lines_for_searches(searches, until) -> tuple[list[str], int]:
    lines, count = [], 0
    for search in searches:
        since = search.notified_until or search.created_at
        news = saved_search_news(search=search, since=since, until=until)
        if not news:
            continue
        lines.append(f"\n{search}")
        for item in news:
            km = item.distance.m / 1000.0
            lines.append(f"  - {item} ({km:.0f} km) : {_item_url(item)}")
        count += len(news)
    return lines, count


def digest_send(*, now=None) -> DigestReport:
    """E-mail each person what is new since their last digest: alert results and new matches.

    Idempotent: what was sent is remembered (`SavedSearch.notified_until`, `Match.notified_at`);
    a second run with nothing new sends nothing.
    """
    now = now or timezone.now()
    annonce_expire_due()
    report = DigestReport()
    User = get_user_model()
    searches_by_user: dict[int, list[SavedSearch]] = {}
    for search in SavedSearch.objects.select_related("user").prefetch_related("products"):
        searches_by_user.setdefault(search.user_id, []).append(search)
    pending = Match.objects.filter(notified_at__isnull=True, first_seen_at__lte=now, annonce__in=Annonce.objects.live())
    users_with_matches = set(
        User.objects.filter(is_active=True)
        .filter(pk__in=pending.values("annonce__farm__managers"))
        .values_list("pk", flat=True)
    ) | set(
        User.objects.filter(is_active=True)
        .filter(pk__in=pending.values("annonce__amap__managers"))
        .values_list("pk", flat=True)
    )
    for user in User.objects.filter(pk__in=set(searches_by_user) | users_with_matches, is_active=True):
        with transaction.atomic():
            searches = searches_by_user.get(user.pk, [])
            lines, alert_count = _digest_lines_for_searches(searches, now)
            mine = list(
                Match.objects.filter(
                    pk__in=pending.filter(Q(annonce__farm__managers=user) | Q(annonce__amap__managers=user)).values(
                        "pk"
                    )
                )
                .select_related("annonce", "amap", "farm")
                .order_by("annonce_id", "rank")
            )
            if mine:
                lines.append("\n" + _("Nouvelles correspondances pour vos annonces :"))
                for match in mine:
                    counterpart = match.amap or match.farm
                    lines.append(
                        f"  - {match.annonce} → {counterpart} ({match.score:.2f}) : {'; '.join(match.reasons)}"
                    )
                    lines.append(f"    {_site_url(match.annonce.get_absolute_url())}")
            if lines:
                body = _("Bonjour,\n\nVoici les nouveautés d'AMAP Atlas :\n") + "\n".join(lines)
                body += "\n\n" + _("Gérer vos alertes : %(url)s") % {"url": _site_url(reverse("matching:alerts"))}
                send_mail(_("[AMAP Atlas] Vos nouveautés"), body, settings.DEFAULT_FROM_EMAIL, [user.email])
                report.emails += 1
                report.alerts += alert_count
                report.matches += len(mine)
            for search in searches:
                SavedSearch.objects.filter(pk=search.pk).update(notified_until=now)
            Match.objects.filter(pk__in=[m.pk for m in mine]).update(notified_at=now)
    return report
