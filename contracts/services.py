"""Writes on contracts: templates and their calendars, subscriptions, waiting lists,
amendments, absences, deliveries.

Every service checks the acting user's right on the object (`accounts.permissions`) and raises
`PermissionDenied`; bad values raise `ValidationError({field: [message in French]})`.
Meaningful events go to the hash-chained evidence trail (`contracts.evidence`). E-mails leave
once the transaction commits.

Rules worth knowing:
- a subscription's items (`SubscriptionItem`) are laid out for the deliveries still to come
  (not cancelled, from today on); `quantities` are what the member takes per delivery, `shares`
  what they hold of the contract's capacity (independent numbers, both chosen by the member);
- pattern « alternate » takes the first delivery to come, then every other one;
- capacity: shares of `HOLDING_STATUSES` subscriptions, minus amendments in progress (they keep
  the shares of the version they replace); the contract row is locked while counting, so
  concurrent sign-ups never oversell it; beyond the capacity, the subscription waits;
- the waiting list is served in order, skipping entries that ask for more shares than are free,
  and only while the contract is open;
- signed subscriptions are never edited nor cancelled here: an amendment (new version) changes
  the quantities from a date on, possibly to nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from accounts import permissions
from directory.models import Farm, ProductCategory

from . import calendars
from .models import (
    Absence,
    AcademicCalendar,
    CalendarException,
    Contract,
    ContractProduct,
    Delivery,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
)

MAX_SEASON_DAYS = 731  # two years: a longer "season" is a typing error
MAX_INSTALMENTS = 12
MAX_PRODUCT_QUANTITY = 1000
POSTPONE_GRACE_DAYS = 31  # a delivery may be postponed up to a month after the season ends

# Fields a référent sets on a draft contract (besides products and exceptions).
_DRAFT_FIELDS = {
    "title",
    "description",
    "commitments",
    "season_start",
    "season_end",
    "weekday",
    "frequency",
    "exclude_public_holidays",
    "academic_calendar",
    "delivery_start",
    "delivery_end",
    "delivery_place",
    "capacity_shares",
    "instalments_max",
    "payment_methods",
    "payment_payee",
    "subscription_deadline",
    "referent",
    "partnership",
}
# Once members may have subscribed, only these may change (capacity upwards only; a new référent
# takes over the running of the contract, what members signed stays as it is).
_OPEN_FIELDS = {"description", "commitments", "capacity_shares", "referent"}

LIVE_STATUSES = (
    Subscription.Status.WAITING,
    Subscription.Status.PENDING,
    Subscription.Status.MEMBER_SIGNED,
    Subscription.Status.SIGNED,
)


# --------------------------------------------------------------------------------------------
# Helpers


def _evidence(*, kind: str, payload: dict, contract_id=None, subscription_id=None, actor=None) -> None:
    from .evidence import evidence_append

    evidence_append(
        kind=kind,
        payload=payload,
        contract_id=contract_id,
        subscription_id=subscription_id,
        actor_id=getattr(actor, "pk", None),
    )


def _site_url(path: str) -> str:
    base = getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")
    return f"{base}{path}"


def _subscription_path(subscription: Subscription) -> str:
    try:
        return reverse("contracts:subscription_detail", kwargs={"pk": subscription.pk})
    except NoReverseMatch:  # pages not wired (e.g. a project using the services alone)
        return f"/contrats/souscriptions/{subscription.pk}/"


def _long_date(day: dt.date) -> str:
    with translation.override("fr"):
        return formats.date_format(day, "l j F Y")


def _short_date(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _mail_on_commit(subject: str, body: str, recipients: Iterable[str]) -> None:
    """Send one e-mail per recipient once the transaction commits (nothing leaves on rollback)."""
    recipients = sorted({address for address in recipients if address})
    if not recipients:
        return

    def send():
        for address in recipients:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=True)

    transaction.on_commit(send)


def _is_authenticated(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def _require_manager(user, contract: Contract) -> None:
    if not permissions.can_manage_contract(user, contract):
        raise PermissionDenied(
            _("Seuls le ou la référent·e du contrat et les administrateurs de l'AMAP peuvent faire cela.")
        )


def _require_member_or_manager(user, subscription: Subscription) -> None:
    if not _is_authenticated(user):
        raise PermissionDenied(_("Connectez-vous pour gérer votre contrat."))
    if subscription.member_id is not None and subscription.member_id == user.pk:
        return
    if permissions.can_manage_contract(user, subscription.contract):
        return
    raise PermissionDenied(_("Cette souscription n'est pas la vôtre."))


def _locked_contract(contract: Contract) -> Contract:
    """The contract row, locked until the transaction ends (serialises capacity counts)."""
    return Contract.objects.select_for_update().select_related("amap__commune", "farm").get(pk=contract.pk)


def _locked_subscription(subscription: Subscription) -> Subscription:
    return Subscription.objects.select_for_update().get(pk=subscription.pk)


def _as_int(value: Any, *, field: str, label: str) -> int:
    if isinstance(value, bool):
        raise ValidationError({field: [_("%(label)s : nombre entier attendu.") % {"label": label}]})
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: [_("%(label)s : nombre entier attendu.") % {"label": label}]}) from None
    if isinstance(value, float) and value != number:
        raise ValidationError({field: [_("%(label)s : nombre entier attendu.") % {"label": label}]})
    return number


def _as_date(value: Any, *, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError({field: [_("Date invalide (attendu : AAAA-MM-JJ).")]})


def _as_time(value: Any, *, field: str) -> dt.time | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError({field: [_("Heure invalide (attendu : HH:MM).")]})


def _text(value: Any, *, field: str, max_length: int, required: bool = False) -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise ValidationError({field: [_("Ce champ est obligatoire.")]})
    if len(text) > max_length:
        raise ValidationError({field: [_("%(max)s caractères au plus.") % {"max": max_length}]})
    return text


# --------------------------------------------------------------------------------------------
# Contract templates


def _clean_contract_fields(fields: dict[str, Any], *, amap) -> dict[str, Any]:
    """Validated values for the contract fields present in `fields` (others untouched)."""
    cleaned: dict[str, Any] = {}
    if "title" in fields:
        cleaned["title"] = _text(fields["title"], field="title", max_length=200, required=True)
    for name in ("description", "commitments"):
        if name in fields:
            cleaned[name] = _text(fields[name], field=name, max_length=20000)
    if "delivery_place" in fields:
        cleaned["delivery_place"] = _text(fields["delivery_place"], field="delivery_place", max_length=300)
    if "payment_payee" in fields:
        cleaned["payment_payee"] = _text(fields["payment_payee"], field="payment_payee", max_length=200)
    for name in ("season_start", "season_end"):
        if name in fields:
            cleaned[name] = _as_date(fields[name], field=name)
    if "subscription_deadline" in fields:
        value = fields["subscription_deadline"]
        cleaned["subscription_deadline"] = (
            None if value in (None, "") else _as_date(value, field="subscription_deadline")
        )
    if "weekday" in fields:
        weekday = _as_int(fields["weekday"], field="weekday", label=_("Jour de distribution"))
        if not 1 <= weekday <= 7:
            raise ValidationError({"weekday": [_("Les jours vont de 1 (lundi) à 7 (dimanche).")]})
        cleaned["weekday"] = weekday
    if "frequency" in fields:
        if fields["frequency"] not in Contract.Frequency.values:
            raise ValidationError(
                {
                    "frequency": [
                        _("Fréquence inconnue : choisissez chaque semaine, toutes les deux semaines ou chaque mois.")
                    ]
                }
            )
        cleaned["frequency"] = fields["frequency"]
    if "exclude_public_holidays" in fields:
        cleaned["exclude_public_holidays"] = bool(fields["exclude_public_holidays"])
    if "capacity_shares" in fields:
        capacity = _as_int(fields["capacity_shares"], field="capacity_shares", label=_("Nombre de parts"))
        if capacity < 1:
            raise ValidationError({"capacity_shares": [_("Il faut au moins une part.")]})
        if capacity > 100000:
            raise ValidationError({"capacity_shares": [_("100 000 parts au plus.")]})
        cleaned["capacity_shares"] = capacity
    if "instalments_max" in fields:
        count = _as_int(fields["instalments_max"], field="instalments_max", label=_("Nombre de versements"))
        if not 1 <= count <= MAX_INSTALMENTS:
            raise ValidationError({"instalments_max": [_("De 1 à %(max)s versements.") % {"max": MAX_INSTALMENTS}]})
        cleaned["instalments_max"] = count
    if "payment_methods" in fields:
        methods = fields["payment_methods"]
        if isinstance(methods, str):
            methods = [methods]
        methods = list(dict.fromkeys(methods or []))
        unknown = [str(method) for method in methods if method not in PaymentMethod.values]
        if unknown:
            raise ValidationError(
                {"payment_methods": [_("Moyen de paiement inconnu : %(value)s.") % {"value": ", ".join(unknown)}]}
            )
        if not methods:
            raise ValidationError({"payment_methods": [_("Proposez au moins un moyen de paiement.")]})
        cleaned["payment_methods"] = methods
    for name in ("delivery_start", "delivery_end"):
        if name in fields:
            cleaned[name] = _as_time(fields[name], field=name)
    if "academic_calendar" in fields:
        academic = fields["academic_calendar"]
        if academic is not None and not isinstance(academic, AcademicCalendar):
            academic = AcademicCalendar.objects.filter(
                pk=_as_int(academic, field="academic_calendar", label="id")
            ).first()
            if academic is None:
                raise ValidationError({"academic_calendar": [_("Calendrier universitaire inconnu.")]})
        if academic is not None and academic.amap_id not in (None, amap.pk):
            raise ValidationError({"academic_calendar": [_("Ce calendrier universitaire est celui d'une autre AMAP.")]})
        cleaned["academic_calendar"] = academic
    if "partnership" in fields:
        cleaned["partnership"] = fields["partnership"]
    if "farm" in fields:
        if not isinstance(fields["farm"], Farm):
            raise ValidationError({"farm": [_("Choisissez une ferme.")]})
        cleaned["farm"] = fields["farm"]
    if "referent" in fields and fields["referent"] is not None:
        cleaned["referent"] = fields["referent"]
    return cleaned


def _check_contract_consistency(contract: Contract) -> None:
    """Rules across fields, on the contract as it would be saved."""
    if contract.season_end <= contract.season_start:
        raise ValidationError({"season_end": [_("La fin de la saison doit être après son début.")]})
    if (contract.season_end - contract.season_start).days > MAX_SEASON_DAYS:
        raise ValidationError({"season_end": [_("Une saison dure deux ans au plus.")]})
    if contract.subscription_deadline and contract.subscription_deadline > contract.season_end:
        raise ValidationError(
            {"subscription_deadline": [_("La date limite de souscription est après la fin de la saison.")]}
        )
    if contract.delivery_start and contract.delivery_end and contract.delivery_end <= contract.delivery_start:
        raise ValidationError({"delivery_end": [_("La distribution doit finir après son début.")]})
    if not contract.payment_methods:
        contract.payment_methods = [PaymentMethod.CHEQUE]
    partnership = contract.partnership
    if partnership is not None and (partnership.amap_id != contract.amap_id or partnership.farm_id != contract.farm_id):
        raise ValidationError({"partnership": [_("Ce partenariat ne lie pas cette AMAP à cette ferme.")]})
    if contract.referent_id is None or not contract.amap.manager_roles.filter(user_id=contract.referent_id).exists():
        raise ValidationError({"referent": [_("Le ou la référent·e doit faire partie de l'équipe de l'AMAP.")]})


def _clean_products(products: Any) -> list[dict[str, Any]]:
    if products is None:
        return []
    if not isinstance(products, (list, tuple)):
        raise ValidationError({"products": [_("Liste de produits attendue.")]})
    cleaned = []
    names: set[str] = set()
    for index, product in enumerate(products, start=1):
        if not isinstance(product, Mapping):
            raise ValidationError({"products": [_("Produit n°%(n)s : description attendue.") % {"n": index}]})
        name = _text(product.get("name"), field="products", max_length=120)
        if not name:
            raise ValidationError({"products": [_("Produit n°%(n)s : le nom est obligatoire.") % {"n": index}]})
        if name.casefold() in names:
            raise ValidationError({"products": [_("Deux produits s'appellent « %(name)s ».") % {"name": name}]})
        names.add(name.casefold())
        try:
            price = Decimal(str(product.get("unit_price")))
        except (InvalidOperation, ValueError):
            raise ValidationError({"products": [_("« %(name)s » : prix invalide.") % {"name": name}]}) from None
        if not price.is_finite() or price <= 0 or price >= Decimal("1000000"):
            raise ValidationError({"products": [_("« %(name)s » : le prix doit être positif.") % {"name": name}]})
        if price != price.quantize(Decimal("0.01")):
            raise ValidationError({"products": [_("« %(name)s » : prix au centime près.") % {"name": name}]})
        max_quantity = _as_int(product.get("max_quantity", 10), field="products", label=name)
        if not 1 <= max_quantity <= MAX_PRODUCT_QUANTITY:
            raise ValidationError(
                {
                    "products": [
                        _("« %(name)s » : quantité maximale de 1 à %(max)s.")
                        % {"name": name, "max": MAX_PRODUCT_QUANTITY}
                    ]
                }
            )
        category = product.get("category")
        if category is not None and not isinstance(category, ProductCategory):
            category = ProductCategory.objects.filter(slug=str(category)).first()
            if category is None:
                raise ValidationError({"products": [_("« %(name)s » : catégorie inconnue.") % {"name": name}]})
        cleaned.append(
            {
                "id": product.get("id"),
                "name": name,
                "unit_price": price,
                "max_quantity": max_quantity,
                "category": category,
                "position": index,
            }
        )
    return cleaned


def _clean_exceptions(exceptions: Any, *, season_start: dt.date, season_end: dt.date) -> list[tuple[dt.date, str, str]]:
    if exceptions is None:
        return []
    cleaned: dict[dt.date, tuple[dt.date, str, str]] = {}
    for entry in exceptions:
        if isinstance(entry, Mapping):
            day, kind, label = entry.get("date"), entry.get("kind", "chosen"), entry.get("label", "")
        else:
            entry = tuple(entry)
            day = entry[0]
            kind = entry[1] if len(entry) > 1 else CalendarException.Kind.CHOSEN
            label = entry[2] if len(entry) > 2 else ""
        day = _as_date(day, field="exceptions")
        if kind not in CalendarException.Kind.values:
            raise ValidationError({"exceptions": [_("Motif inconnu : %(kind)s.") % {"kind": kind}]})
        if not season_start <= day <= season_end:
            raise ValidationError(
                {"exceptions": [_("Le %(date)s est en dehors de la saison.") % {"date": _short_date(day)}]}
            )
        cleaned[day] = (day, kind, _text(label, field="exceptions", max_length=200))
    return sorted(cleaned.values())


def _replace_products(contract: Contract, products: list[dict[str, Any]]) -> None:
    """Draft only: the given list becomes the contract's products (given ids keep their rows)."""
    existing = {product.pk: product for product in contract.products.all()}
    rows = []
    for spec in products:
        product = ContractProduct(contract=contract)
        if spec["id"] is not None:
            product = existing.get(_as_int(spec["id"], field="products", label="id"))
            if product is None:
                raise ValidationError({"products": [_("Produit inconnu : %(id)s.") % {"id": spec["id"]}]})
        for name in ("name", "unit_price", "max_quantity", "category", "position"):
            setattr(product, name, spec[name])
        rows.append(product)
    kept = [product.pk for product in rows if product.pk is not None]
    contract.products.exclude(pk__in=kept).delete()
    # Names are unique per contract: free them all before saving, so products may swap names.
    for pk in kept:
        ContractProduct.objects.filter(pk=pk).update(name=f"__renaming_{pk}")
    for product in rows:
        product.save()


def _replace_exceptions(contract: Contract, exceptions: list[tuple[dt.date, str, str]]) -> None:
    contract.exceptions.all().delete()
    CalendarException.objects.bulk_create(
        CalendarException(contract=contract, date=day, kind=kind, label=label) for day, kind, label in exceptions
    )


def _generate_deliveries(contract: Contract) -> list[Delivery]:
    """Draft only: one delivery per date of the calendar; dates that stay keep their rows."""
    dates = set(calendars.contract_delivery_dates(contract))
    contract.deliveries.exclude(scheduled_date__in=dates).delete()
    existing = set(contract.deliveries.values_list("scheduled_date", flat=True))
    Delivery.objects.bulk_create(
        Delivery(contract=contract, scheduled_date=day, date=day) for day in sorted(dates - existing)
    )
    return list(contract.deliveries.order_by("date", "pk"))


@transaction.atomic
def contract_create(
    *,
    user,
    amap,
    farm,
    title: str,
    season_start: dt.date,
    season_end: dt.date,
    weekday: int,
    frequency: str,
    capacity_shares: int,
    products: list[dict],
    referent=None,
    **options,
) -> Contract:
    """A draft contract with its products, exceptions and generated deliveries."""
    if not permissions.can_act_for_amap(user, amap):
        raise PermissionDenied(_("Seule l'équipe de l'AMAP peut proposer un contrat en son nom."))
    exceptions = options.pop("exceptions", None)
    unknown = set(options) - (_DRAFT_FIELDS - {"referent"})
    if unknown:
        raise TypeError(f"contract_create: unknown options {', '.join(sorted(unknown))}")
    fields = {
        "farm": farm,
        "title": title,
        "season_start": season_start,
        "season_end": season_end,
        "weekday": weekday,
        "frequency": frequency,
        "capacity_shares": capacity_shares,
        **options,
    }
    cleaned = _clean_contract_fields(fields, amap=amap)
    contract = Contract(amap=amap, referent=referent or user, created_by=user, **cleaned)
    _check_contract_consistency(contract)
    product_specs = _clean_products(products)
    exception_rows = _clean_exceptions(exceptions, season_start=contract.season_start, season_end=contract.season_end)
    contract.save()
    _replace_products(contract, [{**spec, "id": None} for spec in product_specs])
    _replace_exceptions(contract, exception_rows)
    _generate_deliveries(contract)
    return contract


@transaction.atomic
def contract_update(*, user, contract: Contract, **fields) -> Contract:
    """Draft: anything (deliveries regenerated). Open or closed: description, commitments, capacity up."""
    contract = _locked_contract(contract)
    _require_manager(user, contract)
    products = fields.pop("products", None)
    exceptions = fields.pop("exceptions", None)
    unknown = set(fields) - _DRAFT_FIELDS - {"farm"}
    if unknown:
        raise TypeError(f"contract_update: unknown fields {', '.join(sorted(unknown))}")

    if contract.status == Contract.Status.ARCHIVED:
        raise ValidationError({"status": [_("Un contrat archivé ne se modifie plus.")]})
    if contract.status != Contract.Status.DRAFT:
        frozen = sorted(set(fields) - _OPEN_FIELDS) + (["products"] if products is not None else [])
        frozen += ["exceptions"] if exceptions is not None else []
        if frozen:
            raise ValidationError(
                {name: [_("Ne se modifie plus une fois le contrat ouvert aux souscriptions.")] for name in frozen}
            )

    cleaned = _clean_contract_fields(fields, amap=contract.amap)
    old_capacity = contract.capacity_shares
    if contract.status != Contract.Status.DRAFT and cleaned.get("capacity_shares", old_capacity) < old_capacity:
        raise ValidationError(
            {"capacity_shares": [_("Le nombre de parts ne peut qu'augmenter une fois le contrat ouvert.")]}
        )
    for name, value in cleaned.items():
        setattr(contract, name, value)
    _check_contract_consistency(contract)
    contract.save()

    if contract.status == Contract.Status.DRAFT:
        if products is not None:
            _replace_products(contract, _clean_products(products))
        if exceptions is not None:
            _replace_exceptions(
                contract,
                _clean_exceptions(exceptions, season_start=contract.season_start, season_end=contract.season_end),
            )
        _generate_deliveries(contract)
    elif contract.capacity_shares > old_capacity:
        waiting_list_promote(contract=contract)
    return contract


def _contract_payload(contract: Contract) -> dict[str, Any]:
    return {
        "title": contract.title,
        "amap": contract.amap.name,
        "farm": contract.farm.name,
        "season": [contract.season_start, contract.season_end],
        "capacity_shares": contract.capacity_shares,
        "instalments_max": contract.instalments_max,
        "payment_methods": list(contract.payment_methods),
        "products": [
            {"id": product.pk, "name": product.name, "unit_price": product.unit_price, "max": product.max_quantity}
            for product in contract.products.all()
        ],
        "deliveries": [day for day in contract.deliveries.order_by("date").values_list("date", flat=True)],
        "referent_id": contract.referent_id,
    }


@transaction.atomic
def contract_publish(*, user, contract: Contract) -> Contract:
    """Draft → open for subscription (it needs a product and a delivery)."""
    contract = _locked_contract(contract)
    _require_manager(user, contract)
    if contract.status != Contract.Status.DRAFT:
        raise ValidationError({"status": [_("Seul un brouillon peut être publié.")]})
    if not contract.products.exists():
        raise ValidationError({"products": [_("Ajoutez au moins un produit avant de publier.")]})
    if not contract.deliveries.exists():
        raise ValidationError({"deliveries": [_("Le calendrier ne compte aucune distribution.")]})
    contract.status = Contract.Status.OPEN
    contract.save(update_fields=["status", "updated_at"])
    _evidence(kind="contract.published", payload=_contract_payload(contract), contract_id=contract.pk, actor=user)
    return contract


@transaction.atomic
def contract_close(*, user, contract: Contract) -> Contract:
    """Open → closed: no more sign-ups (pending subscriptions may still be signed)."""
    contract = _locked_contract(contract)
    _require_manager(user, contract)
    if contract.status != Contract.Status.OPEN:
        raise ValidationError({"status": [_("Seul un contrat ouvert peut être clos.")]})
    contract.status = Contract.Status.CLOSED
    contract.save(update_fields=["status", "updated_at"])
    _evidence(kind="contract.closed", payload={"title": contract.title}, contract_id=contract.pk, actor=user)
    return contract


# --------------------------------------------------------------------------------------------
# Subscriptions: quantities → items


def _upcoming_deliveries(contract: Contract, *, from_date: dt.date) -> list[Delivery]:
    """Deliveries still to come: not cancelled, not done, on or after `from_date`."""
    return list(
        contract.deliveries.filter(date__gte=from_date)
        .exclude(status__in=[Delivery.Status.CANCELLED, Delivery.Status.DONE])
        .order_by("date", "pk")
    )


def _clean_quantities(
    raw: Any, *, products: dict[int, ContractProduct], contract: Contract, field: str
) -> dict[ContractProduct, int]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValidationError({field: [_("Quantités attendues par produit.")]})
    cleaned: dict[ContractProduct, int] = {}
    for key, value in raw.items():
        if isinstance(key, ContractProduct):
            key = key.pk
        try:
            product_id = int(key)
        except (TypeError, ValueError):
            raise ValidationError({field: [_("Produit inconnu : %(id)s.") % {"id": str(key)[:40]}]}) from None
        product = products.get(product_id)
        if product is None:
            if ContractProduct.objects.filter(pk=product_id).exists():
                raise ValidationError(
                    {field: [_("Le produit %(id)s appartient à un autre contrat.") % {"id": product_id}]}
                )
            raise ValidationError({field: [_("Produit inconnu : %(id)s.") % {"id": product_id}]})
        quantity = _as_int(value, field=field, label=product.name)
        if quantity < 0:
            raise ValidationError({field: [_("« %(name)s » : quantité négative.") % {"name": product.name}]})
        if quantity > product.max_quantity:
            raise ValidationError(
                {
                    field: [
                        _("« %(name)s » : %(qty)s dépasse le maximum de %(max)s par distribution.")
                        % {"name": product.name, "qty": quantity, "max": product.max_quantity}
                    ]
                }
            )
        if quantity:
            cleaned[product] = quantity
    return cleaned


def _any_positive(quantities: Any) -> bool:
    """True when a {product: quantity} mapping asks for something (blank form rows ask for nothing)."""
    if not isinstance(quantities, Mapping):
        return bool(quantities)
    for value in quantities.values():
        try:
            if int(value) != 0:
                return True
        except (TypeError, ValueError):
            return True
    return False


def _plan_items(
    *,
    contract: Contract,
    deliveries: list[Delivery],
    pattern: str,
    quantities: Any,
    per_delivery: Any,
    allow_empty: bool = False,
) -> list[tuple[Delivery, ContractProduct, int]]:
    """(delivery, product, quantity) for each delivery of `deliveries` the pattern fills."""
    if pattern not in Subscription.Pattern.values:
        raise ValidationError({"pattern": [_("Rythme inconnu : « same », « alternate » ou « varying ».")]})
    products = {product.pk: product for product in contract.products.all()}
    plan: list[tuple[Delivery, ContractProduct, int]] = []
    if pattern == Subscription.Pattern.VARYING:
        if _any_positive(quantities):
            raise ValidationError({"quantities": [_("Rythme variable : indiquez les quantités par distribution.")]})
        if per_delivery is None or not isinstance(per_delivery, Mapping):
            raise ValidationError({"per_delivery": [_("Indiquez les quantités de chaque distribution.")]})
        upcoming = {delivery.pk: delivery for delivery in deliveries}
        for key, raw in per_delivery.items():
            if isinstance(key, Delivery):
                key = key.pk
            try:
                delivery_id = int(key)
            except (TypeError, ValueError):
                raise ValidationError(
                    {"per_delivery": [_("Distribution inconnue : %(id)s.") % {"id": str(key)[:40]}]}
                ) from None
            delivery = upcoming.get(delivery_id)
            if delivery is None:
                other = Delivery.objects.filter(pk=delivery_id).first()
                if other is None or other.contract_id != contract.pk:
                    message = _("Distribution inconnue dans ce contrat : %(id)s.") % {"id": delivery_id}
                else:
                    message = _("La distribution du %(date)s est passée, annulée ou hors de la période.") % {
                        "date": _short_date(other.date)
                    }
                raise ValidationError({"per_delivery": [message]})
            for product, quantity in _clean_quantities(
                raw, products=products, contract=contract, field="per_delivery"
            ).items():
                plan.append((delivery, product, quantity))
    else:
        if isinstance(per_delivery, Mapping) and any(_any_positive(row) for row in per_delivery.values()):
            raise ValidationError(
                {"per_delivery": [_("Les quantités par distribution sont réservées au rythme variable.")]}
            )
        chosen = _clean_quantities(quantities, products=products, contract=contract, field="quantities")
        step = 2 if pattern == Subscription.Pattern.ALTERNATE else 1
        for delivery in deliveries[::step]:
            for product, quantity in chosen.items():
                plan.append((delivery, product, quantity))
    if not plan and not allow_empty:
        field = "per_delivery" if pattern == Subscription.Pattern.VARYING else "quantities"
        if not deliveries:
            raise ValidationError({field: [_("Il ne reste aucune distribution à venir dans ce contrat.")]})
        raise ValidationError({field: [_("Choisissez au moins un produit.")]})
    return plan


def _write_items(subscription: Subscription, plan: list[tuple[Delivery, ContractProduct, int]]) -> None:
    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(
            subscription=subscription,
            delivery=delivery,
            product=product,
            quantity=quantity,
            unit_price=product.unit_price,
        )
        for delivery, product, quantity in plan
    )


def _plan_payload(plan: list[tuple[Delivery, ContractProduct, int]]) -> list[list[Any]]:
    return [
        [delivery.date, product.pk, product.name, quantity, product.unit_price] for delivery, product, quantity in plan
    ]


def _held_shares(contract: Contract) -> int:
    """Shares held: subscriptions that hold, except amendments whose replaced version still holds."""
    total = (
        contract.subscriptions.holding_shares()
        .exclude(previous__status__in=Subscription.HOLDING_STATUSES)
        .aggregate(total=Sum("shares"))["total"]
    )
    return total or 0


def free_shares(*, contract: Contract) -> int:
    """Shares still free in the contract's capacity (0 when full)."""
    return max(contract.capacity_shares - _held_shares(contract), 0)


def _clean_instalments(value: Any, contract: Contract) -> int:
    count = _as_int(value, field="instalments", label=_("Nombre de versements"))
    if not 1 <= count <= contract.instalments_max:
        raise ValidationError(
            {"instalments": [_("De 1 à %(max)s versements pour ce contrat.") % {"max": contract.instalments_max}]}
        )
    return count


def _clean_payment_method(value: Any, contract: Contract) -> str:
    offered = list(contract.payment_methods) or [PaymentMethod.CHEQUE]
    if value not in offered:
        labels = ", ".join(str(PaymentMethod(method).label) for method in offered)
        raise ValidationError({"payment_method": [_("Ce contrat se règle par : %(methods)s.") % {"methods": labels}]})
    return value


@transaction.atomic
def subscription_create(
    *,
    user,
    contract: Contract,
    quantities: dict[int, int] | None = None,
    pattern: str = "same",
    per_delivery: dict[int, dict[int, int]] | None = None,
    shares: int = 1,
    instalments: int = 1,
    payment_method: str = "cheque",
) -> Subscription:
    """The member's subscription: PENDING (to sign) when shares are free, WAITING otherwise."""
    if not _is_authenticated(user):
        raise PermissionDenied(_("Connectez-vous pour souscrire."))
    # Lock first: concurrent sign-ups for this contract count the capacity one after the other.
    contract = _locked_contract(contract)
    today = timezone.localdate()
    if contract.status != Contract.Status.OPEN:
        raise ValidationError({"contract": [_("Ce contrat n'est pas ouvert aux souscriptions.")]})
    if contract.subscription_deadline and today > contract.subscription_deadline:
        raise ValidationError(
            {
                "contract": [
                    _("Les souscriptions sont closes depuis le %(date)s.")
                    % {"date": _short_date(contract.subscription_deadline)}
                ]
            }
        )
    if contract.subscriptions.filter(member_id=user.pk, status__in=LIVE_STATUSES).exists():
        raise ValidationError({"contract": [_("Vous avez déjà une souscription à ce contrat.")]})
    shares = _as_int(shares, field="shares", label=_("Parts"))
    if not 1 <= shares <= contract.capacity_shares:
        raise ValidationError({"shares": [_("De 1 à %(max)s parts.") % {"max": contract.capacity_shares}]})
    instalments = _clean_instalments(instalments, contract)
    payment_method = _clean_payment_method(payment_method, contract)
    plan = _plan_items(
        contract=contract,
        deliveries=_upcoming_deliveries(contract, from_date=today),
        pattern=pattern,
        quantities=quantities,
        per_delivery=per_delivery,
    )

    waiting = _held_shares(contract) + shares > contract.capacity_shares
    subscription = Subscription.objects.create(
        contract=contract,
        member=user,
        member_name=str(user)[:200],
        status=Subscription.Status.WAITING if waiting else Subscription.Status.PENDING,
        waiting_since=timezone.now() if waiting else None,
        shares=shares,
        pattern=pattern,
        instalments=instalments,
        payment_method=payment_method,
    )
    _write_items(subscription, plan)
    _evidence(
        kind="subscription.created",
        payload={
            "status": subscription.status,
            "member": subscription.member_name,
            "shares": shares,
            "pattern": pattern,
            "instalments": instalments,
            "payment_method": payment_method,
            "items": _plan_payload(plan),
        },
        contract_id=contract.pk,
        subscription_id=subscription.pk,
        actor=user,
    )
    return subscription


def _current_quantities(subscription: Subscription) -> dict[int, int]:
    """The quantities of the first delivery the subscription takes something on."""
    items = list(subscription.items.select_related("delivery").order_by("delivery__date", "delivery_id"))
    if not items:
        return {}
    first = items[0].delivery_id
    return {item.product_id: item.quantity for item in items if item.delivery_id == first}


@transaction.atomic
def subscription_set_quantities(
    *,
    user,
    subscription: Subscription,
    quantities: dict[int, int] | None = None,
    pattern: str | None = None,
    per_delivery: dict[int, dict[int, int]] | None = None,
    instalments: int | None = None,
    payment_method: str | None = None,
) -> Subscription:
    """Change a subscription not yet signed (waiting or pending): quantities, rhythm, payment."""
    subscription = _locked_subscription(subscription)
    _require_member_or_manager(user, subscription)
    if subscription.is_frozen:
        raise ValidationError({"status": [_("Ce contrat est signé : il ne se modifie plus, faites un avenant.")]})
    if subscription.status == Subscription.Status.CANCELLED:
        raise ValidationError({"status": [_("Cette souscription est annulée.")]})
    if subscription.previous_id is not None:
        # Its items before the amendment's date copy the signed version: re-planning would lose them.
        raise ValidationError({"status": [_("Un avenant ne se modifie pas : annulez-le et faites-en un autre.")]})
    contract = subscription.contract
    if contract.status not in (Contract.Status.OPEN, Contract.Status.CLOSED):
        raise ValidationError({"contract": [_("Ce contrat n'accepte plus de modifications.")]})

    changed: dict[str, Any] = {}
    if instalments is not None:
        subscription.instalments = changed["instalments"] = _clean_instalments(instalments, contract)
    if payment_method is not None:
        subscription.payment_method = changed["payment_method"] = _clean_payment_method(payment_method, contract)
    if quantities is not None or pattern is not None or per_delivery is not None:
        new_pattern = pattern or subscription.pattern
        if new_pattern != Subscription.Pattern.VARYING and quantities is None:
            quantities = _current_quantities(subscription)
        plan = _plan_items(
            contract=contract,
            deliveries=_upcoming_deliveries(contract, from_date=timezone.localdate()),
            pattern=new_pattern,
            quantities=quantities,
            per_delivery=per_delivery,
        )
        subscription.items.all().delete()
        _write_items(subscription, plan)
        subscription.pattern = changed["pattern"] = new_pattern
        changed["items"] = _plan_payload(plan)
    if changed:
        subscription.save()
        _evidence(
            kind="subscription.updated",
            payload=changed,
            contract_id=contract.pk,
            subscription_id=subscription.pk,
            actor=user,
        )
    return subscription


@transaction.atomic
def subscription_cancel(*, user, subscription: Subscription, reason: str = "") -> Subscription:
    """Withdraw a subscription not fully signed (waiting, pending, signed by the member only)."""
    contract = _locked_contract(subscription.contract)
    subscription = _locked_subscription(subscription)
    _require_member_or_manager(user, subscription)
    reason = _text(reason, field="reason", max_length=500)
    if subscription.status == Subscription.Status.SIGNED:
        raise ValidationError(
            {"status": [_("Un contrat signé ne s'annule pas : faites un avenant qui arrête les livraisons.")]}
        )
    if subscription.status not in LIVE_STATUSES:
        raise ValidationError({"status": [_("Cette souscription n'est plus en cours.")]})
    held = subscription.status in Subscription.HOLDING_STATUSES
    previous_id = subscription.previous_id
    subscription.status = Subscription.Status.CANCELLED
    subscription.cancelled_at = timezone.now()
    update_fields = ["status", "cancelled_at", "updated_at"]
    if previous_id is not None:
        # An abandoned amendment: the signed version stays in force and may be amended again
        # (`previous` is one-to-one); the link is kept in the evidence trail.
        subscription.previous = None
        update_fields.append("previous")
    subscription.save(update_fields=update_fields)
    _evidence(
        kind="subscription.cancelled",
        payload={"reason": reason, "member": subscription.member_name, "amended_id": previous_id},
        contract_id=contract.pk,
        subscription_id=subscription.pk,
        actor=user,
    )
    if held:
        waiting_list_promote(contract=contract)
    return subscription


@transaction.atomic
def waiting_list_promote(*, contract: Contract) -> list[Subscription]:
    """Give free shares to the waiting list, in order; e-mails the members promoted."""
    contract = _locked_contract(contract)
    if contract.status != Contract.Status.OPEN:
        return []
    free = contract.capacity_shares - _held_shares(contract)
    promoted: list[Subscription] = []
    if free <= 0:
        return promoted
    today = timezone.localdate()
    for subscription in contract.subscriptions.waiting().select_for_update(of=("self",)).select_related("member"):
        if free <= 0:
            break
        if subscription.shares > free:
            continue
        free -= subscription.shares
        subscription.status = Subscription.Status.PENDING
        subscription.save(update_fields=["status", "updated_at"])
        # Deliveries that went by while waiting are not part of the subscription any more.
        subscription.items.filter(delivery__date__lt=today).delete()
        promoted.append(subscription)
        _evidence(
            kind="subscription.promoted",
            payload={"member": subscription.member_name, "shares": subscription.shares},
            contract_id=contract.pk,
            subscription_id=subscription.pk,
        )
        if subscription.member is not None:
            _mail_on_commit(
                _("[AMAP Atlas] Une place s'est libérée : %(title)s") % {"title": contract.title},
                _(
                    "Bonjour,\n\n"
                    "Une place s'est libérée dans le contrat « %(title)s » (%(amap)s, ferme %(farm)s) "
                    "pour lequel vous étiez en liste d'attente.\n"
                    "Votre souscription est maintenant à signer : %(url)s\n\n"
                    "Si vous ne souhaitez plus ce contrat, vous pouvez l'annuler depuis la même page.\n\n"
                    "L'équipe de l'AMAP"
                )
                % {
                    "title": contract.title,
                    "amap": contract.amap.name,
                    "farm": contract.farm.name,
                    "url": _site_url(_subscription_path(subscription)),
                },
                [subscription.member.email],
            )
    return promoted


@transaction.atomic
def subscription_amend(
    *,
    user,
    subscription: Subscription,
    effective_from: dt.date,
    quantities: dict[int, int] | None = None,
    pattern: str | None = None,
    per_delivery: dict[int, dict[int, int]] | None = None,
) -> Subscription:
    """A new version of a signed subscription: same items before `effective_from`, new ones from it.

    No quantity at all from that date stops the deliveries (the usual way to end a signed
    contract early). The new version is PENDING; it replaces the old one once signed.
    """
    contract = _locked_contract(subscription.contract)
    subscription = _locked_subscription(subscription)
    _require_member_or_manager(user, subscription)
    if subscription.status != Subscription.Status.SIGNED:
        raise ValidationError(
            {"status": [_("Seul un contrat signé par les deux parties peut faire l'objet d'un avenant.")]}
        )
    if Subscription.objects.filter(previous=subscription).exclude(status=Subscription.Status.CANCELLED).exists():
        raise ValidationError({"status": [_("Un avenant à ce contrat est déjà en cours.")]})
    effective_from = _as_date(effective_from, field="effective_from")
    today = timezone.localdate()
    if effective_from < today:
        raise ValidationError({"effective_from": [_("Un avenant ne change pas les distributions passées.")]})
    if not contract.season_start <= effective_from <= contract.season_end:
        raise ValidationError({"effective_from": [_("Cette date est en dehors de la saison.")]})
    upcoming = _upcoming_deliveries(contract, from_date=effective_from)
    if not upcoming:
        raise ValidationError({"effective_from": [_("Il n'y a plus de distribution à partir de cette date.")]})
    new_pattern = pattern or subscription.pattern
    plan = _plan_items(
        contract=contract,
        deliveries=upcoming,
        pattern=new_pattern,
        quantities=quantities
        if quantities is not None
        else ({} if new_pattern == Subscription.Pattern.VARYING else None),
        per_delivery=per_delivery,
        allow_empty=True,
    )
    amendment = Subscription.objects.create(
        contract=contract,
        member=subscription.member,
        member_name=subscription.member_name,
        status=Subscription.Status.PENDING,
        shares=subscription.shares,
        pattern=new_pattern,
        instalments=subscription.instalments,
        payment_method=subscription.payment_method,
        version=subscription.version + 1,
        previous=subscription,
    )
    replaced = {delivery.pk for delivery in upcoming}
    kept = [
        SubscriptionItem(
            subscription=amendment,
            delivery_id=item.delivery_id,
            product_id=item.product_id,
            quantity=item.quantity,
            unit_price=item.unit_price,
        )
        for item in subscription.items.all()
        if item.delivery_id not in replaced
    ]
    SubscriptionItem.objects.bulk_create(kept)
    _write_items(amendment, plan)
    _evidence(
        kind="subscription.amended",
        payload={
            "replaces": subscription.pk,
            "version": amendment.version,
            "effective_from": effective_from,
            "pattern": new_pattern,
            "items_from": _plan_payload(plan),
        },
        contract_id=contract.pk,
        subscription_id=amendment.pk,
        actor=user,
    )
    return amendment


# --------------------------------------------------------------------------------------------
# Absences


@transaction.atomic
def absence_declare(
    *, user, subscription: Subscription, delivery: Delivery, substitute_name: str = "", note: str = ""
) -> Absence:
    """The member will not come to this delivery; someone may collect their share (updates if declared)."""
    _require_member_or_manager(user, subscription)
    substitute_name = _text(substitute_name, field="substitute_name", max_length=200)
    note = _text(note, field="note", max_length=300)
    if delivery.contract_id != subscription.contract_id:
        raise ValidationError({"delivery": [_("Cette distribution n'est pas celle de ce contrat.")]})
    if subscription.status not in Subscription.HOLDING_STATUSES:
        raise ValidationError({"status": [_("Cette souscription n'est pas en cours.")]})
    if delivery.status in (Delivery.Status.CANCELLED, Delivery.Status.DONE) or delivery.date < timezone.localdate():
        raise ValidationError({"delivery": [_("Cette distribution est passée ou annulée.")]})
    if not subscription.items.filter(delivery=delivery).exists():
        raise ValidationError({"delivery": [_("Vous ne recevez rien à cette distribution.")]})
    absence, _created = Absence.objects.update_or_create(
        subscription=subscription, delivery=delivery, defaults={"substitute_name": substitute_name, "note": note}
    )
    return absence


@transaction.atomic
def absence_cancel(*, user, absence: Absence) -> None:
    """The member will come after all."""
    _require_member_or_manager(user, absence.subscription)
    if absence.delivery.date < timezone.localdate():
        raise ValidationError({"delivery": [_("Cette distribution est passée.")]})
    absence.delete()


# --------------------------------------------------------------------------------------------
# Deliveries


def _signed_member_emails(delivery: Delivery) -> list[str]:
    return list(
        Subscription.objects.filter(status=Subscription.Status.SIGNED, items__delivery=delivery, member__isnull=False)
        .values_list("member__email", flat=True)
        .distinct()
    )


@transaction.atomic
def delivery_mark(
    *, user, delivery: Delivery, status: str, new_date: dt.date | None = None, note: str = ""
) -> Delivery:
    """Done, postponed to `new_date`, or cancelled for a production hazard (members are e-mailed)."""
    delivery = (
        Delivery.objects.select_for_update().select_related("contract__amap", "contract__farm").get(pk=delivery.pk)
    )
    contract = delivery.contract
    if not (permissions.can_manage_contract(user, contract) or permissions.can_farm_contract(user, contract)):
        raise PermissionDenied(
            _("Seuls les référents, les administrateurs de l'AMAP et la ferme gèrent les distributions.")
        )
    note = _text(note, field="note", max_length=300)
    marks = (Delivery.Status.DONE, Delivery.Status.POSTPONED, Delivery.Status.CANCELLED)
    if status not in marks:
        raise ValidationError({"status": [_("Statut attendu : effectuée, reportée ou annulée.")]})
    if contract.status not in (Contract.Status.OPEN, Contract.Status.CLOSED):
        raise ValidationError(
            {"status": [_("Les distributions d'un brouillon ou d'un contrat archivé ne se marquent pas.")]}
        )
    if delivery.status in (Delivery.Status.DONE, Delivery.Status.CANCELLED):
        raise ValidationError(
            {"status": [_("Cette distribution est déjà %(status)s.") % {"status": delivery.get_status_display()}]}
        )
    today = timezone.localdate()
    old_date = delivery.date

    if status == Delivery.Status.DONE:
        if delivery.date > today:
            raise ValidationError({"status": [_("Cette distribution n'a pas encore eu lieu.")]})
    elif status == Delivery.Status.POSTPONED:
        if new_date in (None, ""):
            raise ValidationError({"new_date": [_("Indiquez la nouvelle date.")]})
        new_date = _as_date(new_date, field="new_date")
        if new_date == delivery.date:
            raise ValidationError({"new_date": [_("C'est déjà la date de cette distribution.")]})
        if new_date < today:
            raise ValidationError({"new_date": [_("La nouvelle date est passée.")]})
        last = contract.season_end + dt.timedelta(days=POSTPONE_GRACE_DAYS)
        if not contract.season_start <= new_date <= last:
            raise ValidationError(
                {
                    "new_date": [
                        _("Choisissez une date entre le début de la saison et le %(date)s.")
                        % {"date": _short_date(last)}
                    ]
                }
            )
        collision = (
            contract.deliveries.filter(date=new_date).exclude(pk=delivery.pk).exclude(status=Delivery.Status.CANCELLED)
        )
        if collision.exists():
            raise ValidationError(
                {"new_date": [_("Ce contrat a déjà une distribution le %(date)s.") % {"date": _short_date(new_date)}]}
            )
        delivery.date = new_date

    delivery.status = status
    delivery.note = note
    delivery.save(update_fields=["status", "date", "note", "updated_at"])
    _evidence(
        kind="delivery.marked",
        payload={
            "status": status,
            "scheduled_date": delivery.scheduled_date,
            "date": delivery.date,
            "old_date": old_date,
            "note": note,
        },
        contract_id=contract.pk,
        actor=user,
    )

    if status == Delivery.Status.POSTPONED:
        subject = _("[AMAP Atlas] Distribution reportée : %(title)s") % {"title": contract.title}
        body = _(
            "Bonjour,\n\n"
            "La distribution du %(old)s du contrat « %(title)s » (%(amap)s, ferme %(farm)s) "
            "est reportée au %(new)s.\n%(note)s\n"
            "Pensez à prévenir votre remplaçant·e si vous en aviez un·e.\n\n"
            "L'équipe de l'AMAP"
        )
        context = {"old": _long_date(old_date), "new": _long_date(delivery.date)}
    elif status == Delivery.Status.CANCELLED:
        subject = _("[AMAP Atlas] Distribution annulée : %(title)s") % {"title": contract.title}
        body = _(
            "Bonjour,\n\n"
            "La distribution du %(old)s du contrat « %(title)s » (%(amap)s, ferme %(farm)s) "
            "est annulée à cause d'un aléa de production.\n%(note)s\n"
            "Elle ne vous sera pas facturée.\n\n"
            "L'équipe de l'AMAP"
        )
        context = {"old": _long_date(old_date)}
    else:
        return delivery
    context.update(
        {
            "title": contract.title,
            "amap": contract.amap.name,
            "farm": contract.farm.name,
            "note": (_("Motif : %(note)s") % {"note": note} + "\n") if note else "",
        }
    )
    _mail_on_commit(subject, body % context, _signed_member_emails(delivery))
    return delivery
