"""Leave-one-AMAP-out recall of the matching on a network already imported (imports nothing)."""

from django.core.management.base import BaseCommand, CommandError

from directory.models import Amap
from geo.progress import Progress
from matching.evaluation import RecallReport, leave_one_out_recall

LABELS = {
    "learned": "classement appris",
    "engine": "poids fixes",
    "engine_no_reach": "poids fixes, sans rayon des fermes",
    "distance_within_radius": "plus proche d'abord (dans le rayon)",
    "distance_baseline": "plus proche d'abord (toute distance)",
}


class Command(BaseCommand):
    help = "Évalue la mise en relation en retirant tour à tour chaque AMAP d'une source et ses partenariats."

    def add_arguments(self, parser):
        parser.add_argument("--source", required=True, help="la source d'import des AMAP évaluées")
        parser.add_argument("--radius-km", type=float, default=100.0)
        parser.add_argument("--k", type=int, default=10)

    def handle(self, *args, source: str, radius_km: float, k: int, **options):
        if not 1 <= k <= 50:
            raise CommandError("--k doit être entre 1 et 50.")
        if not 0 < radius_km <= 300:
            raise CommandError("--radius-km doit être entre 0 et 300.")
        if not Amap.objects.filter(source=source).exists():
            raise CommandError(f"Aucune AMAP importée avec la source « {source} ».")
        progress = Progress(None, "AMAP évaluées", self.stderr if options["verbosity"] else None)
        report = leave_one_out_recall(k=k, radius_km=radius_km, source=source, progress=progress)
        progress.finish()
        self.stdout.write(f"{report.links} partenariats de {report.amaps} AMAP, rayon {radius_km:g} km")
        ats = sorted({1, 3, k})
        for method in RecallReport.METHODS:
            figures = " ".join(f"recall@{at} {report.recall(method, at):.2f}" for at in ats)
            self.stdout.write(f"{method} ({LABELS[method]}): {figures}")
