"""`manage.py export_map --network <slug> --output carte.html`: one HTML file that works alone."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cartography.builders import build_network_map, standalone_html
from directory.models import Network
from maps import selectors

# A standalone file carries its points inline; beyond this it gets too heavy for a browser.
MAX_EXPORT_POINTS = 20_000


class Command(BaseCommand):
    help = "Écrit une carte HTML autonome (Leaflet inclus, sans CDN) des AMAP et fermes d'un réseau."

    def add_arguments(self, parser):
        parser.add_argument("--network", required=True, help="identifiant (slug) du réseau")
        parser.add_argument("--output", required=True, help="fichier HTML à écrire, par exemple carte.html")
        parser.add_argument("--products", default="", help="produits, séparés par des virgules (ex. legumes,pain)")
        parser.add_argument(
            "--base-url",
            default="",
            help="adresse du site (ex. https://atlas.example.org) : les fiches s'ouvrent depuis le fichier",
        )

    def handle(self, *args, network: str, output: str, products: str, base_url: str, **options):
        try:
            filters = selectors.parse_map_filters({"network": network, "products": products})
        except selectors.MapFilterError as error:
            messages = "; ".join(f"{name} : {', '.join(texts)}" for name, texts in error.errors.items())
            raise CommandError(messages) from None
        network_obj = Network.objects.get(slug=filters.network)
        data = selectors.network_map_data(network=network_obj, filters=filters, inline_limit=MAX_EXPORT_POINTS)
        if "amap_tiles" in data or "farm_tiles" in data:
            raise CommandError(
                f"Le réseau {network_obj.name} compte plus de {MAX_EXPORT_POINTS} AMAP ou fermes : "
                "trop pour un fichier autonome. Intégrez plutôt la carte en ligne (/carte/embed/)."
            )
        _absolute_links(data, base_url.rstrip("/"))
        m = build_network_map(**data)
        m.atlas_height = "100%"
        html = standalone_html(m, title=f"{network_obj.name} · AMAP Atlas")
        path = Path(output)
        try:
            path.write_text(html, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Impossible d'écrire {path} : {error.strerror}") from None
        amaps = len((data.get("amaps") or {}).get("features", []))
        farms = len((data.get("farms") or {}).get("features", []))
        self.stdout.write(f"{path} : {amaps} AMAP, {farms} fermes ({len(html.encode()) // 1024} Ko)")


def _absolute_links(data: dict, base_url: str) -> None:
    """Links in the popups point at the site, since the file is opened from a disk."""
    if not base_url:
        return
    for key in ("amaps", "farms"):
        for feature in (data.get(key) or {}).get("features", []):
            feature["properties"]["url"] = base_url + feature["properties"]["url"]
    for key in ("amap_url", "farm_url"):
        if data.get(key):
            data[key] = base_url + data[key]
