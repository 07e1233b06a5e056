"""`manage.py coverage_report --network <slug> --radius-km 10 --output report.html`

Writes one standalone HTML file (figures, map, charts and tables inlined; opens offline) that a
network can send to its partners.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from coverage import figures
from coverage.territory import TerritoryError
from coverage.views import standalone_report
from directory.models import Network, ProductCategory


class Command(BaseCommand):
    help = "Rapport de couverture autonome (HTML) d'un réseau : chiffres, carte, graphiques."

    def add_arguments(self, parser):
        parser.add_argument("--network", required=True, help="identifiant (slug) du réseau")
        parser.add_argument("--radius-km", type=float, default=figures.RADIUS_KM_DEFAULT)
        parser.add_argument("--product", default=None, help="identifiant d'un produit (facultatif)")
        parser.add_argument("--min-population", type=int, default=figures.MIN_POPULATION_DEFAULT)
        parser.add_argument(
            "--map",
            choices=["distance", "density", "population"],
            default=None,
            help="choroplèthe : distance (par défaut), density (AMAP / 100 000 hab.), population",
        )
        parser.add_argument("--output", required=True, help="fichier HTML à écrire")

    def handle(self, *args, **options):
        network = Network.objects.filter(slug=options["network"]).first()
        if network is None:
            raise CommandError(f"Réseau inconnu : {options['network']}")
        radius = options["radius_km"]
        if not (figures.RADIUS_KM_MIN <= radius <= figures.RADIUS_KM_MAX):
            raise CommandError(
                f"Le rayon doit être compris entre {figures.RADIUS_KM_MIN:g} et {figures.RADIUS_KM_MAX:g} km "
                f"(reçu {radius:g})."
            )
        product = options["product"]
        if product and not ProductCategory.objects.filter(slug=product).exists():
            raise CommandError(f"Produit inconnu : {product}")
        if options["min_population"] < 0:
            raise CommandError("Le seuil de population ne peut pas être négatif.")
        try:
            result = figures.coverage_for_network(
                network=network, radius_km=radius, product=product, min_population=options["min_population"]
            )
        except TerritoryError as error:
            raise CommandError(str(error)) from error
        output = Path(options["output"])
        if output.parent and not output.parent.exists():
            raise CommandError(f"Le dossier {output.parent} n'existe pas.")
        html = standalone_report(result, mode=options["map"])
        output.write_text(html, encoding="utf-8")
        if options["verbosity"]:
            share = result["reference_point"]["share"] * 100
            self.stdout.write(
                f"{output} : {len(html) // 1024} Ko ; {result['figures']['amaps']} AMAP, "
                f"{share:.1f} % de la population à moins de {radius:g} km "
                f"({result['methods']['reference_point']})."
            )
