"""The map's data endpoints: vector tiles, GeoJSON, CSV and territories, read from the directory."""

import csv
import html
import io
import json
import random

import pytest
from django.contrib.gis.geos import Point
from django.urls import reverse

from maps import selectors
from maps.selectors import MapFilters
from tests.factories import BORDEAUX, LIBOURNE, MERIGNAC, AmapFactory, FarmFactory, NetworkFactory, commune
from tests.maps.mvt import decode, tile_of, tile_point_to_lon_lat

pytestmark = pytest.mark.django_db

LYON = Point(4.8357, 45.7640, srid=4326)  # Place Bellecour, Lyon (69382)


def tile_features(client, layer, lon, lat, z, **query):
    x, y = tile_of(lon, lat, z)
    response = client.get(reverse("maps:tile", args=[layer, z, x, y]), query)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    decoded = decode(response.content)
    features = decoded.get(layer, {"features": []})["features"]
    return [
        (f["properties"], tile_point_to_lon_lat(z, x, y, *f["points"][0], decoded[layer]["extent"])) for f in features
    ]


def total(features):
    return sum(int(props["count"]) for props, _ in features)


def test_low_zoom_tiles_carry_clusters_with_counts_not_places(client):
    AmapFactory.create_batch(3, location=BORDEAUX)
    AmapFactory(location=MERIGNAC)
    features = tile_features(client, "amaps", BORDEAUX.x, BORDEAUX.y, 6)
    # At the zoom of all France, the four Bordeaux AMAPs are one counted cluster, without names.
    assert total(features) == 4
    assert len(features) == 1
    assert "name" not in features[0][0]


def test_high_zoom_tiles_carry_each_place_with_its_popup_fields(client):
    amap = AmapFactory(
        name="AMAP des Chartrons", location=BORDEAUX, delivery_weekdays=[2, 4], products=["legumes", "oeufs"]
    )
    features = tile_features(client, "amaps", BORDEAUX.x, BORDEAUX.y, 17)
    assert len(features) == 1
    props, (lon, lat) = features[0]
    assert props["id"] == amap.pk
    assert props["name"] == "AMAP des Chartrons"
    assert props["commune"] == "Bordeaux"
    assert props["delivery"].startswith("mardi, jeudi")
    assert "Légumes" in props["products"]
    # The point is where the AMAP delivers (tile precision at zoom 17: centimetres).
    assert lon == pytest.approx(BORDEAUX.x, abs=1e-5)
    assert lat == pytest.approx(BORDEAUX.y, abs=1e-5)


def test_tiles_follow_the_filters(client):
    AmapFactory(location=BORDEAUX, products=["pain"], delivery_weekdays=[5])
    AmapFactory(location=BORDEAUX, products=["legumes"], delivery_weekdays=[2])
    AmapFactory(location=BORDEAUX, products=["legumes"], delivery_weekdays=[2], accepting_members="full")
    assert total(tile_features(client, "amaps", BORDEAUX.x, BORDEAUX.y, 8)) == 3
    assert total(tile_features(client, "amaps", BORDEAUX.x, BORDEAUX.y, 8, products="pain")) == 1
    assert total(tile_features(client, "amaps", BORDEAUX.x, BORDEAUX.y, 8, weekday="2")) == 2
    assert total(tile_features(client, "amaps", BORDEAUX.x, BORDEAUX.y, 8, weekday="2", accepting="true")) == 1


def test_closed_amaps_are_not_on_the_map(client):
    AmapFactory(location=BORDEAUX, status="closed")
    assert tile_features(client, "amaps", BORDEAUX.x, BORDEAUX.y, 8) == []


def test_points_on_tile_edges_are_counted_once(client):
    # Points spread over many tiles at zoom 12: summed over every tile, each is counted once.
    places = [Point(-0.60 + i * 0.013, 44.80 + (i % 7) * 0.011, srid=4326) for i in range(40)]
    for place in places:
        AmapFactory(location=place)
    z = 12
    xs = [tile_of(p.x, p.y, z)[0] for p in places]
    ys = [tile_of(p.x, p.y, z)[1] for p in places]
    seen = 0
    for x in range(min(xs), max(xs) + 1):
        for y in range(min(ys), max(ys) + 1):
            response = client.get(reverse("maps:tile", args=["amaps", z, x, y]))
            seen += sum(
                int(f["properties"]["count"]) for f in decode(response.content).get("amaps", {}).get("features", [])
            )
    assert seen == 40


def test_bad_tile_requests_are_answered_not_crashed_on(client):
    assert client.get(reverse("maps:tile", args=["amaps", 3, 8, 0])).status_code == 404  # x beyond 2**z
    assert client.get(reverse("maps:tile", args=["routes", 3, 1, 1])).status_code == 404
    response = client.get(reverse("maps:tile", args=["amaps", 6, 31, 22]), {"products": "caviar"})
    assert response.status_code == 400
    assert "products" in response.json()
    response = client.get(reverse("maps:tile", args=["amaps", 6, 31, 22]), {"weekday": "9"})
    assert response.status_code == 400


def test_geojson_and_csv_downloads_hold_what_the_map_shows(client):
    AmapFactory(name="AMAP du pain", location=BORDEAUX, products=["pain"])
    legumes = AmapFactory(name="AMAP des légumes", location=MERIGNAC, commune=commune("33281"), products=["legumes"])
    response = client.get(reverse("maps:geojson", args=["amaps"]), {"products": "pain"})
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    collection = json.loads(response.content)
    assert [f["properties"]["name"] for f in collection["features"]] == ["AMAP du pain"]
    assert collection["features"][0]["geometry"]["coordinates"] == pytest.approx([BORDEAUX.x, BORDEAUX.y])

    response = client.get(reverse("maps:csv", args=["amaps"]), {"products": "legumes"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert [row["nom"] for row in rows] == ["AMAP des légumes"]
    assert rows[0]["commune"] == "Mérignac"
    assert rows[0]["fiche"].endswith(reverse("directory:amap_detail", args=[legumes.pk]))
    assert float(rows[0]["longitude"]) == pytest.approx(MERIGNAC.x)


def test_network_territory_is_served_simplified(client):
    network = NetworkFactory(slug="gironde", departments=[commune("33063").department])
    response = client.get(reverse("maps:territories"), {"network": network.slug})
    assert response.status_code == 200
    collection = json.loads(response.content)
    assert len(collection["features"]) == 1
    assert collection["features"][0]["properties"]["slug"] == "gironde"
    assert len(response.content) < 200_000  # simplified: a département, not its full outline
    assert client.get(reverse("maps:territories"), {"network": "inconnu"}).status_code == 400


def test_data_version_changes_when_an_amap_is_added_moved_or_closed():
    amap = AmapFactory(location=BORDEAUX)
    before = selectors.data_version()
    other = AmapFactory(location=LYON, commune=commune("69123"))
    after_add = selectors.data_version()
    assert after_add != before
    amap.location = MERIGNAC
    amap.save()
    after_move = selectors.data_version()
    assert after_move != after_add
    other.status = "closed"
    other.save()
    assert selectors.data_version() != after_move


def test_network_map_data_is_inline_when_small_and_tiles_when_large():
    network = NetworkFactory(slug="gironde", departments=[commune("33063").department])
    amap = AmapFactory(location=BORDEAUX)
    amap.networks.add(network)
    farm = FarmFactory(location=LIBOURNE)
    farm.networks.add(network)
    small = selectors.network_map_data(network=network)
    assert [f["id"] for f in small["amaps"]["features"]] == [amap.pk]
    assert [f["id"] for f in small["farms"]["features"]] == [farm.pk]
    assert small["territory"]["features"]
    large = selectors.network_map_data(network=network, inline_limit=0)
    assert "amaps" not in large
    assert "network=gironde" in large["amap_tiles"]
    assert "{z}/{x}/{y}.pbf" in large["amap_tiles"]


def test_map_filters_round_trip_through_query_parameters():
    filters = MapFilters(products=("legumes", "pain"), weekday=3, accepting=True, network=None)
    assert selectors.parse_map_filters(filters.query()) == filters


def test_only_the_embed_may_be_framed(client):
    NetworkFactory(slug="gironde", departments=[commune("33063").department])
    response = client.get(reverse("maps:embed"), {"network": "gironde"})
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    assert client.get(reverse("maps:carte")).headers["X-Frame-Options"] == "DENY"


def test_embed_answers_bad_filters_with_a_message(client):
    response = client.get(reverse("maps:embed"), {"network": "inconnu"})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    # A sentence for people (issue 17), not the parameter's name and the parser's words.
    assert "Le réseau « inconnu » n'est pas dans l'annuaire" in page
    assert "network :" not in page


def _features_by_count(tile_bytes, layer="amaps"):
    layer_data = decode(tile_bytes).get(layer, {"features": []})
    return sorted(
        (int(f["properties"]["count"]), f["properties"].get("id"), f["points"][0], f["properties"].get("name"))
        for f in layer_data["features"]
    )


def test_low_zoom_tiles_from_the_cached_grid_equal_tiles_clustered_in_sql():
    rng = random.Random(4)
    places = [Point(rng.uniform(-1.2, 0.2), rng.uniform(44.2, 45.5), srid=4326) for _ in range(80)]
    places += [LYON, Point(55.45, -20.88, srid=4326)]  # Lyon; Saint-Denis de La Réunion
    for i, place in enumerate(places):
        AmapFactory(name=f"AMAP {i:02d}", location=place, products=["pain"] if i % 3 == 0 else ["legumes"])
    for filters in (MapFilters(), MapFilters(products=("pain",))):
        grid = selectors.layer_grid(layer="amaps", filters=filters)
        assert int(grid["n"].sum()) == (82 if not filters.products else 28)
        for z in range(0, selectors.GRID_ZOOM + 1):
            for x, y in {tile_of(p.x, p.y, z) for p in places}:
                from_sql = _features_by_count(selectors.tile(layer="amaps", z=z, x=x, y=y, filters=filters))
                from_grid = _features_by_count(selectors.tile_from_grid(layer="amaps", z=z, x=x, y=y, grid=grid))
                assert [f[0] for f in from_sql] == [f[0] for f in from_grid], (z, x, y)
                assert [f[1] for f in from_sql] == [f[1] for f in from_grid]
                assert [f[3] for f in from_sql] == [f[3] for f in from_grid]
                for a, b in zip(from_sql, from_grid, strict=True):  # same place, to a tile unit
                    assert abs(a[2][0] - b[2][0]) <= 1 and abs(a[2][1] - b[2][1]) <= 1


def test_versioned_tile_requests_use_the_grid_and_follow_filters(client):
    AmapFactory.create_batch(2, location=BORDEAUX, products=["pain"])
    AmapFactory(location=MERIGNAC, products=["legumes"])
    version = selectors.data_version()
    x, y = tile_of(BORDEAUX.x, BORDEAUX.y, 5)
    url = reverse("maps:tile", args=["amaps", 5, x, y])
    assert sum(f[0] for f in _features_by_count(client.get(url, {"v": version}).content)) == 3
    pain = client.get(url, {"v": version, "products": "pain"}).content
    assert sum(f[0] for f in _features_by_count(pain)) == 2


def test_a_cdn_may_cache_tiles_and_revalidate_them_for_a_bodiless_304(client):
    AmapFactory(location=BORDEAUX)
    x, y = tile_of(BORDEAUX.x, BORDEAUX.y, 8)
    url = reverse("maps:tile", args=["amaps", 8, x, y])
    version = selectors.data_version()
    first = client.get(url, {"v": version})
    assert first.status_code == 200
    assert first["Cache-Control"] == f"public, max-age={selectors.TILE_CACHE_SECONDS}"
    assert "Cookie" not in first.get("Vary", "")  # the same tile for every visitor
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = client.get(url, {"v": version}, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert again["Cache-Control"] == first["Cache-Control"]

    # A new AMAP changes the tile (at its unversioned URL): revalidation brings the new bytes.
    AmapFactory(location=MERIGNAC)
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed["Cache-Control"] == "public, max-age=60"
