"""Generate the demo directory (deterministic, clearly labelled, all of France)."""

from django.core.management.base import BaseCommand, CommandError

from directory import demo
from directory.models import Amap, Farm
from geo.models import Commune
from geo.progress import Progress


class Command(BaseCommand):
    help = (
        "Génère un annuaire de démonstration (AMAP, fermes, partenariats, réseaux) dans des communes réelles "
        "pondérées par la population. Toutes les lignes sont marquées « démo »."
    )

    def add_arguments(self, parser):
        parser.add_argument("--amaps", type=int, default=None, help=f"nombre d'AMAP (défaut {demo.DEFAULT_AMAPS})")
        parser.add_argument("--farms", type=int, default=None, help=f"nombre de fermes (défaut {demo.DEFAULT_FARMS})")
        parser.add_argument("--seed", type=int, default=1, help="graine : même graine, même annuaire")
        parser.add_argument(
            "--if-empty", action="store_true", help="ne rien faire s'il existe déjà des AMAP de démonstration"
        )
        parser.add_argument(
            "--clear",
            action="store_true",
            help="supprimer d'abord les données de démonstration (et seulement elles) ; "
            "sans --amaps ni --farms, ne fait que supprimer",
        )

    def handle(self, *args, **options):
        amaps, farms, seed = options["amaps"], options["farms"], options["seed"]
        if (amaps is not None and amaps < 0) or (farms is not None and farms < 0):
            raise CommandError("--amaps et --farms doivent être positifs ou nuls.")
        existing = (
            Amap.objects.filter(is_demo=True).exists()
            or Farm.objects.filter(is_demo=True).exists()
            or demo.demo_networks().exists()
        )
        if options["if_empty"] and existing:
            if options["verbosity"]:
                self.stdout.write("Données de démonstration déjà présentes : rien à faire.")
            return
        if not Commune.objects.exists():
            raise CommandError("Aucune commune : lancez d'abord `manage.py load_territories`.")

        if options["clear"]:
            counts = demo.clear_demo()
            if options["verbosity"]:
                self.stdout.write(
                    f"Supprimé : {counts['amaps']} AMAP, {counts['farms']} fermes, "
                    f"{counts['partnerships']} partenariats, {counts['networks']} réseaux de démonstration."
                )
            if amaps is None and farms is None:
                return
        elif existing:
            raise CommandError(
                "Des données de démonstration existent déjà : --clear pour les remplacer, --if-empty pour les garder."
            )

        amaps = demo.DEFAULT_AMAPS if amaps is None else amaps
        farms = demo.DEFAULT_FARMS if farms is None else farms
        verbose = options["verbosity"] >= 2
        progress = Progress(amaps + farms, "AMAP et fermes", self.stderr if options["verbosity"] else None)
        summary = demo.generate(
            amaps=amaps, farms=farms, seed=seed, log=self.stdout.write if verbose else None, progress=progress
        )
        progress.finish()
        if options["verbosity"]:
            self.stdout.write(
                f"Annuaire de démonstration : {summary.amaps} AMAP, {summary.farms} fermes, "
                f"{summary.partnerships} partenariats, {summary.networks} réseaux en {summary.seconds:.1f} s."
            )
