"""AMAP rows: placed in a commune (an AMAP without one is an error), delivery days and hours, links to farms."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .. import parsing
from ..bulk import any_of
from ..models import Amap, Farm
from ..services import EntryChange, PartnershipChange, entries_upsert, partnerships_upsert
from .base import Importer, Located, Prepared, RowContext

KIND_WORDS = {"etudiante": Amap.Kind.STUDENT, "etudiant": Amap.Kind.STUDENT, "entreprise": Amap.Kind.WORKPLACE}

FREQUENCY_LABELS = {
    "weekly": "chaque semaine",
    "fortnightly": "toutes les deux semaines",
    "monthly": "chaque mois",
    "other": "autre",
}


class AmapImporter(Importer):
    kind = "amap"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.linked = 0  # links to farms, in the whole file
        self.any_farm: bool | None = None  # does the source have farms yet? (asked once)

    def prepare_row(self, ctx: RowContext, *, seen: dict[str, int]) -> Prepared | None:
        name = self.name(ctx)
        postal_code = parsing.normalize_postal_code(ctx.get("code_postal"))
        if ctx.get("code_postal") and not postal_code:
            ctx.warn("code_postal", f"« {ctx.get('code_postal')} » n'est pas un code postal : ignoré")
        located = self.locate(ctx, postal_code=postal_code)
        if located is None:
            return None
        fields: dict[str, Any] = {
            "name": name,
            "location": located.point,
            "location_precision": located.precision,
            "commune": located.commune,
        }
        if ctx.has("adresse"):
            fields["address"] = ctx.get("adresse")[:300]
        if ctx.has("code_postal"):
            fields["postal_code"] = postal_code
        fields.update(self.delivery(ctx))
        if ctx.has("etat"):
            status = parsing.parse_status(ctx.get("etat"))
            if status is None:
                ctx.warn("etat", f"état « {ctx.get('etat')} » non reconnu : AMAP considérée active")
                status = Amap.Status.ACTIVE
            fields["status"] = status
        if ctx.has("type"):
            fields["kind"] = next(
                (kind for word, kind in KIND_WORDS.items() if word in parsing.words_of(ctx.get("type"))),
                Amap.Kind.CLASSIC,
            )
        if ctx.has("nouveaux_membres"):
            text = ctx.get("nouveaux_membres")
            accepting = parsing.parse_accepting(text)
            if accepting is None:
                ctx.warn("nouveaux_membres", f"« {text} » non reconnu (ouvert, liste d'attente, complet) : ignoré")
                accepting = Amap.Accepting.UNKNOWN
            fields["accepting_members"] = accepting
        if ctx.has("plateforme"):
            fields["platform"] = ctx.get("plateforme")[:60]
        if ctx.has("site_web"):
            fields["website"] = self.website(ctx)
        if ctx.has("email"):
            fields["private_email"] = self.email(ctx)  # never shown: « Contacter » relays to it
        if ctx.has("email_public"):
            fields["contact_email"] = self.email(ctx, column="email_public")
        if ctx.has("telephone"):
            fields["phone"] = self.phone(ctx)
        if ctx.has("description"):
            fields["description"] = ctx.get("description")
        if ctx.has("date_creation"):
            text = ctx.get("date_creation")
            fields["founded_on"] = parsing.parse_date(text)
            if text and fields["founded_on"] is None:
                ctx.warn("date_creation", f"date « {text} » illisible (attendu AAAA-MM-JJ ou JJ/MM/AAAA) : ignorée")
        if ctx.has("rna_id"):
            rna = ctx.get("rna_id").upper().replace(" ", "")
            if rna and not re.fullmatch(r"W\d{9}", rna):
                ctx.warn("rna_id", f"« {rna} » n'est pas un numéro RNA (W suivi de 9 chiffres) : ignoré")
                rna = ""
            fields["rna_id"] = rna
        products = self.products(ctx, required=False)
        place = located.commune.code if located.commune else ""
        external_id = self.external_id(ctx, name=name, place=place, seen=seen)
        links = parsing.split_ids(ctx.get("producteur_ids"))
        return Prepared(ctx.row, external_id, fields, products, links, label=f"AMAP « {name} »")

    def locate(self, ctx: RowContext, *, postal_code: str) -> Located | None:
        point = self.coordinates(ctx)
        if ctx.failed:
            return None
        if point is not None:
            commune = self.commune_for_point(ctx, point)
            if commune is None:
                ctx.error("lat", "aucune commune française à cet endroit (point en mer ?)")
                return None
            return Located(point, commune, self.precision_of_coordinates(ctx))
        ville, address = ctx.get("ville"), ctx.get("adresse")
        insee = parsing.normalize_insee(ctx.get("insee"))
        if not (ville or postal_code or address or insee):
            ctx.error("ville", "ni coordonnées, ni ville, ni code postal : impossible de placer l'AMAP")
            return None
        if ctx.get("insee") and (not insee or self.commune(insee) is None):
            ctx.error("insee", f"code INSEE « {ctx.get('insee')} » inconnu")
            return None
        candidate, _guessed = self.locate_from_text(
            ctx, address=address, postal_code=postal_code, commune=ville, insee=insee
        )
        if candidate is None or candidate.commune is None:
            what = " ".join(part for part in (postal_code, ville) if part) or address
            ctx.error(
                "ville" if ville else "code_postal" if postal_code else "adresse", f"commune inconnue : « {what} »"
            )
            return None
        if ville and candidate.score < 0.9:
            ctx.warn("ville", f"« {ville} » compris comme {candidate.commune.name} ({candidate.commune.code})")
        return Located(candidate.point, candidate.commune, candidate.precision)

    def delivery(self, ctx: RowContext) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        notes: list[str] = []
        frequency: str | None = None
        if ctx.has("jour"):
            days = self.memo(parsing.parse_weekdays, ctx.get("jour"))
            fields["delivery_weekdays"] = list(days.weekdays)
            frequency = days.frequency
            if days.note:
                notes.append(days.note)
                if not days.weekdays:
                    ctx.warn("jour", f"jour « {days.note} » non reconnu : gardé en précision")
        if ctx.has("horaire"):
            hours = self.memo(parsing.parse_hours, ctx.get("horaire"))
            fields["delivery_start"], fields["delivery_end"] = hours.start, hours.end
            frequency = frequency or hours.frequency
            if hours.note:
                notes.append(hours.note)
                if hours.start is None:
                    ctx.warn("horaire", f"horaire « {hours.note} » non reconnu : gardé en précision")
        if ctx.has("frequence") and ctx.get("frequence"):
            text = ctx.get("frequence")
            explicit = parsing.frequency_in(text) or next(
                (value for value, label in FREQUENCY_LABELS.items() if parsing.fold(text) == label), None
            )
            if explicit is None:
                ctx.warn("frequence", f"fréquence « {text} » non reconnue : gardée en précision")
                notes.append(text)
            frequency = explicit or frequency
        if ctx.has("jour") or ctx.has("horaire") or ctx.has("frequence"):
            fields["delivery_frequency"] = frequency or Amap.Frequency.WEEKLY
        if ctx.has("precisions_livraison"):
            fields["delivery_notes"] = ctx.get("precisions_livraison")[:300]
        elif ctx.has("jour") or ctx.has("horaire"):
            fields["delivery_notes"] = " ; ".join(notes)[:300]
        return fields

    def write(self, records: Sequence[Prepared]) -> None:
        results = entries_upsert(
            model=Amap,
            source=self.source,
            changes=[EntryChange(r.external_id, r.fields, r.product_slugs) for r in records],
        )
        linked = {farm_id for record in records for farm_id in record.links}
        farms = {}
        if linked:
            farms = {
                f.external_id: f
                for f in Farm.objects.filter(any_of("external_id", linked), source=self.source).prefetch_related(
                    "products"
                )
            }
        links: list[PartnershipChange] = []
        for record, result in zip(records, results, strict=True):
            for farm_id in record.links:
                farm = farms.get(farm_id)
                if farm is not None:
                    for product in list(farm.products.all()) or self.fallback_products():
                        links.append(PartnershipChange(amap=result.obj, farm=farm, product=product))
        outcomes = iter(partnerships_upsert(source=self.source, changes=links))
        # Reported in the order of the rows, each AMAP before its partnerships.
        for record, result in zip(records, results, strict=True):
            self.record_outcome("amap", record.label, record.row, result.outcome, result.changed)
            for farm_id in record.links:
                farm = farms.get(farm_id)
                if farm is not None:
                    for _product in list(farm.products.all()) or self.fallback_products():
                        link = next(outcomes)
                        self.record_outcome(
                            "partnership", f"partenariat avec « {farm.name} »", record.row, link.outcome
                        )

    def check_links(self, records: Sequence[Prepared]) -> None:
        linked = {farm_id for record in records for farm_id in record.links}
        self.linked += sum(len(record.links) for record in records)
        if not linked:
            return
        if self.any_farm is None:
            self.any_farm = Farm.objects.filter(source=self.source).exists()
        if not self.any_farm:
            return  # no farm of this source yet: the farms' own import makes the links
        known = set(
            Farm.objects.filter(any_of("external_id", linked), source=self.source).values_list("external_id", flat=True)
        )
        for record in records:
            unknown = [i for i in record.links if i not in known]
            if unknown:
                self.report.warn(
                    record.row,
                    self.columns.get("producteur_ids", "producteur_ids"),
                    f"producteur(s) inconnu(s) dans la source « {self.source} » : {', '.join(unknown)} (lien ignoré)",
                )

    def finish(self) -> None:
        if self.linked and self.any_farm is False:
            self.report.notes.append(
                f"{self.linked} lien(s) vers des producteurs : ils seront créés à l'import des producteurs "
                f"(--kind farm, même --source « {self.source} »)."
            )
