"""Load régions, départements and communes from fixtures/territories (idempotent)."""

import csv
import gzip
import json
import time
from pathlib import Path

from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Point
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from geo.geocoding import reset_gazetteer_cache
from geo.masking import land_outlines
from geo.models import Commune, Department, Region
from geo.text import normalize_place_name

# Paris, Lyon and Marseille: their arrondissements (ARM) point to the commune.
ARRONDISSEMENT_PARENTS = {"751": "75056", "693": "69123", "132": "13055"}


def _multipolygon(geometry: dict | None) -> MultiPolygon | None:
    if not geometry:
        return None
    geom = GEOSGeometry(json.dumps(geometry), srid=4326)
    if geom.geom_type == "Polygon":
        geom = MultiPolygon(geom, srid=4326)
    if not geom.valid:
        geom = geom.make_valid()
        if geom.geom_type == "Polygon":
            geom = MultiPolygon(geom, srid=4326)
    return geom


def _read_geojson(path: Path) -> dict[str, dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)["features"]


class Command(BaseCommand):
    help = "Charge les régions, départements et communes de France (COG 2025) ; relançable sans doublon."

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=None, help="dossier des fichiers de référence")
        parser.add_argument("--if-empty", action="store_true", help="ne rien faire si les communes sont déjà chargées")

    def handle(self, *args, **options):
        folder: Path = options["dir"] or Path(settings.TERRITORIES_DIR)
        if not (folder / "regions.csv").exists():
            raise CommandError(f"Fichiers de référence introuvables dans {folder}")
        if options["if_empty"] and Commune.objects.exists():
            self.stdout.write("Territoires déjà chargés.")
            return
        started = time.perf_counter()
        with transaction.atomic():
            regions = self._load_regions(folder)
            departments = self._load_departments(folder)
            communes = self._load_communes(folder)
            # A geocoder index built in this process before the load would miss the new names.
            transaction.on_commit(reset_gazetteer_cache)
            # The masks' département outlines, likewise (geo.masking).
            transaction.on_commit(land_outlines.cache_clear)
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"{regions} régions, {departments} départements, {communes} communes chargés en {elapsed:.1f} s"
        )

    def _load_regions(self, folder: Path) -> int:
        shapes = {
            f["properties"]["region_code"]: f for f in _read_geojson(folder / "regions_2025_from_communes.geojson.gz")
        }
        rows = []
        with open(folder / "regions.csv", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                shape = shapes.get(row["code"])
                rows.append(
                    Region(
                        code=row["code"],
                        name=row["nom"],
                        population=shape["properties"]["population_2023"] if shape else 0,
                        geom=_multipolygon(shape["geometry"]) if shape else None,
                    )
                )
        Region.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["code"], update_fields=["name", "population", "geom"]
        )
        return len(rows)

    def _load_departments(self, folder: Path) -> int:
        shapes = {
            f["properties"]["departement_code"]: f
            for f in _read_geojson(folder / "departements_2025_from_communes.geojson.gz")
        }
        rows = []
        with open(folder / "departements.csv", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                shape = shapes.get(row["code"])
                rows.append(
                    Department(
                        code=row["code"],
                        name=row["nom"],
                        region_id=row["region_code"],
                        population=shape["properties"]["population_2023"] if shape else 0,
                        geom=_multipolygon(shape["geometry"]) if shape else None,
                    )
                )
        Department.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["code"],
            update_fields=["name", "region", "population", "geom"],
        )
        return len(rows)

    def _load_communes(self, folder: Path) -> int:
        shapes = {
            f["properties"]["insee"]: f["geometry"]
            for f in _read_geojson(folder / "communes_2025_simplified.geojson.gz")
        }
        with gzip.open(folder / "communes_gazetteer.csv.gz", "rt", encoding="utf-8") as handle:
            gazetteer = list(csv.DictReader(handle))
        by_code = {row["insee"]: row for row in gazetteer}
        rows = []
        for row in gazetteer:
            code = row["insee"]
            parent_code = ARRONDISSEMENT_PARENTS.get(code[:3]) if row["type"] == "ARM" else None
            # The source leaves an arrondissement's département and région blank: take the city's.
            place = by_code[parent_code] if parent_code else row
            point = Point(float(row["lon"]), float(row["lat"]), srid=4326) if row["lat"] else None
            rows.append(
                Commune(
                    code=code,
                    name=row["nom"],
                    search_name=normalize_place_name(row["nom"]),
                    kind=row["type"],
                    parent_id=parent_code,
                    department_id=place["departement_code"],
                    region_id=place["region_code"],
                    postal_codes=[c for c in row["codes_postaux"].split("|") if c],
                    population=int(float(row["population_2023"] or 0)),
                    point=point,
                    geom=_multipolygon(shapes.get(code)),
                )
            )
        # Parents first, so that the arrondissements' foreign keys resolve.
        rows.sort(key=lambda c: c.kind != Commune.Kind.COMMUNE)
        Commune.objects.bulk_create(
            rows,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["code"],
            update_fields=[
                "name",
                "search_name",
                "kind",
                "parent",
                "department",
                "region",
                "postal_codes",
                "population",
                "point",
                "geom",
            ],
        )
        return len(rows)
