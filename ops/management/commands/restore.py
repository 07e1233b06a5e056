from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ops.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restaure une archive de `manage.py backup` dans une base du même serveur PostgreSQL (créée si elle "
        "n'existe pas), vérifie chaque table contre le manifeste, puis remet les fichiers de MEDIA_ROOT. "
        "Une base qui contient déjà des tables n'est écrasée qu'avec --replace."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", type=Path, help="Archive atlas-AAAAMMJJ-HHMMSS.tar.")
        parser.add_argument("--into", default=None, help="Base cible (défaut : la base configurée).")
        parser.add_argument(
            "--replace", action="store_true", help="Écraser une base (ou des fichiers) qui contient déjà des données."
        )
        parser.add_argument(
            "--media-dir", type=Path, default=None, help="Où remettre les fichiers (défaut : MEDIA_ROOT)."
        )

    def handle(self, *args, archive, into=None, replace=False, media_dir=None, **options):
        try:
            report = backup_restore(archive=archive, database=into, replace=replace, media_root=media_dir)
        except BackupError as error:
            raise CommandError(str(error)) from error
        how = "créée et restaurée" if report.created else "restaurée"
        self.stdout.write(
            f"Base « {report.database} » {how} depuis la sauvegarde du {report.backup_created_at} : "
            f"{report.tables} tables, {report.rows} lignes, identiques au manifeste ; "
            f"{report.media_files} fichiers remis."
        )
        self.stdout.write(
            "Ensuite : `manage.py migrate` si le code est plus récent que la sauvegarde, "
            "puis `manage.py verify_evidence` pour vérifier le journal de preuves des contrats."
        )
