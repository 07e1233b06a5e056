"""A member's rights over their data: a copy of everything (JSON or CSV) and erasure.

- **Access and portability** (RGPD art. 15 and 20): `member_data_export()` gives the account,
  every subscription with its quantities per delivery, totals and instalments, the signatures'
  metadata (the member's own IP address and browser, not the farmer's), absences, and what
  other apps registered in `accounts.privacy` (alerts, adhésions, answers to events, shifts);
  `member_data_export_csv()` gives the same as a zip of CSV files.
- **Erasure** (RGPD art. 17): `member_erasure()` deletes what nothing requires to keep and
  anonymises the account. Exceptions, each stated in the report:
  - a contract signed by both parties is a supporting document the farm keeps ten years
    (Code de commerce, art. L123-22; RGPD art. 17.3.b): it is kept, and detached from the
    member at once when its season has ended (« Adhérent·e n°<id> »; the signed PDF remains the
    farm's legal copy);
  - while its season runs, a signed contract is still being performed (RGPD art. 6.1.b):
    deliveries, distribution sheets and payments need the member's name, which stays on the
    subscription until the season ends, then goes (see `contracts.retention`);
  - a legal hold (dispute) keeps what it covers untouched (RGPD art. 17.3.e).
  Subscriptions never signed by both parties (waiting list, to sign, signed by the member only,
  cancelled) bind nobody: they are cancelled and deleted, and the places they held go to the
  waiting list. People who still run an AMAP, a farm or a network, and staff, hand their role
  over first: erasing them would leave an organisation without its manager.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.privacy import personal_data
from directory.csv_export import csv_writer

from .evidence import evidence_append
from .models import Absence, Signature, Subscription, SubscriptionItem
from .retention import (
    CONCLUDED,
    farmer_retention_end,
    is_anonymised,
    subscriptions_detach,
    subscriptions_purge,
    user_anonymise,
)
from .selectors import subscription_totals
from .services import waiting_list_promote

EXPORT_FORMAT = "amap-atlas/donnees-personnelles"
EXPORT_VERSION = 1
ERASURE_EVENT_KIND = "privacy.erasure"


def _json(value: Any) -> Any:
    """Dates as ISO 8601, amounts as strings with two decimals: plain JSON, exact figures."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def _subscriptions_of(user):
    return (
        Subscription.objects.filter(member=user)
        .select_related("contract__amap", "contract__farm", "document")
        .order_by("contract__season_start", "contract_id", "version", "pk")
    )


def _contract_data(contract) -> dict[str, Any]:
    return {
        "id": contract.pk,
        "title": contract.title,
        "amap": contract.amap.name,
        "farm": contract.farm.name,
        "season_start": _json(contract.season_start),
        "season_end": _json(contract.season_end),
        "delivery_place": contract.delivery_place,
    }


def _items_data(subscription) -> list[dict[str, Any]]:
    items = (
        SubscriptionItem.objects.filter(subscription=subscription)
        .select_related("delivery", "product")
        .order_by("delivery__date", "product__position", "product_id")
    )
    return [
        {
            "date": _json(item.delivery.date),
            "scheduled_date": _json(item.delivery.scheduled_date),
            "delivery_status": item.delivery.status,
            "product": item.product.name,
            "quantity": item.quantity,
            "unit_price": _json(item.unit_price),
            "amount": _json(item.unit_price * item.quantity),
        }
        for item in items
    ]


def _totals_data(subscription) -> dict[str, Any]:
    totals = subscription_totals(subscription=subscription)
    return {
        "total": _json(totals.total),
        "deliveries": totals.deliveries,
        "per_product": [
            {"product": line.product.name, "quantity": line.quantity, "amount": _json(line.amount)}
            for line in totals.per_product
        ],
        "instalments": [
            {"due_date": _json(line.due_date), "amount": _json(line.amount)} for line in totals.instalments
        ],
    }


def _signature_data(signature: Signature, *, own: bool) -> dict[str, Any]:
    data = {
        "role": signature.role,
        "signer_name": signature.signer_name,
        "signed_at": _json(signature.signed_at),
        "document_sha256": signature.document_sha256,
        "charter_version": signature.charter.version,
        "consent_version": signature.consent_version,
        "consent_text": signature.consent_text,
    }
    if own:  # the other party's IP address and browser are their personal data, not the member's
        data["ip_address"] = signature.ip_address
        data["user_agent"] = signature.user_agent
    return data


def _registered_data(user) -> dict[str, Any]:
    """What other apps hold about the person (alerts…), under the keys they registered."""
    return {entry.name: entry.export(user) for entry in personal_data() if entry.export is not None}


def member_data_summary(*, user) -> list[tuple[str, list[str]]]:
    """What other apps registered to show on « Mes données » (answers to events, shifts…): a heading
    and its lines, for each that holds something."""
    held = [(str(entry.summary.title), entry.summary.lines(user)) for entry in personal_data() if entry.summary]
    return [(title, lines) for title, lines in held if lines]


def member_data_export(*, user) -> dict[str, Any]:
    """Everything the platform holds about this person's account and contracts, JSON-serialisable."""
    subscriptions = []
    for subscription in _subscriptions_of(user):
        signatures = subscription.signatures.select_related("charter").order_by("signed_at", "pk")
        absences = (
            Absence.objects.filter(subscription=subscription).select_related("delivery").order_by("delivery__date")
        )
        document = getattr(subscription, "document", None)
        subscriptions.append(
            {
                "id": subscription.pk,
                "version": subscription.version,
                "previous_id": subscription.previous_id,
                "status": subscription.status,
                "status_label": str(subscription.get_status_display()),
                "contract": _contract_data(subscription.contract),
                "member_name": subscription.member_name,
                "shares": subscription.shares,
                "pattern": subscription.pattern,
                "instalments": subscription.instalments,
                "payment_method": subscription.payment_method,
                "created_at": _json(subscription.created_at),
                "waiting_since": _json(subscription.waiting_since),
                "signed_at": _json(subscription.signed_at),
                "cancelled_at": _json(subscription.cancelled_at),
                "items": _items_data(subscription),
                "totals": _totals_data(subscription),
                "signatures": [
                    _signature_data(signature, own=signature.role == Signature.Role.MEMBER) for signature in signatures
                ],
                "document": (
                    {"sha256": document.sha256, "created_at": _json(document.created_at)} if document else None
                ),
                "absences": [
                    {
                        "date": _json(absence.delivery.date),
                        "substitute_name": absence.substitute_name,
                        "note": absence.note,
                        "created_at": _json(absence.created_at),
                    }
                    for absence in absences
                ],
            }
        )
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": _json(timezone.now()),
        "account": {
            "id": user.pk,
            "email": user.email,
            "display_name": user.display_name,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": _json(user.date_joined),
            "last_login": _json(user.last_login),
        },
        "subscriptions": subscriptions,
        **_registered_data(user),
    }


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")  # event titles, places: written by others
    writer.writerow(header)
    writer.writerows([["" if value is None else value for value in row] for row in rows])
    # BOM: spreadsheets then read the accents right.
    return out.getvalue().encode("utf-8-sig")


def member_data_export_csv(*, user) -> bytes:
    """The same data as `member_data_export`, as a zip of CSV files (one per table)."""
    data = member_data_export(user=user)
    account = data["account"]
    files: dict[str, bytes] = {
        "compte.csv": _csv(list(account), [list(account.values())]),
    }
    subs = data["subscriptions"]
    files["souscriptions.csv"] = _csv(
        [
            "souscription",
            "version",
            "statut",
            "contrat",
            "amap",
            "ferme",
            "debut_saison",
            "fin_saison",
            "parts",
            "versements",
            "paiement",
            "total_eur",
            "distributions",
            "signe_le",
            "annule_le",
        ],
        [
            [
                s["id"],
                s["version"],
                s["status_label"],
                s["contract"]["title"],
                s["contract"]["amap"],
                s["contract"]["farm"],
                s["contract"]["season_start"],
                s["contract"]["season_end"],
                s["shares"],
                s["instalments"],
                s["payment_method"],
                s["totals"]["total"],
                s["totals"]["deliveries"],
                s["signed_at"],
                s["cancelled_at"],
            ]
            for s in subs
        ],
    )
    files["quantites.csv"] = _csv(
        [
            "souscription",
            "contrat",
            "date",
            "statut_distribution",
            "produit",
            "quantite",
            "prix_unitaire_eur",
            "montant_eur",
        ],
        [
            [
                s["id"],
                s["contract"]["title"],
                i["date"],
                i["delivery_status"],
                i["product"],
                i["quantity"],
                i["unit_price"],
                i["amount"],
            ]
            for s in subs
            for i in s["items"]
        ],
    )
    files["echeancier.csv"] = _csv(
        ["souscription", "contrat", "echeance", "montant_eur"],
        [
            [s["id"], s["contract"]["title"], i["due_date"], i["amount"]]
            for s in subs
            for i in s["totals"]["instalments"]
        ],
    )
    files["signatures.csv"] = _csv(
        ["souscription", "qualite", "signataire", "signe_le", "empreinte_pdf", "charte", "adresse_ip", "navigateur"],
        [
            [
                s["id"],
                g["role"],
                g["signer_name"],
                g["signed_at"],
                g["document_sha256"],
                g["charter_version"],
                g.get("ip_address"),
                g.get("user_agent"),
            ]
            for s in subs
            for g in s["signatures"]
        ],
    )
    files["absences.csv"] = _csv(
        ["souscription", "contrat", "date", "remplacant", "remarque"],
        [
            [s["id"], s["contract"]["title"], a["date"], a["substitute_name"], a["note"]]
            for s in subs
            for a in s["absences"]
        ],
    )
    for entry in personal_data():
        if entry.csv is not None and entry.name in data:
            files[entry.csv.filename] = _csv(list(entry.csv.header), [entry.csv.row(row) for row in data[entry.name]])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            # Fixed timestamps: the same data gives the same archive.
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Erasure


@dataclass(frozen=True)
class ErasureLine:
    what: str  # French, for the page: « Souscription « Légumes 2027 » (AMAP du Marché) »
    reason: str  # why it was deleted or why it is kept


@dataclass
class ErasureReport:
    deleted: list[ErasureLine] = field(default_factory=list)
    kept: list[ErasureLine] = field(default_factory=list)
    account_anonymised: bool = False
    committed: bool = False


def _roles_blocking_erasure(user) -> list[str]:
    reasons = []
    if user.is_staff or user.is_superuser:
        reasons.append(_("Votre compte fait partie de l'équipe de la plateforme."))
    for role in user.amap_roles.select_related("amap").order_by("amap__name"):
        reasons.append(_("Vous faites partie de l'équipe de l'AMAP « %(name)s ».") % {"name": role.amap.name})
    for farm in user.managed_farms.order_by("name"):
        reasons.append(_("Vous gérez la ferme « %(name)s ».") % {"name": farm.name})
    for network in user.administered_networks.order_by("name"):
        reasons.append(_("Vous administrez le réseau « %(name)s ».") % {"name": network.name})
    return reasons


def _describe(subscription: Subscription) -> str:
    contract = subscription.contract
    return _("Contrat « %(title)s » (%(amap)s, ferme %(farm)s, %(start)s – %(end)s)") % {
        "title": contract.title,
        "amap": contract.amap.name,
        "farm": contract.farm.name,
        "start": f"{contract.season_start:%d/%m/%Y}",
        "end": f"{contract.season_end:%d/%m/%Y}",
    }


def _held(subscription: Subscription) -> bool:
    """A legal hold on the subscription, its contract, or any version of it."""
    if subscription.contract.legal_hold:
        return True
    node = subscription
    while node is not None:
        if node.legal_hold:
            return True
        node = node.previous
    newer = Subscription.objects.filter(previous=subscription).first()
    while newer is not None:
        if newer.legal_hold:
            return True
        newer = Subscription.objects.filter(previous=newer).first()
    return False


@transaction.atomic
def member_erasure(*, user, commit: bool = True) -> ErasureReport:
    """Erase a member's data, keeping (detached where possible) what the law requires to keep.

    `commit=False` computes the same report and rolls everything back: the confirmation page
    shows it before the member confirms. Raises `ValidationError` when the account still holds
    a role or has already been anonymised.
    """
    # A fresh, locked copy: the caller's object (often `request.user`) is left as it was, even
    # when the preview rolls back. After a real erasure the caller logs the person out.
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if is_anonymised(user):
        raise ValidationError({"user": [_("Ce compte a déjà été anonymisé.")]})
    blocking = _roles_blocking_erasure(user)
    if blocking:
        raise ValidationError(
            {"user": [*blocking, _("Transmettez ces rôles avant de demander l'effacement de vos données.")]}
        )

    now = timezone.now()
    today = timezone.localdate(now)
    report = ErasureReport()
    concluded = set(Subscription.objects.filter(member=user).filter(CONCLUDED).values_list("pk", flat=True))
    to_delete: list[Subscription] = []
    to_detach: list[int] = []
    subscriptions = list(_subscriptions_of(user).select_related("previous"))
    for subscription in subscriptions:
        what = _describe(subscription)
        if _held(subscription):
            report.kept.append(
                ErasureLine(what, _("Conservé tel quel : ce contrat fait l'objet d'une conservation pour litige."))
            )
        elif subscription.pk not in concluded:
            to_delete.append(subscription)
            report.deleted.append(
                ErasureLine(
                    what,
                    _("Supprimé : souscription « %(status)s », jamais signée par les deux parties.")
                    % {"status": subscription.get_status_display()},
                )
            )
        elif subscription.contract.season_end < today:
            to_detach.append(subscription.pk)
            report.kept.append(
                ErasureLine(
                    what,
                    _(
                        "Conservé pour la ferme jusqu'au %(date)s (obligation comptable de dix ans), "
                        "sans votre nom : le contrat signé (PDF) reste la copie légale de la ferme."
                    )
                    % {"date": f"{farmer_retention_end(subscription.contract.season_end):%d/%m/%Y}"},
                )
            )
        else:
            report.kept.append(
                ErasureLine(
                    what,
                    _(
                        "Conservé avec votre nom jusqu'à la fin de la saison (%(end)s) : le contrat est en cours "
                        "(distributions, paiements). Il sera ensuite détaché de votre identité et gardé par la "
                        "ferme jusqu'au %(date)s."
                    )
                    % {
                        "end": f"{subscription.contract.season_end:%d/%m/%Y}",
                        "date": f"{farmer_retention_end(subscription.contract.season_end):%d/%m/%Y}",
                    },
                )
            )

    # A deleted version may still be the `previous` of a kept one: then it is kept too.
    kept_ids = {s.pk for s in subscriptions} - {s.pk for s in to_delete}
    referenced = set(
        Subscription.objects.filter(pk__in=kept_ids, previous__isnull=False).values_list("previous_id", flat=True)
    )
    to_delete = [s for s in to_delete if s.pk not in referenced]

    freed_contracts = {s.contract for s in to_delete if s.status in Subscription.HOLDING_STATUSES}
    subscriptions_purge(ids=[s.pk for s in to_delete], reason="effacement demandé par l'adhérent·e")
    subscriptions_detach(ids=to_detach, now=now)
    for contract in sorted(freed_contracts, key=lambda c: c.pk):
        waiting_list_promote(contract=contract)

    # Other apps' data (alerts, messages): counted before the account is anonymised.
    for entry in personal_data():
        if entry.count is None or entry.erasure_note is None:
            continue
        count = entry.count(user)
        if count:
            note = entry.erasure_note(count)
            (report.kept if note.kept else report.deleted).append(ErasureLine(note.what, note.reason))
    user_anonymise(user=user)
    report.account_anonymised = True
    report.deleted.append(
        ErasureLine(
            _("Votre compte (adresse e-mail, nom, mot de passe)"),
            _("Anonymisé : vous ne pourrez plus vous connecter."),
        )
    )
    evidence_append(
        kind=ERASURE_EVENT_KIND,
        payload={"deleted_subscriptions": len(to_delete), "detached_subscriptions": len(to_detach)},
        actor_id=user.pk,
    )
    if commit:
        report.committed = True
    else:
        transaction.set_rollback(True)
    return report
