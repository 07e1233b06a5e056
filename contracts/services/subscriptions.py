"""Subscriptions: quantities laid out as items over the deliveries to come, capacity and the
waiting list, changes before signature, cancellation, amendments of signed contracts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from ..gates import membership_refusals
from ..models import (
    Contract,
    ContractProduct,
    Delivery,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
)
from .common import (
    LIVE_STATUSES,
    _as_date,
    _as_int,
    _evidence,
    _is_authenticated,
    _locked_contract,
    _locked_subscription,
    _mail_on_commit,
    _require_member_or_manager,
    _short_date,
    _site_url,
    _subscription_path,
    _text,
)

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
    if refusals := membership_refusals(user=user, contract=contract):
        raise ValidationError({"contract": refusals})
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
