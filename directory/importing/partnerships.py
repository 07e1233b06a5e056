"""Partnership rows: an AMAP and a farm already imported from the same source, products, dates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from .. import parsing
from ..bulk import any_of
from ..models import Amap, Farm, ProductCategory
from ..services import PartnershipChange, partnerships_upsert
from .base import Importer, Prepared, RowContext


class PartnershipImporter(Importer):
    kind = "partnership"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.categories: dict[str, ProductCategory] | None = None
        self.amaps: dict[str, Amap] = {}
        self.farms: dict[str, Farm] = {}

    def prepare_row(self, ctx: RowContext, *, seen: dict[str, int]) -> Prepared | None:
        amap_id, farm_id = ctx.get("amap_id"), ctx.get("producteur_id")
        if not amap_id:
            ctx.error("amap_id", "identifiant d'AMAP vide")
        if not farm_id:
            ctx.error("producteur_id", "identifiant de producteur vide")
        fields: dict[str, Any] = {}
        for name, key in (("depuis", "since"), ("jusqu_au", "until")):
            text = ctx.get(name)
            fields[key] = parsing.parse_date(text)
            if text and fields[key] is None:
                ctx.error(name, f"date « {text} » illisible (attendu AAAA-MM-JJ ou JJ/MM/AAAA)")
        if fields["since"] and fields["until"] and fields["until"] < fields["since"]:
            ctx.error("jusqu_au", "la date de fin précède la date de début")
        active_text = parsing.fold(ctx.get("actif"))
        fields["is_active"] = active_text not in {"non", "no", "false", "0", "faux", "inactif", "termine", "fini"}
        products = self.products(ctx, required=False)
        return Prepared(ctx.row, f"{amap_id}|{farm_id}", fields, products, [amap_id, farm_id])

    def check_links(self, records: Sequence[Prepared]) -> None:
        amap_ids = {record.links[0] for record in records}
        farm_ids = {record.links[1] for record in records}
        # The chunk's AMAPs and farms, kept for `write` (which follows on the same chunk).
        self.amaps = {
            a.external_id: a for a in Amap.objects.filter(any_of("external_id", amap_ids), source=self.source)
        }
        self.farms = {
            f.external_id: f for f in Farm.objects.filter(any_of("external_id", farm_ids), source=self.source)
        }
        for record in records:
            amap_id, farm_id = record.links
            if amap_id not in self.amaps:
                self.report.error(
                    record.row, self.columns["amap_id"], f"AMAP « {amap_id} » inconnue dans la source « {self.source} »"
                )
            if farm_id not in self.farms:
                self.report.error(
                    record.row,
                    self.columns["producteur_id"],
                    f"producteur « {farm_id} » inconnu dans la source « {self.source} »",
                )

    def write(self, records: Sequence[Prepared]) -> None:
        if self.categories is None:
            self.categories = {c.slug: c for c in ProductCategory.objects.all()}
        categories = self.categories
        farm_products: dict[int, list[str]] = defaultdict(list)
        farms = {self.farms[record.links[1]].pk for record in records if not record.product_slugs}
        for farm_id, slug in (
            Farm.products.through.objects.filter(any_of("farm_id", farms))
            .values_list("farm_id", "productcategory__slug")
            .order_by(*(f"productcategory__{name}" for name in ProductCategory._meta.ordering))
        ):
            farm_products[farm_id].append(slug)
        changes: list[PartnershipChange] = []
        labels: list[tuple[int, str]] = []
        for record in records:
            amap, farm = self.amaps[record.links[0]], self.farms[record.links[1]]
            slugs = record.product_slugs or farm_products[farm.pk] or ["autres"]
            for slug in slugs:
                changes.append(PartnershipChange(amap=amap, farm=farm, product=categories[slug], **record.fields))
                label = f"partenariat « {amap.name} » ↔ « {farm.name} » ({categories[slug].name})"
                labels.append((record.row, label))
        for (row, label), result in zip(labels, partnerships_upsert(source=self.source, changes=changes), strict=True):
            self.record_outcome("partnership", label, row, result.outcome, result.changed)
