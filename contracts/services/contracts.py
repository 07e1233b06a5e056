"""Contract templates: create and update a draft (products, calendar exceptions, generated
deliveries), publish, close; once open, only the texts, more shares and the référent change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import permissions
from directory.models import Farm, ProductCategory

from .. import calendars
from ..models import (
    MAX_PRODUCT_QUANTITY,
    AcademicBreak,
    AcademicCalendar,
    CalendarException,
    Contract,
    ContractProduct,
    Delivery,
    PaymentMethod,
)
from .common import (
    _as_date,
    _as_int,
    _as_time,
    _evidence,
    _locked_contract,
    _require_manager,
    _short_date,
    _text,
)
from .subscriptions import waiting_list_promote

_DRAFT_FIELDS = set(Contract.EDITABLE_FIELDS)
_OPEN_FIELDS = set(Contract.OPEN_EDITABLE_FIELDS)


# --------------------------------------------------------------------------------------------
# Contract templates


def _parse_contract_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The values of `fields` as the model's types (others untouched); the rules are the model's."""
    parsed: dict[str, Any] = {}
    for name in ("title", "description", "commitments", "delivery_place", "payment_payee"):
        if name in fields:
            parsed[name] = "" if fields[name] is None else str(fields[name]).strip()
    for name in ("season_start", "season_end"):
        if name in fields:
            parsed[name] = _as_date(fields[name], field=name)
    if "subscription_deadline" in fields:
        value = fields["subscription_deadline"]
        parsed["subscription_deadline"] = (
            None if value in (None, "") else _as_date(value, field="subscription_deadline")
        )
    for name, label in (
        ("weekday", _("Jour de distribution")),
        ("capacity_shares", _("Nombre de parts")),
        ("instalments_max", _("Nombre de versements")),
    ):
        if name in fields:
            parsed[name] = _as_int(fields[name], field=name, label=label)
    if "frequency" in fields:
        parsed["frequency"] = fields["frequency"]
    if "exclude_public_holidays" in fields:
        parsed["exclude_public_holidays"] = bool(fields["exclude_public_holidays"])
    if "payment_methods" in fields:
        methods = fields["payment_methods"]
        if isinstance(methods, str):
            methods = [methods]
        parsed["payment_methods"] = list(dict.fromkeys(methods or []))
    for name in ("delivery_start", "delivery_end"):
        if name in fields:
            parsed[name] = _as_time(fields[name], field=name)
    if "academic_calendar" in fields:
        academic = fields["academic_calendar"]
        if academic is not None and not isinstance(academic, AcademicCalendar):
            academic = AcademicCalendar.objects.filter(
                pk=_as_int(academic, field="academic_calendar", label="id")
            ).first()
            if academic is None:
                raise ValidationError({"academic_calendar": [_("Calendrier universitaire inconnu.")]})
        parsed["academic_calendar"] = academic
    if "partnership" in fields:
        parsed["partnership"] = fields["partnership"]
    if "farm" in fields:
        if not isinstance(fields["farm"], Farm):
            raise ValidationError({"farm": [_("Choisissez une ferme.")]})
        parsed["farm"] = fields["farm"]
    if "referent" in fields and fields["referent"] is not None:
        parsed["referent"] = fields["referent"]
    return parsed


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
    contract = Contract(amap=amap, referent=referent or user, created_by=user, **_parse_contract_fields(fields))
    if "payment_methods" not in options:
        contract.payment_methods = [PaymentMethod.CHEQUE]
    contract.full_clean()
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

    cleaned = _parse_contract_fields(fields)
    old_capacity = contract.capacity_shares
    if contract.status != Contract.Status.DRAFT and cleaned.get("capacity_shares", old_capacity) < old_capacity:
        raise ValidationError(
            {"capacity_shares": [_("Le nombre de parts ne peut qu'augmenter une fois le contrat ouvert.")]}
        )
    for name, value in cleaned.items():
        setattr(contract, name, value)
    contract.full_clean()
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


@transaction.atomic
def academic_calendar_create(
    *,
    user,
    amap,
    name: str,
    year_start: int,
    starts_on: dt.date,
    ends_on: dt.date,
    breaks: list[tuple[dt.date, dt.date, str]],
) -> AcademicCalendar:
    """A university year of the AMAP's own (its team, no admin needed), with its breaks."""
    if not permissions.can_act_for_amap(user, amap):
        raise PermissionDenied(_("Seule l'équipe de l'AMAP ajoute ses calendriers universitaires."))
    calendar = AcademicCalendar(amap=amap, name=name, year_start=year_start, starts_on=starts_on, ends_on=ends_on)
    calendar.full_clean()
    calendar.save()
    rows = [
        AcademicBreak(calendar=calendar, starts_on=first, ends_on=last, label=label) for first, last, label in breaks
    ]
    for row in rows:
        row.full_clean(exclude=["calendar"])
    AcademicBreak.objects.bulk_create(rows)
    return calendar
