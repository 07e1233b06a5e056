"""Importing the members an AMAP already has from a CSV/XLSX sheet: all rows or none, each fault by row and column."""

from __future__ import annotations

import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.importing.readers import ImportFileError, read_table
from directory.importing.report import Issue
from directory.models import Amap

from .models import Membership
from .selectors import require_team


def _header_key(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("-", "").replace("_", " ")


COLUMNS = {
    "email": {"email", "e mail", "mail", "courriel", "adresse email", "adresse mail"},
    "first_name": {"prenom", "first name", "firstname"},
    "last_name": {"nom", "nom de famille", "last name", "lastname"},
    "phone": {"telephone", "tel", "tel.", "portable", "phone"},
    "status": {"statut", "status"},
}
STATUS_WORDS = {
    "": Membership.Status.ACTIVE,
    "membre": Membership.Status.ACTIVE,
    "adherent": Membership.Status.ACTIVE,
    "adherente": Membership.Status.ACTIVE,
    "liste d'attente": Membership.Status.WAITING,
    "attente": Membership.Status.WAITING,
}


@dataclass
class MemberImportReport:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    committed: bool = False
    errors: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def members_import(*, actor, amap: Amap, filename: str, content: bytes) -> MemberImportReport:
    """Import members from a CSV or XLSX file: all rows or none, with the row and column of each error.

    Re-importing the same file creates no duplicate (rows are matched on the e-mail).
    """
    require_team(actor, amap)
    report = MemberImportReport()
    suffix = Path(filename).suffix.lower()
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(content)
        handle.flush()
        try:
            table = read_table(Path(handle.name))
        except ImportFileError as error:
            report.errors.append(Issue(error.row, "", str(error)))
            return report
    if suffix not in {".csv", ".tsv", ".txt", ".xlsx", ".xlsm"}:
        report.errors.append(Issue(None, "", _("Envoyez un fichier .csv ou .xlsx.")))
        return report
    columns: dict[str, str] = {}
    for header in table.headers:
        for name, aliases in COLUMNS.items():
            if _header_key(header) in aliases and name not in columns:
                columns[name] = header
    if "email" not in columns:
        report.errors.append(
            Issue(1, "e-mail", _("colonne manquante (attendu : « e-mail », « prénom », « nom », « téléphone »)"))
        )
        return report
    report.rows_read = len(table.rows)
    seen: dict[str, int] = {}
    planned = []
    for number, row in table.rows:
        values = {name: row.get(header, "").strip() for name, header in columns.items()}
        email = values["email"]
        try:
            validate_email(email)
        except ValidationError:
            report.errors.append(
                Issue(number, columns["email"], _("adresse e-mail invalide : « %(v)s »") % {"v": email})
            )
            continue
        key = email.lower()
        if key in seen:
            report.errors.append(
                Issue(number, columns["email"], _("adresse déjà présente ligne %(row)s") % {"row": seen[key]})
            )
            continue
        seen[key] = number
        for name, limit in (("first_name", 100), ("last_name", 100), ("phone", 30)):
            if len(values.get(name, "")) > limit:
                report.errors.append(Issue(number, columns[name], _("%(n)s caractères au plus") % {"n": limit}))
        status_word = _header_key(values.get("status", ""))
        if status_word not in STATUS_WORDS:
            report.errors.append(
                Issue(
                    number,
                    columns["status"],
                    _("statut inconnu « %(v)s » (membre ou liste d'attente)") % {"v": values["status"]},
                )
            )
            continue
        planned.append((email, values, STATUS_WORDS[status_word]))
    if report.errors:
        return report
    with transaction.atomic():
        existing = {
            m.email.lower(): m
            for m in Membership.objects.select_for_update().filter(amap=amap).annotate(key=Lower("email"))
        }
        now = timezone.now()
        creations = []
        for email, values, status in planned:
            membership = existing.get(email.lower())
            if membership is None:
                creations.append(
                    Membership(
                        amap=amap,
                        email=email,
                        first_name=values.get("first_name", ""),
                        last_name=values.get("last_name", ""),
                        phone=values.get("phone", ""),
                        status=status,
                        source=Membership.Source.IMPORT,
                        joined_at=now if status == Membership.Status.ACTIVE else None,
                        decided_by=actor,
                    )
                )
                continue
            changed = False
            for name in ("first_name", "last_name", "phone"):
                if values.get(name) and getattr(membership, name) != values[name]:
                    setattr(membership, name, values[name])
                    changed = True
            if changed:
                membership.save()
                report.updated += 1
        Membership.objects.bulk_create(creations, batch_size=500)
        report.created = len(creations)
    report.committed = True
    return report
