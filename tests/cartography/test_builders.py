"""Map builders (cartography/builders.py): what goes into a map's script is data, never code."""

import json
import re

from django.urls import reverse

from cartography.builders import build_network_map, build_place_map, map_parts
from tests.factories import BORDEAUX, AmapFactory

TEMPLATE_LOOKING = "AMAP {{ 7*7 }} {% if true %}oui{% endif %}"


def _setup_config(script: str) -> dict:
    """The configuration the page hands to AtlasMap.setup (the layers' GeoJSON included)."""
    return json.loads(re.search(r"AtlasMap\.setup\(\w+, (\{.*\})\);", script, re.S).group(1))


def test_a_name_that_looks_like_a_template_is_shown_as_typed():
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [BORDEAUX.x, BORDEAUX.y]},
        "properties": {"kind": "amap", "name": TEMPLATE_LOOKING},
    }
    parts = map_parts(
        build_place_map(center=(BORDEAUX.y, BORDEAUX.x), features={"type": "FeatureCollection", "features": [feature]})
    )
    names = [f["properties"]["name"] for f in _setup_config(parts["script"])["layers"][0]["data"]["features"]]
    assert names == [TEMPLATE_LOOKING]  # not « AMAP 49 oui »: the server never ran it


def test_an_amap_page_shows_such_a_name_in_its_map_popup_as_typed(client, db):
    amap = AmapFactory(name=TEMPLATE_LOOKING)
    page = client.get(reverse("directory:amap_detail", args=[amap.pk])).content.decode()
    script = re.search(r"<script nonce=\"[^\"]+\">(.*?AtlasMap\.setup.*?)</script>", page, re.S).group(1)
    assert _setup_config(script)["layers"][0]["data"]["features"][0]["properties"]["name"] == TEMPLATE_LOOKING
    assert "AMAP 49" not in page


def test_a_network_name_in_the_maps_label_is_written_as_typed():
    m = build_network_map(amap_tiles="/carte/tuiles/amaps/{z}/{x}/{y}.pbf")
    m.atlas_label = "Carte de couverture du réseau Réseau {{ 7*7 }}"  # as coverage labels its map
    html = map_parts(m)["html"]
    assert 'aria-label="Carte de couverture du réseau Réseau {{ 7*7 }}"' in html
