"""Farm rows: a farm may stay without a place (kept with a warning), labels, delivery radius, links to AMAPs."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from geo.text import normalize_place_name

from .. import parsing
from ..bulk import any_of
from ..models import Amap, Farm, LocationPrecision
from ..services import EntryChange, PartnershipChange, entries_upsert, partnerships_upsert
from .base import Importer, Located, Prepared, RowContext

LABEL_WORDS = {
    "ab": Farm.Label.ORGANIC,
    "bio": Farm.Label.ORGANIC,
    "agriculture biologique": Farm.Label.ORGANIC,
    "nature progres": Farm.Label.NATURE_PROGRES,
    "demeter": Farm.Label.DEMETER,
    "bio coherence": Farm.Label.BIO_COHERENCE,
    "conversion": Farm.Label.CONVERSION,
    "en conversion": Farm.Label.CONVERSION,
    "paysan": Farm.Label.PEASANT,
    "agriculture paysanne": Farm.Label.PEASANT,
}


class FarmImporter(Importer):
    kind = "farm"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.linked = 0  # links to AMAPs, in the whole file
        self.any_amap: bool | None = None  # does the source have AMAPs yet? (asked once)

    def prepare_row(self, ctx: RowContext, *, seen: dict[str, int]) -> Prepared | None:
        name = self.name(ctx)
        postal_code = parsing.normalize_postal_code(ctx.get("code_postal"))
        located = self.locate(ctx, postal_code=postal_code)
        if located is None:
            return None
        address = ctx.get("adresse")
        if not postal_code and address:
            match = re.search(r"(?<!\d)(\d{5})(?!\d)", address)
            postal_code = match.group(1) if match else ""
        fields: dict[str, Any] = {
            "name": name,
            "location": located.point,
            "location_precision": located.precision,
            "commune": located.commune,
        }
        if ctx.has("adresse"):
            fields["address"] = address[:300]
        if ctx.has("adresse") or ctx.has("code_postal"):
            fields["postal_code"] = postal_code
        description = []
        if ctx.get("description"):
            description.append(ctx.get("description"))
        if ctx.get("societe"):
            description.append(f"Structure : {ctx.get('societe')}")
        if ctx.get("frequence"):
            description.append(f"Livraisons : {ctx.get('frequence')}")
        if ctx.has("description") or ctx.has("societe") or ctx.has("frequence"):
            fields["description"] = "\n".join(description)
        if ctx.has("produits"):
            fields["product_details"] = ctx.get("produits")[:300]
        if ctx.has("site_web"):
            fields["website"] = self.website(ctx)
        if ctx.has("email"):
            fields["private_email"] = self.email(ctx)  # never shown: « Contacter » relays to it
        if ctx.has("email_public"):
            fields["contact_email"] = self.email(ctx, column="email_public")
        if ctx.has("telephone"):
            fields["phone"] = self.phone(ctx)
        if ctx.has("labels"):
            text = " ".join(parsing.words_of(ctx.get("labels")))
            fields["labels"] = sorted({label for word, label in LABEL_WORDS.items() if re.search(rf"\b{word}\b", text)})
        if ctx.has("rayon_livraison_km"):
            # Without the column (or with an empty cell) the radius stays unknown, never a default.
            fields["delivery_radius_km"] = self.delivery_radius(ctx)
        products = self.products(ctx, required=True)
        place = located.commune.code if located.commune else normalize_place_name(address)
        external_id = self.external_id(ctx, name=name, place=place, seen=seen)
        links = parsing.split_ids(ctx.get("amap_ids"))
        return Prepared(ctx.row, external_id, fields, products, links, label=f"ferme « {name} »")

    def delivery_radius(self, ctx: RowContext) -> int | None:
        text = ctx.get("rayon_livraison_km").lower().removesuffix("km").strip().replace(",", ".")
        if not text:
            return None
        try:
            km = float(text)
        except ValueError:
            km = math.nan
        if not 1 <= km <= 500:
            cell = ctx.get("rayon_livraison_km")
            ctx.error("rayon_livraison_km", f"rayon « {cell} » : un nombre de km entre 1 et 500 est attendu")
            return None
        return round(km)

    def locate(self, ctx: RowContext, *, postal_code: str) -> Located | None:
        point = self.coordinates(ctx)
        if ctx.failed:
            return None
        if point is not None:
            precision = self.precision_of_coordinates(ctx)
            commune = self.commune_for_point(ctx, point)
            if commune is None:
                ctx.warn("lat", "aucune commune à cet endroit : ferme gardée sans commune")
            return Located(point, commune, precision)
        ville, address = ctx.get("ville"), ctx.get("adresse")
        insee = parsing.normalize_insee(ctx.get("insee"))
        if ctx.get("insee") and (not insee or self.commune(insee) is None):
            ctx.error("insee", f"code INSEE « {ctx.get('insee')} » inconnu")
            return None
        if not (ville or postal_code or address or insee):
            ctx.warn("", "ni coordonnées ni adresse : ferme gardée sans localisation")
            return Located(None, None, LocationPrecision.UNKNOWN)
        candidate, guessed = self.locate_from_text(
            ctx, address=address, postal_code=postal_code, commune=ville, insee=insee
        )
        if candidate is None or candidate.commune is None:
            if ville or postal_code:
                what = " ".join(part for part in (postal_code, ville) if part)
                ctx.error("ville" if ville else "code_postal", f"commune inconnue : « {what} »")
                return None
            ctx.warn("adresse", f"aucune commune reconnue dans « {address} » : ferme gardée sans localisation")
            return Located(None, None, LocationPrecision.UNKNOWN)
        if guessed:
            ctx.warn(
                "adresse",
                f"« {address} » placé approximativement à {candidate.commune.name} ({candidate.commune.code})",
            )
        return Located(candidate.point, candidate.commune, candidate.precision)

    def check_links(self, records: Sequence[Prepared]) -> None:
        linked = {amap_id for record in records for amap_id in record.links}
        self.linked += sum(len(record.links) for record in records)
        if not linked:
            return
        if self.any_amap is None:
            self.any_amap = Amap.objects.filter(source=self.source).exists()
        if not self.any_amap:
            return  # one warning for the whole file (`finish`)
        column = self.columns.get("amap_ids", "amap_ids")
        known = set(
            Amap.objects.filter(any_of("external_id", linked), source=self.source).values_list("external_id", flat=True)
        )
        for record in records:
            for amap_id in record.links:
                if parsing.looks_like_url(amap_id):
                    self.report.warn(
                        record.row, column, f"« {amap_id} » est une adresse web, pas un identifiant d'AMAP : ignoré"
                    )
                elif amap_id not in known:
                    self.report.warn(
                        record.row,
                        column,
                        f"AMAP « {amap_id} » inconnue dans la source « {self.source} » : lien ignoré",
                    )

    def finish(self) -> None:
        if self.linked and self.any_amap is False:
            self.report.warn(
                None,
                self.columns.get("amap_ids", "amap_ids"),
                f"aucune AMAP de la source « {self.source} » n'est encore enregistrée : les {self.linked} lien(s) "
                "seront ignorés. Importez d'abord les AMAP (--kind amap --commit) avec la même --source.",
            )

    def write(self, records: Sequence[Prepared]) -> None:
        results = entries_upsert(
            model=Farm,
            source=self.source,
            changes=[EntryChange(r.external_id, r.fields, r.product_slugs) for r in records],
        )
        linked = {amap_id for record in records for amap_id in record.links}
        amaps = {}
        if linked:
            amaps = {a.external_id: a for a in Amap.objects.filter(any_of("external_id", linked), source=self.source)}
        with_links = [r.obj.pk for record, r in zip(records, results, strict=True) if set(record.links) & set(amaps)]
        products = {
            farm.pk: list(farm.products.all()) or self.fallback_products()
            for farm in Farm.objects.filter(any_of("id", with_links)).only("pk").prefetch_related("products")
        }
        links: list[PartnershipChange] = []
        for record, result in zip(records, results, strict=True):
            for amap_id in record.links:
                if amap_id in amaps:
                    links.extend(
                        PartnershipChange(amap=amaps[amap_id], farm=result.obj, product=product)
                        for product in products[result.obj.pk]
                    )
        outcomes = iter(partnerships_upsert(source=self.source, changes=links))
        # Reported in the order of the rows, each farm before its partnerships.
        for record, result in zip(records, results, strict=True):
            self.record_outcome("farm", record.label, record.row, result.outcome, result.changed)
            for amap_id in record.links:
                if amap_id in amaps:
                    for _product in products[result.obj.pk]:
                        link = next(outcomes)
                        label = f"partenariat avec « {amaps[amap_id].name} »"
                        self.record_outcome("partnership", label, record.row, link.outcome)
