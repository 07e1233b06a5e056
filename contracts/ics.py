"""A member's deliveries as an iCalendar feed (RFC 5545), and the secret token of its URL.

One VEVENT per delivery on which the member's signed subscriptions take something:
- UID `amap-atlas-delivery-<delivery id>-member-<user id>@amap-atlas`, stable across fetches
  and edits, so a calendar app updates the event instead of duplicating it;
- DTSTART/DTEND from the contract's delivery hours in Europe/Paris (with its VTIMEZONE); when
  only the start is known the event lasts two hours; without hours, an all-day event;
- LOCATION the contract's delivery place (else the AMAP's address and commune);
- a postponed delivery sits on its new date (DESCRIPTION says when it was planned);
  a cancelled one stays with STATUS:CANCELLED; SEQUENCE grows with each of those changes;
- DESCRIPTION lists the member's products for that date, and their absence if declared;
- a subscription the member signed and the farmer has not countersigned yet gives
  STATUS:TENTATIVE (« en attente de contre-signature »).

Apps above contracts add their own events (distribution shifts, meetings) through
`contracts.hooks.register_member_feed_source`.

Calendar apps cannot log in, so the feed's URL carries a token: `<user id>.<signature>`
(django.core.signing, salted). The signature also covers a fingerprint of the user's password
hash: changing one's password revokes every feed URL given out before.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

from . import hooks
from .exports import long_date
from .models import Absence, Delivery, Subscription, SubscriptionItem
from .selectors import deliveries_of_member

PARIS = ZoneInfo("Europe/Paris")
DEFAULT_DURATION = dt.timedelta(hours=2)
UID_DOMAIN = "amap-atlas"
FEED_SIGNING_SALT = "contracts.ics-feed"


# --------------------------------------------------------------------------------------------
# Feed token


def _token_signature(user) -> str:
    fingerprint = salted_hmac(FEED_SIGNING_SALT, user.password or "").hexdigest()[:16]
    return signing.Signer(salt=FEED_SIGNING_SALT).signature(f"{user.pk}:{fingerprint}")


def ics_token(user) -> str:
    """The secret part of `user`'s feed URL: `<id>.<signature>` (URL-safe characters only)."""
    return f"{user.pk}.{_token_signature(user)}"


def user_from_ics_token(token: str):
    """The active user this token was made for, or None (bad, forged or revoked token)."""
    pk, _sep, signature = (token or "").partition(".")
    if not pk.isdigit() or not signature or len(pk) > 18:
        return None
    user = get_user_model().objects.filter(pk=int(pk), is_active=True).first()
    if user is None or not constant_time_compare(signature, _token_signature(user)):
        return None
    return user


# --------------------------------------------------------------------------------------------
# Feed


def _location(delivery: Delivery) -> str:
    contract = delivery.contract
    if contract.delivery_place:
        return contract.delivery_place
    amap = contract.amap
    commune = getattr(delivery, "amap_commune_name", "") or ""
    parts = [part for part in (amap.name, amap.address, " ".join(p for p in (amap.postal_code, commune) if p)) if part]
    return ", ".join(parts)


def _times(delivery: Delivery):
    """(start, end) as aware datetimes in Europe/Paris, or dates for an all-day event."""
    contract = delivery.contract
    if contract.delivery_start is None:
        return delivery.date, delivery.date + dt.timedelta(days=1)
    start = dt.datetime.combine(delivery.date, contract.delivery_start, tzinfo=PARIS)
    end = None
    if contract.delivery_end is not None:
        end = dt.datetime.combine(delivery.date, contract.delivery_end, tzinfo=PARIS)
    if end is None or end <= start:
        end = start + DEFAULT_DURATION
    return start, end


def _sequence(delivery: Delivery) -> int:
    """Grows when the event changes for the member: postponed (+1), cancelled (+2)."""
    postponed = delivery.date != delivery.scheduled_date
    cancelled = delivery.status == Delivery.Status.CANCELLED
    return int(postponed) + 2 * int(cancelled)


def member_calendar(*, user) -> bytes:
    """The iCalendar feed (bytes, UTF-8, CRLF) of `user`'s deliveries, past and future."""
    from icalendar import Calendar, Event

    deliveries = list(deliveries_of_member(user=user))
    signed = Subscription.objects.filter(
        member_id=user.pk, status__in=(Subscription.Status.SIGNED, Subscription.Status.MEMBER_SIGNED)
    )
    delivery_ids = [d.pk for d in deliveries]
    products: dict[int, list[str]] = defaultdict(list)
    for delivery_id, name, qty in (
        SubscriptionItem.objects.filter(subscription__in=signed, delivery_id__in=delivery_ids)
        .order_by("delivery_id", "product__position", "product_id")
        .values_list("delivery_id", "product__name", "quantity")
    ):
        products[delivery_id].append(f"{qty} × {name}")
    absences = {a.delivery_id: a for a in Absence.objects.filter(subscription__in=signed, delivery_id__in=delivery_ids)}

    calendar = Calendar()
    calendar.add("prodid", "-//AMAP Atlas//Distributions//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "Mes distributions AMAP")
    calendar.add("x-wr-timezone", "Europe/Paris")
    calendar.add("refresh-interval", dt.timedelta(hours=12), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT12H")

    for delivery in deliveries:
        contract = delivery.contract
        cancelled = delivery.status == Delivery.Status.CANCELLED
        postponed = delivery.date != delivery.scheduled_date
        tentative = getattr(delivery, "awaiting_countersignature", False) and not cancelled
        summary = f"AMAP : {contract.title}"
        if tentative:
            summary = f"{summary} (en attente de contre-signature)"
        if cancelled:
            summary = f"Annulée — {summary}"
        elif postponed:
            summary = f"{summary} (reportée)"
        lines = []
        if products.get(delivery.pk):
            lines.append("Vos produits : " + ", ".join(products[delivery.pk]))
        lines.append(f"{contract.amap.name} — {contract.farm.name}")
        if tentative:
            lines.append("Contrat signé, en attente de contre-signature par la ferme.")
        if cancelled:
            lines.append("Distribution annulée (aléa de production).")
        if postponed:
            lines.append(f"Distribution reportée : prévue initialement le {long_date(delivery.scheduled_date)}.")
        if delivery.note:
            lines.append(delivery.note)
        absence = absences.get(delivery.pk)
        if absence is not None:
            who = f" — remplacé·e par {absence.substitute_name}" if absence.substitute_name else ""
            lines.append(f"Vous avez signalé votre absence{who}.")

        start, end = _times(delivery)
        event = Event()
        event.add("uid", f"amap-atlas-delivery-{delivery.pk}-member-{user.pk}@{UID_DOMAIN}")
        event.add("dtstamp", delivery.updated_at)
        event.add("last-modified", delivery.updated_at)
        event.add("sequence", _sequence(delivery))
        event.add("summary", summary)
        event.add("dtstart", start)
        event.add("dtend", end)
        location = _location(delivery)
        if location:
            event.add("location", location)
        event.add("description", "\n".join(lines))
        event.add("status", "CANCELLED" if cancelled else "TENTATIVE" if tentative else "CONFIRMED")
        event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
        calendar.add_component(event)

    dates = [d.date for d in deliveries]
    for component in hooks.member_feed_components(user=user):
        calendar.add_component(component)
        start = component.decoded("dtstart", None)
        if start is not None:
            dates.append(start.date() if isinstance(start, dt.datetime) else start)
    if dates:
        # The VTIMEZONE's transitions cover the feed's dates only (the default spans 1970–2038).
        calendar.add_missing_timezones(
            first_date=min(dates) - dt.timedelta(days=366), last_date=max(dates) + dt.timedelta(days=366)
        )
    return calendar.to_ical()
