"""manage.py export_directory --format geojson|csv [--kind amap|farm|partnership] [--source S] [--output FILE]"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from directory.exporters import FORMATS, KINDS, export_csv, export_geojson


class Command(BaseCommand):
    help = (
        "Exporte l'annuaire en GeoJSON ou en CSV (colonnes relues par import_directory). Les fermes ne sortent "
        "qu'avec leur point public (approximatif), sans adresse, e-mail ni téléphone."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
        parser.add_argument(
            "--kind", choices=KINDS, help="AMAP, fermes ou partenariats (GeoJSON : AMAP et fermes par défaut)"
        )
        parser.add_argument("--source", help="seulement les fiches de cette source")
        parser.add_argument("--output", type=Path, help="fichier à écrire (par défaut : la sortie standard)")

    def handle(self, *args, fmt: str, kind: str | None, source: str | None, output: Path | None, **options):
        if fmt == "csv" and kind is None:
            raise CommandError(
                "Un CSV contient une seule table : précisez --kind amap, --kind farm ou --kind partnership."
            )
        if fmt == "geojson" and kind == "partnership":
            raise CommandError("Les partenariats n'ont pas de géométrie : exportez-les avec --format csv.")
        if output is not None and not output.parent.exists():
            raise CommandError(f"Le dossier {output.parent} n'existe pas.")
        if output is None:
            self.stdout.ending = ""  # the exporters write whole lines themselves
        out = output.open("w", encoding="utf-8", newline="") if output else self.stdout
        try:
            if fmt == "geojson":
                count = export_geojson(out=out, kinds=(kind,) if kind else ("amap", "farm"), source=source)
            else:
                count = export_csv(out=out, kind=kind, source=source)
        finally:
            if output:
                out.close()
        if output:
            self.stdout.write(f"{count} fiche(s) écrite(s) dans {output}.")
