"""Refit the learned matching ranking on the directory's active partnerships and store it as a new version."""

from django.core.management.base import BaseCommand

from geo.progress import Progress
from matching.learning.store import matching_model_train
from matching.learning.training import MIN_LINKS


class Command(BaseCommand):
    help = "Réentraîne le classement des mises en relation sur les partenariats actifs (nouvelle version)."

    def add_arguments(self, parser):
        parser.add_argument("--min-links", type=int, default=MIN_LINKS, help="en dessous : poids fixes")

    def handle(self, *args, min_links: int, **options):
        progress = Progress(None, "AMAP en validation croisée", self.stderr if options["verbosity"] else None)
        model = matching_model_train(min_links=min_links, progress=progress)
        if model is None:
            self.stdout.write(f"Moins de {min_links} partenariats : aucun modèle, le classement garde ses poids fixes.")
            return
        progress.finish()
        cv = model.card["cross_validation"]
        self.stdout.write(f"Modèle v{model.version} entraîné sur {model.links} partenariats.")
        for at in (1, 3, 10):
            r = cv[f"recall_at_{at}"]
            self.stdout.write(f"recall@{at} appris {r['learned']:.2f} · plus proche d'abord {r['nearest']:.2f}")
