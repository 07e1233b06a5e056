"""manage.py farm_remask [--commit]: recompute every farm's public point with the current LOCATION_MASK_KEY."""

from django.core.management.base import BaseCommand

from directory.services import farm_remask


class Command(BaseCommand):
    help = (
        "Recalcule le point public (masqué) de chaque ferme avec la clé LOCATION_MASK_KEY actuelle, "
        "après un changement de clé. Simulation par défaut ; --commit enregistre tout en une seule transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("--commit", action="store_true", help="enregistrer (sinon : simulation)")

    def handle(self, *args, commit: bool, **options):
        report = farm_remask(commit=commit)
        if commit:
            self.stdout.write(f"{report.moved} points publics recalculés sur {report.farms} fermes localisées.")
        else:
            self.stdout.write(
                f"Simulation : {report.moved} points publics changeraient sur {report.farms} fermes localisées "
                "(--commit pour enregistrer)."
            )
