"""The demo contract of `make demo`: one AMAP's vegetable contract with its team, members,
signatures and deliveries, written through the services, like real use.

Deterministic: the same AMAP, farm, people and quantities every time (fixed seed); only the
dates follow today (the season starts on the AMAP's next delivery day). Everything says it is
a demo: the AMAP and farm are demo rows, the title ends in « (démo) », accounts are @example.org.

Signatures go through the real flow (charter, e-mailed one-time code, confirmation), so the
frozen PDFs, `Signature` rows and evidence events are exactly those of a real signature: the
e-mails stay in memory while the demo is written and the codes are read back from them.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.contrib.gis.db.models.functions import GeometryDistance
from django.core import mail
from django.db import transaction
from django.db.models import Q
from django.test.utils import override_settings
from django.utils import formats, timezone, translation

from accounts.models import User
from directory.demo import DEMO_SUFFIX
from directory.models import Amap, AmapManager, Farm, Partnership, ProductCategory, Weekday

from . import services, signing
from .models import Contract, Delivery, Signature, Subscription

SEED = 2026
DEMO_PASSWORD = "demo"  # noqa: S105 — the published demo password (DEBUG only)
ADMIN_EMAIL = "admin@example.org"  # made by `ensure_demo_admin`
REFERENT = ("referent@example.org", "Régine Morel")
FARMER = ("paysan@example.org", "Paul Laborde")
# In sign-up order: the first eight sign, two stay to sign, the last two wait for a place.
MEMBERS = (
    ("amapien@example.org", "Camille Dubois"),
    ("amapien2@example.org", "Julien Martin"),
    ("amapien3@example.org", "Inès Bernard"),
    ("amapien4@example.org", "Lucas Petit"),
    ("amapien5@example.org", "Chloé Durand"),
    ("amapien6@example.org", "Hugo Leroy"),
    ("amapien7@example.org", "Manon Moreau"),
    ("amapien8@example.org", "Nathan Simon"),
    ("amapien9@example.org", "Léa Laurent"),
    ("amapien10@example.org", "Thomas Michel"),
    ("amapien11@example.org", "Sarah Garcia"),
    ("amapien12@example.org", "Louis Roux"),
)
SIGNED_MEMBERS = 8
TWO_SHARE_MEMBERS = {1, 4}  # households of two take two shares (8 signed = 10 shares, +2 pending = 12)
CAPACITY_SHARES = 12
BORDEAUX = "33063"
DEFAULT_WEEKDAY = Weekday.TUESDAY
WEEKS = 26
USER_AGENT = "AMAP Atlas — données de démonstration (load_demo_contracts)"
PRODUCTS = (
    ("Petit panier", Decimal("12.50"), "legumes", 4),
    ("Grand panier", Decimal("20.00"), "legumes", 4),
    ("6 œufs", Decimal("2.40"), "oeufs", 6),
)
_CODE_LINE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)


@dataclass
class DemoSummary:
    amap: Amap
    farm: Farm
    contract: Contract | None = None
    created: bool = False
    accounts_created: list[str] = field(default_factory=list)
    deliveries: int = 0
    signed: int = 0
    pending: int = 0
    waiting: int = 0
    postponed: Delivery | None = None
    absence: str = ""
    seconds: float = 0.0


def demo_contracts():
    """The contracts this module writes (on demo AMAPs, titled « … (démo) »)."""
    return Contract.objects.filter(amap__is_demo=True, title__endswith=DEMO_SUFFIX)


def demo_amap() -> Amap | None:
    """The first active demo AMAP in Bordeaux, or else the first active demo AMAP, or else any."""
    amaps = Amap.objects.filter(is_demo=True).order_by("pk")
    return (
        amaps.filter(commune_id=BORDEAUX, status=Amap.Status.ACTIVE).first()
        or amaps.filter(status=Amap.Status.ACTIVE).first()
        or amaps.first()
    )


def demo_farm(amap: Amap) -> tuple[Farm | None, Partnership | None]:
    """A demo farm growing vegetables for this AMAP: its partner if it has one, else the nearest."""
    partnership = (
        Partnership.objects.filter(
            amap=amap, farm__is_demo=True, farm__is_active=True, product__slug="legumes", is_active=True
        )
        .select_related("farm")
        .order_by("pk")
        .first()
    )
    if partnership is not None:
        return partnership.farm, partnership
    farms = Farm.objects.filter(is_demo=True, is_active=True)
    # <-> walks the GiST index; the public point is enough to choose a neighbour
    nearest = (
        farms.filter(products__slug="legumes", public_location__isnull=False)
        .order_by(GeometryDistance("public_location", amap.location), "pk")
        .first()
    )
    return nearest or farms.order_by("pk").first(), None


def _long_date(day: dt.date) -> str:
    with translation.override("fr"):
        return formats.date_format(day, "l j F Y")


def _next_weekday(after: dt.date, weekday: int) -> dt.date:
    """The first `weekday` (1 = Monday … 7 = Sunday) strictly after `after`."""
    return after + dt.timedelta(days=(weekday - after.isoweekday() - 1) % 7 + 1)


def _accounts(amap: Amap, farm: Farm, summary: DemoSummary) -> tuple[User, User, list[User]]:
    """Demo accounts (password « demo », hashed once for all: hashing costs about a second) and their roles."""

    @functools.cache
    def password() -> str:
        return make_password(DEMO_PASSWORD)

    def account(email: str, name: str) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create(email=email, display_name=name, password=password())
            summary.accounts_created.append(email)
        return user

    referent = account(*REFERENT)
    farmer = account(*FARMER)
    members = [account(email, name) for email, name in MEMBERS]
    AmapManager.objects.get_or_create(amap=amap, user=referent, defaults={"role": AmapManager.Role.REFERENT})
    admin = User.objects.filter(email=ADMIN_EMAIL).first()
    if admin is not None:
        AmapManager.objects.get_or_create(amap=amap, user=admin, defaults={"role": AmapManager.Role.ADMIN})
    farm.managers.add(farmer)
    return referent, farmer, members


def _sign(*, user: User, subscription: Subscription, role: str) -> None:
    """Sign through the real flow; the code is read back from the in-memory e-mail."""
    sent = len(mail.outbox)
    signing.signature_request_code(user=user, subscription=subscription, role=role, charter_accepted=True)
    bodies = [message.body for message in mail.outbox[sent:] if user.email in message.to]
    match = _CODE_LINE.search(bodies[-1]) if bodies else None
    if match is None:
        raise RuntimeError(f"demo: no signature code e-mailed to {user.email}")
    signing.signature_confirm(
        user=user, subscription=subscription, role=role, code=match.group(1), ip_address=None, user_agent=USER_AGENT
    )


def _write(*, amap: Amap, farm: Farm, partnership: Partnership | None, today: dt.date, summary: DemoSummary) -> None:
    referent, farmer, members = _accounts(amap, farm, summary)
    rng = random.Random(SEED)
    categories = {category.slug: category for category in ProductCategory.objects.filter(slug__in=["legumes", "oeufs"])}
    weekday = next(iter(sorted(amap.delivery_weekdays or [])), DEFAULT_WEEKDAY)
    start = _next_weekday(today, weekday)
    end = start + dt.timedelta(weeks=WEEKS)
    place = ", ".join(part for part in (amap.address, amap.postal_code, amap.commune.name) if part)
    contract = services.contract_create(
        user=referent,
        amap=amap,
        farm=farm,
        title=f"Légumes de saison {start.year}{DEMO_SUFFIX}",
        season_start=start,
        season_end=end,
        weekday=weekday,
        frequency=Contract.Frequency.WEEKLY,
        capacity_shares=CAPACITY_SHARES,
        products=[
            {"name": name, "unit_price": price, "category": categories.get(slug), "max_quantity": most}
            for name, price, slug, most in PRODUCTS
        ],
        referent=referent,
        description=(
            "Contrat de démonstration : l'AMAP, la ferme, les adhérent·es et leurs signatures sont fictifs.\n"
            "Un panier de légumes de saison chaque semaine, des œufs en option."
        ),
        commitments=(
            "La ferme livre des légumes de saison cultivés sans pesticides de synthèse et partage les aléas "
            "de production. Les adhérent·es tiennent la distribution à tour de rôle et préviennent de leurs "
            "absences."
        ),
        delivery_start=amap.delivery_start or dt.time(18, 0),
        delivery_end=amap.delivery_end or dt.time(19, 30),
        delivery_place=place,
        instalments_max=3,
        payment_methods=["cheque", "transfer"],
        payment_payee=farm.name,
        partnership=partnership,
        # The farm takes a week off in the middle of the season.
        exceptions=[(start + dt.timedelta(weeks=13), "farm_closure", "Congés de la ferme")],
    )
    contract = services.contract_publish(user=referent, contract=contract)
    products = {product.name: product for product in contract.products.all()}

    subscriptions = []
    for index, member in enumerate(members):
        shares = 2 if index in TWO_SHARE_MEMBERS else 1
        basket = "Grand panier" if shares == 2 else rng.choice(["Petit panier", "Grand panier"])
        quantities = {products[basket].pk: 1}
        eggs = rng.choice([0, 0, 1, 2])
        if eggs:
            quantities[products["6 œufs"].pk] = eggs
        subscriptions.append(
            services.subscription_create(
                user=member,
                contract=contract,
                quantities=quantities,
                shares=shares,
                instalments=rng.choice([1, 3]),
                payment_method=rng.choice(["cheque", "transfer"]),
            )
        )
    for subscription in subscriptions[:SIGNED_MEMBERS]:
        _sign(user=subscription.member, subscription=subscription, role=Signature.Role.MEMBER)
        _sign(user=farmer, subscription=subscription, role=Signature.Role.FARMER)

    deliveries = list(contract.deliveries.order_by("date", "pk"))
    first = subscriptions[0]
    services.absence_declare(
        user=first.member,
        subscription=first,
        delivery=deliveries[0],
        substitute_name="Léa Voisin",
        note="En vacances : ma voisine prend le panier.",
    )
    postponed = deliveries[3]
    summary.postponed = services.delivery_mark(
        user=referent,
        delivery=postponed,
        status=Delivery.Status.POSTPONED,
        new_date=postponed.date + dt.timedelta(days=1),
        note="La salle de distribution est prise ce jour-là : distribution le lendemain.",
    )
    statuses = [Subscription.objects.get(pk=subscription.pk).status for subscription in subscriptions]
    summary.contract = contract
    summary.created = True
    summary.deliveries = len(deliveries)
    summary.signed = statuses.count(Subscription.Status.SIGNED)
    summary.pending = statuses.count(Subscription.Status.PENDING)
    summary.waiting = statuses.count(Subscription.Status.WAITING)
    summary.absence = f"{first.member_name} le {_long_date(deliveries[0].date)} (remplaçante : Léa Voisin)"


def demo_contract_load(*, today: dt.date | None = None) -> DemoSummary | None:
    """Write the demo contract unless it exists (then only the accounts and roles are ensured).

    Returns None when there is no demo AMAP or no demo farm to hang it on. One transaction:
    nothing is half-written.
    """
    started = time.perf_counter()
    amap = demo_amap()
    if amap is None:
        return None
    farm, partnership = demo_farm(amap)
    if farm is None:
        return None
    today = today or timezone.localdate()
    existing = demo_contracts().select_related("amap", "farm").order_by("pk").first()
    if existing is not None:
        summary = DemoSummary(amap=existing.amap, farm=existing.farm, contract=existing)
        with transaction.atomic():
            _accounts(existing.amap, existing.farm, summary)
        summary.seconds = time.perf_counter() - started
        return summary

    summary = DemoSummary(amap=amap, farm=farm)
    outbox = getattr(mail, "outbox", None)
    mail.outbox = []
    try:
        # Signature codes and notices to @example.org stay in memory (the codes are read back).
        # The transaction ends inside the override: notices sent on commit stay in memory too.
        with (
            override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
            transaction.atomic(),
        ):
            _write(amap=amap, farm=farm, partnership=partnership, today=today, summary=summary)
    finally:
        if outbox is None:
            del mail.outbox
        else:
            mail.outbox = outbox
    summary.seconds = time.perf_counter() - started
    return summary


def summary_lines(summary: DemoSummary) -> list[str]:
    """What was done, in French, for the command's output."""
    contract = summary.contract
    lines = [f"AMAP : {summary.amap.name} ({summary.amap.commune.name}) ; ferme : {summary.farm.name}."]
    if summary.accounts_created:
        lines.append(f"Comptes créés (mot de passe « {DEMO_PASSWORD} ») : {', '.join(summary.accounts_created)}.")
    if not summary.created:
        lines.append(f"Contrat de démonstration déjà présent : « {contract.title} » (n° {contract.pk}).")
        return lines
    deliveries = contract.deliveries.order_by("date")
    lines += [
        f"Contrat « {contract.title} » (n° {contract.pk}) ouvert : {summary.deliveries} distributions "
        f"du {_long_date(deliveries.first().date)} au {_long_date(deliveries.last().date)}, "
        f"{contract.capacity_shares} parts, référente {REFERENT[0]}, ferme gérée par {FARMER[0]}.",
        f"Souscriptions : {summary.signed} signées par les deux parties (PDF figés), "
        f"{summary.pending} à signer, {summary.waiting} en liste d'attente.",
        f"Distribution du {_long_date(summary.postponed.scheduled_date)} reportée au "
        f"{_long_date(summary.postponed.date)} ; absence de {summary.absence}.",
        f"Équipe de l'AMAP : {REFERENT[0]} (référente), {ADMIN_EMAIL} (administrateur) ; "
        f"adhérent·es {MEMBERS[0][0]} … {MEMBERS[-1][0]} ; mot de passe « {DEMO_PASSWORD} ».",
    ]
    return lines


@transaction.atomic
def demo_contracts_clear() -> int:
    """Delete the contracts of demo AMAPs or farms (before the demo directory itself goes)."""
    from .retention import contracts_purge, subscriptions_purge

    ids = list(Contract.objects.filter(Q(amap__is_demo=True) | Q(farm__is_demo=True)).values_list("pk", flat=True))
    subscription_ids = Subscription.objects.filter(contract_id__in=ids).values_list("pk", flat=True)
    subscriptions_purge(ids=subscription_ids, reason="données de démonstration effacées")
    contracts_purge(ids=ids, reason="données de démonstration effacées")
    return len(ids)
