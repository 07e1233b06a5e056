from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.backup import BackupError, backup_create, backups_prune


class Command(BaseCommand):
    help = (
        "Sauvegarde la base (pg_dump au format custom, PDF signés compris) et les fichiers de MEDIA_ROOT "
        "dans une archive datée atlas-AAAAMMJJ-HHMMSS.tar, avec un manifeste (lignes par table, SHA-256)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir", type=Path, default=None, help="Dossier des archives (défaut : BACKUP_DIR, .var/backups)."
        )
        parser.add_argument("--keep", type=int, default=None, help="Ne garder que les N archives les plus récentes.")

    def handle(self, *args, dir=None, keep=None, **options):
        if keep is not None and keep < 1:
            raise CommandError("--keep : au moins 1 (sinon la sauvegarde qu'on vient de faire serait effacée).")
        directory = Path(dir or settings.BACKUP_DIR)
        try:
            report = backup_create(directory=directory)
        except BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"Sauvegarde écrite : {report.path} ({report.size / 1e6:.1f} Mo, {report.tables} tables, "
            f"{report.rows} lignes, {report.media_files} fichiers de MEDIA_ROOT)."
        )
        if keep is not None:
            for path in backups_prune(directory=directory, keep=keep):
                self.stdout.write(f"Ancienne sauvegarde supprimée : {path.name}")
