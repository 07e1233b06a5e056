"""Load the BAN's address files of some départements into the self-hosted Addok (README « Adresses »)."""

import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from geo.addresses import (
    AddressesError,
    addresses_check,
    addresses_download,
    addresses_file_url,
    addresses_label,
    addresses_load,
    addresses_loaded,
    addresses_reset,
)
from geo.models import Department

_DEPARTEMENT = re.compile(r"\d{2}|2[AB]|97\d")


def _count(n: int) -> str:
    return f"{n:,}".replace(",", " ")


class Command(BaseCommand):
    help = (
        "Charge les adresses de la Base Adresse Nationale (fichiers « addok » par département) dans le "
        "serveur d'adresses du projet (make addok). Sans argument : ce qui est déjà chargé."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--departement",
            nargs="+",
            default=[],
            metavar="CODE",
            help="départements à charger (33, 2A, 974…) ; leur fichier est téléchargé depuis la BAN sans --file",
        )
        parser.add_argument(
            "--file",
            nargs="+",
            default=[],
            metavar="FICHIER_OU_URL",
            help="fichiers adresses-addok-<département>.ndjson(.gz), sur disque ou à une adresse http(s)",
        )
        parser.add_argument("--reload", action="store_true", help="recharger ce qui est déjà chargé")
        parser.add_argument("--reset", action="store_true", help="effacer d'abord toutes les adresses chargées")
        parser.add_argument("--check", action="store_true", help="vérifier les fichiers sans rien charger")

    def handle(self, *args, **options):
        stream = self.stderr if options["verbosity"] > 0 else None  # progress, as the other long commands
        try:
            jobs = self._jobs(options["departement"], options["file"])
            if options["check"]:
                for label, source in jobs:
                    path = self._local(label, source, stream)
                    documents, numbers = addresses_check(path, stream=stream)
                    self.stdout.write(
                        f"{label} : fichier valable, {_count(documents)} lieux, {_count(numbers)} numéros."
                    )
                return
            if options["reset"]:
                addresses_reset()
                self.stdout.write("Toutes les adresses chargées ont été effacées.")
            loaded = addresses_loaded()
            for label, source in jobs:
                if label in loaded and not options["reload"]:
                    done = loaded[label]
                    self.stdout.write(
                        f"{label} : déjà chargé le {done.loaded_at} ({_count(done.documents)} lieux) ; "
                        "--reload pour le recharger."
                    )
                    continue
                path = self._local(label, source, stream)
                self.stdout.write(f"{label} : vérification puis chargement de {path}")
                done = addresses_load(path=path, label=label, source=source, stream=stream)
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{label} : {_count(done.documents)} voies, lieux-dits et communes "
                        f"({_count(done.housenumbers)} numéros) chargés."
                    )
                )
            if not jobs:
                self._report(loaded)
        except AddressesError as error:
            raise CommandError(str(error)) from error

    def _jobs(self, departements: list[str], files: list[str]) -> list[tuple[str, str]]:
        """(label, file or URL) to load, in order."""
        codes = [self._departement(code) for code in departements]
        if codes and files:
            if len(codes) != len(files):
                raise CommandError(
                    "Autant de --file que de --departement, dans le même ordre (ou --file seul, ou --departement seul)."
                )
            return list(zip(codes, files, strict=True))
        if codes:
            return [(code, addresses_file_url(code)) for code in codes]
        return [(addresses_label(source), source) for source in files]

    def _departement(self, raw: str) -> str:
        code = raw.strip().upper()
        if code.isdigit() and len(code) == 1:
            code = "0" + code
        known = Department.objects.filter(code=code).exists() or (
            not Department.objects.exists() and _DEPARTEMENT.fullmatch(code)
        )
        if not known:
            raise CommandError(f"Département inconnu : « {raw} ». Exemples : 33, 2A, 974.")
        return code

    def _local(self, label: str, source: str, stream) -> Path:
        if source.startswith(("http://", "https://")):
            self.stdout.write(f"{label} : téléchargement de {source}")
            return addresses_download(url=source, folder=Path(settings.ADDOK_VAR) / "files", stream=stream)
        return Path(source)

    def _report(self, loaded) -> None:
        if not loaded:
            self.stdout.write("Aucune adresse chargée. Exemple : manage.py load_addresses --departement 33")
            return
        for label, done in sorted(loaded.items()):
            self.stdout.write(
                f"{label} : {_count(done.documents)} lieux, {_count(done.housenumbers)} numéros, "
                f"chargés le {done.loaded_at} depuis {done.source}"
            )
