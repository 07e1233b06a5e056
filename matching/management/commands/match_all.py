"""`manage.py match_all`: compute and store the k best matches of every open annonce."""

from django.core.management.base import BaseCommand, CommandError

from geo.progress import Progress
from matching import bulk, services


class Command(BaseCommand):
    help = "Calcule et enregistre les meilleures correspondances de toutes les annonces ouvertes."

    def add_arguments(self, parser):
        parser.add_argument("-k", type=int, default=10, help="correspondances gardées par annonce (défaut 10)")
        parser.add_argument(
            "--shortlist",
            type=int,
            default=None,
            help=(
                "points les plus proches examinés d'abord, par annonce et par jour et produit (défaut 64) ; "
                "le résultat est exact quelle que soit cette valeur, qui ne joue que sur la durée"
            ),
        )
        parser.add_argument("--annonce", type=int, action="append", help="seulement cette annonce (répétable)")

    def handle(self, *args, k, shortlist, annonce, **options):
        if not 1 <= k <= 100:
            raise CommandError("-k doit être compris entre 1 et 100")
        if shortlist is not None and not 1 <= shortlist <= 10_000:
            raise CommandError("--shortlist doit être compris entre 1 et 10000")
        expired = services.annonce_expire_due()
        progress = Progress(None, "annonces", self.stderr if options["verbosity"] else None)
        report = bulk.match_all(k=k, shortlist=shortlist, annonce_ids=annonce, progress=progress)
        progress.finish()
        self.stdout.write(
            f"{report.annonces} annonces, {report.matches} correspondances enregistrées "
            f"({expired} annonces expirées) en {report.total_s:.1f} s "
            f"(chargement {report.load_s:.1f} s, calcul {report.compute_s:.1f} s, écriture {report.store_s:.1f} s)"
        )
        if report.widened:
            self.stdout.write(
                f"{report.widened} annonces ont demandé une recherche élargie au-delà des plus proches (zones denses)"
            )
