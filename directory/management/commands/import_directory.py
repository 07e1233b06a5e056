"""manage.py import_directory FILE --kind amap|farm|partnership [--source S] [--map nom=Colonne] [--commit]"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from directory.importing import FIELD_ALIASES, KINDS, directory_import, mapping_from_options
from directory.importing.progress import ProgressLine


class Command(BaseCommand):
    help = (
        "Importe des AMAP, des fermes ou des partenariats depuis un fichier CSV, XLSX, GeoJSON ou GeoPackage. "
        "Simulation par défaut ; --commit enregistre tout en une seule transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="fichier .csv, .xlsx, .geojson ou .gpkg")
        parser.add_argument("--kind", required=True, choices=KINDS, help="ce que contient le fichier")
        parser.add_argument(
            "--source",
            help="nom de la source (par défaut : nom du fichier) ; le même pour les AMAP et les fermes "
            "d'un même annuaire, pour que les liens se retrouvent",
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="CHAMP=COLONNE",
            help=f"colonne du fichier pour un champ, répétable (champs : {', '.join(FIELD_ALIASES)})",
        )
        parser.add_argument("--encoding", help="encodage d'un CSV qui n'est pas en UTF-8, par exemple cp1252")
        parser.add_argument("--commit", action="store_true", help="enregistrer (sinon : simulation)")

    def handle(self, *args, file: Path, kind: str, source: str | None, map: list[str], encoding, commit, **options):
        try:
            mapping = mapping_from_options(map)
        except ValueError as error:
            raise CommandError(str(error)) from error
        source = source or file.stem
        # Progress goes to stderr: stdout stays the report alone.
        progress = ProgressLine(self.stderr.write) if options["verbosity"] >= 1 else None
        report = directory_import(
            path=file,
            kind=kind,
            source=source,
            mapping=mapping,
            encoding=encoding,
            commit=commit,
            **({"progress": progress} if progress else {}),
        )
        text = report.as_text(details=options["verbosity"] >= 1)
        if not report.ok:
            raise CommandError(text)
        self.stdout.write(text)
