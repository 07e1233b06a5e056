"""What members holds about a person, declared to « Mes données » (`accounts.privacy`).

Memberships and adhésions are exported. On erasure the memberships go (the AMAP no longer
holds the person's name, e-mail or phone); paid adhésions are accounting records of the
association: kept, without the name (the membership row goes, the amount and date stay under
the season). Messages the person wrote keep their text, signed by the anonymised account.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from accounts.privacy import ErasureNote, PersonalDataCsv, register_personal_data

from .models import Adhesion, Membership, MessageDelivery


def memberships_export(user) -> list[dict[str, Any]]:
    memberships = Membership.objects.filter(user=user).select_related("amap").order_by("requested_at", "pk")
    adhesions: dict[int, list[dict]] = {}
    for adhesion in Adhesion.objects.filter(membership__user=user).select_related("season").order_by("pk"):
        adhesions.setdefault(adhesion.membership_id, []).append(
            {
                "season": adhesion.season.label,
                "amount": str(adhesion.amount),
                "payment_mode": adhesion.payment_mode,
                "status": adhesion.status,
                "paid_at": adhesion.paid_at.isoformat() if adhesion.paid_at else None,
            }
        )
    return [
        {
            "amap": m.amap.name,
            "status": m.status,
            "email": m.email,
            "first_name": m.first_name,
            "last_name": m.last_name,
            "phone": m.phone,
            "news_opt_out": m.news_opt_out,
            "requested_at": m.requested_at.isoformat(),
            "joined_at": m.joined_at.isoformat() if m.joined_at else None,
            "adhesions": adhesions.get(m.pk, []),
        }
        for m in memberships
    ]


def memberships_count(user) -> int:
    return Membership.objects.filter(user=user).count()


def memberships_note(count: int) -> ErasureNote:
    return ErasureNote(
        what=_("%(n)s adhésion(s) à des AMAP (nom, e-mail, téléphone)") % {"n": count},
        reason=_(
            "supprimées ; les montants des adhésions réglées restent dans la comptabilité de l'AMAP, sans votre nom"
        ),
    )


@transaction.atomic
def memberships_erase(user) -> None:
    memberships = Membership.objects.filter(user=user)
    MessageDelivery.objects.filter(user=user).update(email="anonyme@invalid", name="", user=None)
    # A paid adhésion is an accounting record: it stays, tied to an anonymous membership.
    for membership in memberships:
        membership.user = None
        membership.email = f"anonyme-{membership.pk}@invalid"
        membership.first_name = membership.last_name = membership.phone = membership.note = ""
        membership.status = Membership.Status.LEFT
        membership.save()
    Membership.objects.filter(pk__in=memberships.values("pk"), adhesions__isnull=True).delete()


def register() -> None:
    """Called from `MembersConfig.ready()`."""
    register_personal_data(
        "amap_memberships",
        export=memberships_export,
        csv=PersonalDataCsv(
            "adhesions_amap.csv",
            ["amap", "statut", "email", "prenom", "nom", "telephone", "membre_depuis", "adhesions"],
            lambda m: [
                m["amap"],
                m["status"],
                m["email"],
                m["first_name"],
                m["last_name"],
                m["phone"],
                m["joined_at"],
                "; ".join(f"{a['season']} {a['amount']} € {a['status']}" for a in m["adhesions"]),
            ],
        ),
        count=memberships_count,
        erasure_note=memberships_note,
        erase=memberships_erase,
    )
