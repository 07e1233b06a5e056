"""A farm's exact location appears nowhere in what the maps send: HTML, GeoJSON, CSV, tiles, exports."""

import json

import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.urls import reverse
from pyproj import Geod

from tests.factories import AmapFactory, FarmFactory, NetworkFactory, commune
from tests.maps.mvt import decode, tile_of, tile_point_to_lon_lat

pytestmark = pytest.mark.django_db

GEOD = Geod(ellps="WGS84")
# A farmhouse near Libourne (33243): six decimals, so any leak of it is recognisable in text.
FARMHOUSE = Point(-0.251234, 44.921987, srid=4326)


def leaked_texts(point: Point, public: Point | None = None) -> list[str]:
    """How the exact coordinates would read if they leaked (full, 5 and 4 decimals).

    The public point moves 500–1500 m in a random direction, so one of its coordinates can
    share its first four decimals with the farmhouse's (about 1 farm in 150): such a text is the
    public point's own, written where it should be, and proves nothing.
    """
    shown = set()
    if public is not None:
        for value in (public.x, public.y):
            full = f"{value:.6f}"
            shown |= {full[:n] for n in range(len(full) + 1)}
    texts = []
    for value in (point.x, point.y):
        full = f"{value:.6f}"
        texts += [full, full[:-1], full[:-2], f"{value:.5f}", f"{value:.4f}"]  # truncated and rounded
    return [text for text in texts if text not in shown]


def distance_m(lon1, lat1, lon2, lat2) -> float:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.fixture
def farm():
    network = NetworkFactory(slug="libournais", departments=[commune("33243").department])
    farm = FarmFactory(name="Ferme du Coteau", location=FARMHOUSE, products=["legumes"])
    farm.networks.add(network)
    amap = AmapFactory(name="AMAP de Libourne", location=Point(-0.2430, 44.9150, srid=4326))
    amap.networks.add(network)
    farm.refresh_from_db()
    # The masking moved the public point by 500–1500 m (geo.masking.mask_point).
    assert distance_m(FARMHOUSE.x, FARMHOUSE.y, farm.public_location.x, farm.public_location.y) >= 500
    return farm


def test_exact_location_is_in_no_map_page_download_or_export(client, farm, tmp_path):
    pages = {
        "carte": client.get(reverse("maps:carte")),
        "embed": client.get(reverse("maps:embed"), {"network": "libournais"}),
        "farms.geojson": client.get(reverse("maps:geojson", args=["farms"])),
        "farms.csv": client.get(reverse("maps:csv", args=["farms"])),
        "network farms.geojson": client.get(reverse("maps:geojson", args=["farms"]), {"network": "libournais"}),
        "farm page": client.get(reverse("directory:farm_detail", args=[farm.pk])),
    }
    output = tmp_path / "carte.html"
    call_command("export_map", network="libournais", output=str(output))
    texts = {name: response.content.decode("utf-8") for name, response in pages.items()}
    texts["export_map"] = output.read_text(encoding="utf-8")
    for name, response in pages.items():
        assert response.status_code == 200, name
    # The public point is there (the farm is on the map) …
    public = f"{farm.public_location.x:.6f}"[:-2]
    assert public in texts["farms.geojson"]
    assert public in texts["embed"]
    assert public in texts["export_map"]
    # … and the exact one nowhere.
    for name, text in texts.items():
        for leak in leaked_texts(FARMHOUSE, farm.public_location):
            assert leak not in text, f"{leak} found in {name}"


def test_exact_location_is_in_no_tile_at_any_zoom(client, farm):
    public = farm.public_location
    for z in range(0, 21):
        for lon, lat in ((FARMHOUSE.x, FARMHOUSE.y), (public.x, public.y)):
            x, y = tile_of(lon, lat, z)
            response = client.get(reverse("maps:tile", args=["farms", z, x, y]))
            assert response.status_code == 200
            layer = decode(response.content).get("farms")
            if layer is None:
                continue
            for feature in layer["features"]:
                flon, flat = tile_point_to_lon_lat(z, x, y, *feature["points"][0], layer["extent"])
                # Never closer to the farmhouse than the mask put it (minus tile rounding).
                assert distance_m(flon, flat, FARMHOUSE.x, FARMHOUSE.y) > 400, (z, feature)
                if z >= 16:  # drawn on its own: exactly at the public point
                    assert distance_m(flon, flat, public.x, public.y) < 2
                for value in feature["properties"].values():
                    assert not any(leak in str(value) for leak in leaked_texts(FARMHOUSE, public))


def test_farm_geojson_gives_the_public_point(client, farm):
    collection = json.loads(client.get(reverse("maps:geojson", args=["farms"])).content)
    (feature,) = collection["features"]
    lon, lat = feature["geometry"]["coordinates"]
    assert (lon, lat) == pytest.approx((farm.public_location.x, farm.public_location.y), abs=1e-6)
